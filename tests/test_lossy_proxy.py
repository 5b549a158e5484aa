"""tests/peers/lossy_proxy.py: forwards both ways, loses the asked share (exactly, for a fixed seed),
and stops by itself after max_datagrams or on stop()."""
import random
import socket
import time

from peers.lossy_proxy import LossyProxy


def _udp(timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    return s


def _until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_forwards_and_relays_replies():
    with _udp() as upstream, _udp() as client:
        with LossyProxy(upstream.getsockname(), drop=0, duplicate=0, reorder=0) as proxy:
            client.sendto(b"ping", ("127.0.0.1", proxy.port))
            data, address = upstream.recvfrom(100)
            assert data == b"ping"
            upstream.sendto(b"pong", address)  # the reply goes back to the proxy's upstream socket...
            assert client.recvfrom(100) == (b"pong", ("127.0.0.1", proxy.port))  # ...and on to the client
            assert proxy.stats() == {"received": 2, "forwarded": 2, "dropped": 0, "duplicated": 0,
                                     "reordered": 0}


def test_loses_the_asked_share_repeatably():
    n, drop, duplicate, reorder = 1000, 0.3, 0.1, 0.1
    # The proxy draws one number per datagram from Random(seed): replay the draws for exact counts.
    rng = random.Random(7)
    draws = [rng.random() for _ in range(n)]
    want_dropped = sum(r < drop for r in draws)
    want_duplicated = sum(drop <= r < drop + duplicate for r in draws)
    assert abs(want_dropped - n * drop) < 50  # "about the asked share"

    with _udp() as upstream, _udp() as client:
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        with LossyProxy(upstream.getsockname(), drop=drop, duplicate=duplicate, reorder=reorder,
                        seed=7) as proxy:
            for i in range(n):
                client.sendto(b"%d" % i, ("127.0.0.1", proxy.port))
                if i % 20 == 19:  # pace: the kernel's socket buffers would drop a burst of 1000
                    _until(lambda: proxy.received == i + 1)
            _until(lambda: proxy.received == n)
            assert proxy.dropped == want_dropped
            assert proxy.duplicated == want_duplicated
            assert proxy.reordered > 0
            expect = n - want_dropped + want_duplicated
            _until(lambda: proxy.forwarded == expect)  # a held datagram leaves within a second

        got = []
        upstream.settimeout(0.5)
        try:
            while True:
                got.append(int(upstream.recvfrom(100)[0]))
        except socket.timeout:
            pass
        assert len(got) == expect
        assert got != sorted(got)  # some arrived out of order
        assert len(set(got)) == n - want_dropped


def test_stops_after_max_datagrams():
    with _udp(timeout=0.3) as upstream, _udp() as client:
        proxy = LossyProxy(upstream.getsockname(), drop=0, duplicate=0, reorder=0, max_datagrams=5)
        for i in range(5):
            client.sendto(b"x", ("127.0.0.1", proxy.port))
        _until(lambda: not proxy.running)
        assert proxy.received == 5
        client.sendto(b"late", ("127.0.0.1", proxy.port))  # nobody listens any more
        got = 0
        try:
            while upstream.recvfrom(100):
                got += 1
        except socket.timeout:
            pass
        assert got == 5
        proxy.stop()  # harmless after it stopped by itself


def test_stop():
    with _udp() as upstream:
        proxy = LossyProxy(upstream.getsockname())
        assert proxy.running
        proxy.stop()
        assert not proxy.running
