"""CoAP load generator for bench/run.py (CPython, loopback only).

Plays the LwM2M server from one raw UDP socket: waits for the target's Register (CON POST /rd),
answers 2.01 with Location-Path rd/x, then from that same socket keeps WINDOW confirmable
GET /3/0/0 outstanding (each with its own MID and token) and counts matched 2.05 responses for
SECONDS after a warm-up. Nothing is retransmitted: a request unanswered after --lost-after seconds is
counted as lost and replaced. Sending from the socket the target registered with matters: the client
uses a connected UDP socket, which drops datagrams from any other address.

    python bench/loadgen.py [--window 8] [--warmup 0.5] [--seconds 3] [--register-timeout 15]

Prints `PORT <n>` as soon as it listens (the caller then starts the target against it) and one JSON
line with the figures when done. With --pid-stdin it then reads `PID <n>` (the target's process) from
stdin and also reports the CPU time that process and this one spent during the measured seconds
(/proc/<pid>/stat), so a run limited by the generator rather than the target shows as such.
Exits by itself: every wait is bounded.
"""
import argparse
import json
import os
import select
import socket
import struct
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


def _cpu_seconds(pid):
    """(utime, stime) of a process from /proc (Linux), in seconds; None if unreadable."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick
    except (OSError, ValueError, IndexError):
        return None


def load(sock, addr, window, warmup, seconds, lost_after, pid=None):
    sock.connect(addr)  # the kernel filters by address; send/recv instead of sendto/recvfrom
    sock.setblocking(False)
    recv, send = sock.recv, sock.send
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poll = poller.poll
    clock = time.monotonic
    pack = struct.Struct(">HI")  # MID, token: bytes 2..7 of request and response
    pack_into, unpack_from = pack.pack_into, pack.unpack_from
    req = bytearray(4 + _TKL) + _GET_OPTIONS
    req[0] = 0x40 | _TKL  # version 1, CON
    req[1] = 1  # GET
    ack_content = (0x60 | _TKL, _CONTENT)  # first two bytes of the response we want
    mid = int.from_bytes(os.urandom(2), "big")
    token = int.from_bytes(os.urandom(4), "big")
    outstanding = {}  # mid -> (token, sent at); at most `window` entries
    start = clock() + warmup
    end = start + seconds
    measuring = False
    ok = lost = errors = other = sent = 0
    rtt_sum = 0.0
    cpu0 = cpu1 = None
    def fire(now):
        """Send the next GET (new MID and token) and track it as outstanding."""
        nonlocal mid, token, sent
        mid = (mid + 1) & 0xFFFF
        token = (token + 1) & 0xFFFFFFFF
        pack_into(req, 2, mid, token)
        outstanding[mid] = (token, now)
        sent += 1
        try:
            send(req)
        except (BlockingIOError, ConnectionRefusedError):
            pass  # counted as lost when it times out

    now = clock()
    for _ in range(window):
        fire(now)
    last_check = now
    while True:
        now = clock()
        if not measuring and now >= start:
            measuring = True
            cpu0 = (time.process_time(), _cpu_seconds(pid) if pid else None, now)
        if now >= end:
            cpu1 = (time.process_time(), _cpu_seconds(pid) if pid else None, now)
            break
        if poll(50):
            now = clock()
            while True:
                try:
                    data = recv(2048)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:  # ICMP: the target died
                    errors += 1
                    break
                if len(data) >= 8 and (data[0], data[1]) == ack_content:  # the fast path
                    m, tk = unpack_from(data, 2)
                    entry = outstanding.get(m)
                    if entry is None or entry[0] != tk:
                        other += 1
                        continue
                    code = _CONTENT
                elif _is_con_post(data):  # a retransmitted Register: answer again
                    send(_created(data))
                    continue
                elif len(data) >= 4 and (data[0] >> 4) & 3 == _ACK and data[1] and data[0] & 15 == _TKL \
                        and len(data) >= 8:  # another response code: an error
                    m, tk = unpack_from(data, 2)
                    entry = outstanding.get(m)
                    if entry is None or entry[0] != tk:
                        other += 1
                        continue
                    code = data[1]
                else:
                    other += 1
                    continue
                del outstanding[m]
                if measuring:
                    if code == _CONTENT:
                        ok += 1
                        rtt_sum += now - entry[1]
                    else:
                        errors += 1
                fire(now)
        # Give up on requests unanswered for too long (checked every 50 ms); keep the window full.
        if now - last_check >= 0.05:
            last_check = now
            for m, (tk, at) in list(outstanding.items()):
                if now - at >= lost_after:
                    del outstanding[m]
                    if measuring:
                        lost += 1
                    fire(now)
    wall = cpu1[2] - cpu0[2] if cpu0 and cpu1 else seconds
    result = {
        "ok": ok,
        "lost": lost,
        "errors": errors,
        "other": other,
        "sent": sent,
        "seconds": round(wall, 3),
        "window": window,
        "rps": ok / wall if wall > 0 else 0.0,
        "mean_rtt_ms": 1000.0 * rtt_sum / ok if ok else None,
        "gen_cpu": (cpu1[0] - cpu0[0]) / wall if cpu0 and cpu1 and wall > 0 else None,
        "target_cpu": None,
        "target_us_per_req": None,
    }
    if cpu0 and cpu1 and cpu0[1] is not None and cpu1[1] is not None and wall > 0:
        user = cpu1[1][0] - cpu0[1][0]
        system = cpu1[1][1] - cpu0[1][1]
        result["target_cpu"] = (user + system) / wall
        result["target_user_share"] = user / (user + system) if user + system > 0 else None
        result["target_us_per_req"] = 1e6 * (user + system) / ok if ok else None
    return result


def _read_pid(timeout):
    """`PID <n>` from stdin (the caller knows the target's pid only after our PORT line)."""
    readable, _, _ = select.select([sys.stdin], [], [], timeout)
    if not readable:
        return None
    line = sys.stdin.readline().split()
    return int(line[1]) if len(line) == 2 and line[0] == "PID" else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--lost-after", type=float, default=0.5)
    ap.add_argument("--register-timeout", type=float, default=15.0)
    ap.add_argument("--pid-stdin", action="store_true",
                    help="read `PID <n>` from stdin after printing PORT: report that process's CPU use")
    args = ap.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        print("PORT %d" % sock.getsockname()[1], flush=True)
        pid = _read_pid(args.register_timeout) if args.pid_stdin else None
        try:
            addr, reg_size = wait_register(sock, args.register_timeout)
        except TimeoutError as e:
            print(json.dumps({"error": str(e)}), flush=True)
            return 1
        result = load(sock, addr, args.window, args.warmup, args.seconds, args.lost_after, pid)
        result["register_bytes"] = reg_size
        print(json.dumps(result), flush=True)
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
