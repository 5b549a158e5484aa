"""A lossy UDP proxy on 127.0.0.1 for tests: drops, duplicates and reorders datagrams in both
directions with a seeded RNG, so a run is repeatable.

    with LossyProxy(upstream=("127.0.0.1", server_port), drop=0.3) as proxy:
        client_connects_to(("127.0.0.1", proxy.port))

Clients send to `proxy.port`; the proxy forwards to `upstream` from one socket and relays whatever
comes back to the address of the last client it heard from.
"""
import random
import select
import socket
import threading
import time

_HOLD_MAX = 1.0  # seconds a reordered datagram waits for a successor before it is sent anyway


class LossyProxy:
    def __init__(self, upstream, drop=0.3, duplicate=0.1, reorder=0.1, seed=1, max_datagrams=10000):
        assert drop + duplicate + reorder <= 1.0
        self.upstream = upstream
        self.drop, self.duplicate, self.reorder = drop, duplicate, reorder
        self.max_datagrams = max_datagrams
        self._rng = random.Random(seed)
        # Counts (written by the proxy thread only): datagrams in, and what happened to them;
        # forwarded = datagrams sent on (a duplicated one counts twice, a dropped one not at all).
        self.received = self.forwarded = self.dropped = self.duplicated = self.reordered = 0
        self.client = None  # last client address, where replies go

        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # clients talk to this
        self._front.bind(("127.0.0.1", 0))
        self._back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # talks to upstream
        self._back.bind(("127.0.0.1", 0))
        self.port = self._front.getsockname()[1]
        # One held-back datagram per direction: (socket, data, address, time held) or None.
        self._held = {self._front: None, self._back: None}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="LossyProxy:%d" % self.port, daemon=True)
        self._thread.start()

    @property
    def running(self):
        return self._thread.is_alive()

    def stats(self):
        return {"received": self.received, "forwarded": self.forwarded, "dropped": self.dropped,
                "duplicated": self.duplicated, "reordered": self.reordered}

    def stop(self, timeout=5):
        self._stopping.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _send(self, sock, data, address):
        # Count first, so a test that has just received the datagram also sees it counted.
        self.forwarded += 1
        try:
            sock.sendto(data, address)
        except OSError:  # the peer went away; a lossy link does not care
            pass

    def _release(self, sock):
        held = self._held[sock]
        if held:
            self._held[sock] = None
            self._send(sock, held[1], held[2])

    def _pass(self, sock, data, address):
        # One draw per datagram, split into exclusive bands, so each share is what was asked for.
        r = self._rng.random()
        if r < self.drop:
            self.dropped += 1
        elif r < self.drop + self.duplicate:
            self.duplicated += 1
            self._send(sock, data, address)
            self._send(sock, data, address)
        elif r < self.drop + self.duplicate + self.reorder and self._held[sock] is None:
            self.reordered += 1
            self._held[sock] = (sock, data, address, time.monotonic())
            return  # goes out after the next datagram in this direction
        else:
            self._send(sock, data, address)
        self._release(sock)

    def _loop(self):
        try:
            while not self._stopping.is_set() and self.received < self.max_datagrams:
                readable, _, _ = select.select([self._front, self._back], [], [], 0.05)
                for sock in readable:
                    try:
                        data, address = sock.recvfrom(65535)
                    except OSError:
                        continue
                    self.received += 1
                    if sock is self._front:
                        self.client = address
                        self._pass(self._back, data, self.upstream)
                    elif self.client is not None:
                        self._pass(self._front, data, self.client)
                    if self.received >= self.max_datagrams:
                        break
                now = time.monotonic()
                for sock, held in list(self._held.items()):
                    if held and now - held[3] > _HOLD_MAX:
                        self._release(sock)
            for sock in self._held:  # do not swallow a held datagram at the end
                self._release(sock)
        finally:
            self._front.close()
            self._back.close()
