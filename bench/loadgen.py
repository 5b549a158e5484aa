"""CoAP load generator for bench/run.py (CPython, loopback only).

Plays the LwM2M server from one raw UDP socket: waits for the target's Register (CON POST /rd),
answers 2.01 with Location-Path rd/x, then from that same socket keeps WINDOW confirmable
GET /3/0/0 outstanding (each with its own MID and token) and counts matched 2.05 responses for
SECONDS after a warm-up. Nothing is retransmitted: a request unanswered after --lost-after seconds is
counted as lost and replaced. Sending from the socket the target registered with matters: the client
uses a connected UDP socket, which drops datagrams from any other address.

    python bench/loadgen.py [--window 8] [--warmup 0.5] [--seconds 3] [--register-timeout 15]

Prints `PORT <n>` as soon as it listens (the caller then starts the target against it) and one JSON
line with the figures when done. Exits by itself: every wait is bounded.
"""
import argparse
import collections
import json
import os
import select
import socket
import sys
import time

_CON, _ACK = 0, 2
_POST, _CONTENT, _CREATED = 2, 69, 65
# GET /3/0/0: Uri-Path (11) "3", "0", "0"
_GET_OPTIONS = b"\xb13\x010\x010"
_TKL = 4


def _created(request):
    """2.01 ACK for a CON POST (Register): same MID and token, Location-Path (8) "rd", "x"."""
    tkl = request[0] & 15
    return bytes((0x60 | tkl, _CREATED, request[2], request[3])) + request[4:4 + tkl] + b"\x82rd\x01x"


def _is_con_post(data):
    return len(data) >= 4 and data[0] >> 6 == 1 and (data[0] >> 4) & 3 == _CON and data[1] == _POST


def wait_register(sock, timeout):
    """Answer the first CON POST that arrives; returns the sender's address and the request size."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no Register within %.0f s" % timeout)
        sock.settimeout(left)
        try:
            data, addr = sock.recvfrom(2048)
        except socket.timeout:
            continue
        if _is_con_post(data):
            sock.sendto(_created(data), addr)
            return addr, len(data)


def load(sock, addr, window, warmup, seconds, lost_after):
    sock.setblocking(False)
    req = bytearray(4 + _TKL) + _GET_OPTIONS
    req[0] = 0x40 | _TKL  # version 1, CON
    req[1] = 1  # GET
    mid = int.from_bytes(os.urandom(2), "big")
    token = int.from_bytes(os.urandom(4), "big")
    outstanding = collections.OrderedDict()  # mid -> (token bytes, sent at); oldest first
    t0 = time.monotonic()
    start = t0 + warmup
    end = start + seconds
    ok = lost = errors = other = sent = 0
    rtt_sum = 0.0

    def send(now):
        nonlocal mid, token, sent
        mid = (mid + 1) & 0xFFFF
        token = (token + 1) & 0xFFFFFFFF
        req[2] = mid >> 8
        req[3] = mid & 0xFF
        tok = token.to_bytes(4, "big")
        req[4:8] = tok
        outstanding[mid] = (tok, now)
        sent += 1
        try:
            sock.sendto(req, addr)
        except (BlockingIOError, ConnectionRefusedError):
            pass  # counted as lost when it times out

    now = time.monotonic()
    for _ in range(window):
        send(now)
    while True:
        now = time.monotonic()
        if now >= end:
            break
        try:
            readable, _, _ = select.select([sock], [], [], min(0.05, end - now))
        except InterruptedError:
            continue
        if readable:
            while True:
                try:
                    data, frm = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:  # ICMP: the target died
                    errors += 1
                    break
                now = time.monotonic()
                if len(data) < 4 or frm != addr:
                    other += 1
                    continue
                if _is_con_post(data):  # a retransmitted Register: answer again, not a response
                    sock.sendto(_created(data), addr)
                    continue
                m = data[2] << 8 | data[3]
                entry = outstanding.get(m)
                if entry is None or (data[0] >> 4) & 3 != _ACK or data[4:4 + (data[0] & 15)] != entry[0]:
                    other += 1
                    continue
                del outstanding[m]
                if now >= start:
                    if data[1] == _CONTENT:
                        ok += 1
                        rtt_sum += now - entry[1]
                    else:
                        errors += 1
                send(now)
        # Give up on requests unanswered for too long; keep the window full.
        now = time.monotonic()
        while outstanding:
            m, (tok, at) = next(iter(outstanding.items()))
            if now - at < lost_after:
                break
            del outstanding[m]
            if now >= start:
                lost += 1
            send(now)
    return {
        "ok": ok,
        "lost": lost,
        "errors": errors,
        "other": other,
        "sent": sent,
        "seconds": seconds,
        "window": window,
        "rps": ok / seconds,
        "mean_rtt_ms": 1000.0 * rtt_sum / ok if ok else None,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--lost-after", type=float, default=0.5)
    ap.add_argument("--register-timeout", type=float, default=15.0)
    args = ap.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        print("PORT %d" % sock.getsockname()[1], flush=True)
        try:
            addr, reg_size = wait_register(sock, args.register_timeout)
        except TimeoutError as e:
            print(json.dumps({"error": str(e)}), flush=True)
            return 1
        result = load(sock, addr, args.window, args.warmup, args.seconds, args.lost_after)
        result["register_bytes"] = reg_size
        print(json.dumps(result), flush=True)
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
