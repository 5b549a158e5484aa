"""E2E app (run by micropython): the client on a real UDP socket to the server, but on a clock the test
moves. Every timer (pmin, pmax, retransmission, queue mode, Update) runs on that clock, so a test can say
exactly when a notification must go out; datagrams are fed as they arrive, stamped with the clock's time.

    micropython clock_app.py coap://127.0.0.1:PORT ENDPOINT [key=value ...]   (Client keyword arguments)

Commands on stdin, one per line; each is answered "ok T" (T = the clock, ms) once done:
    tick MS            advance the clock MS ms in 100 ms steps, handling the network between steps
    set PATH VALUE     client.set (VALUE: int, float, or text)
    changed PATH       client.changed (a getter's value moved)
    send PATH...       client.send; the result comes later as "SEND ok|failed WHY"
    sync               handle the network only
    quit               de-register and exit
Log lines are "lwm2m: ..." as in the CLI.
"""
import sys
import select

from lwm2m_mpy import Client

from o3303 import T

_STEP = 100


def number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


kw = {}
for arg in sys.argv[3:]:
    key, _, value = arg.partition("=")
    kw[key] = number(value) if value not in ("True", "False") else value == "True"
ack_ms = kw.pop("ack_ms", None)
client = Client(sys.argv[2], sys.argv[1], log=lambda msg: print("lwm2m:", msg), **kw)
if ack_ms:
    client.ex.ack_ms = ack_ms
client.add(T, 0, {5700: 20.0, 5701: "Cel"})
reading = [20.0]
client.bind("/3303/0/5601", get=lambda: reading[0])  # Min Measured Value, read live
now = 0
t = client.open()
client.start(now)
client.step(now)
poller = select.poll()
poller.register(sys.stdin, select.POLLIN)


def network(ms):
    """Feed whatever arrives within `ms` real milliseconds, at the current clock value."""
    while t.wait(ms):
        while True:
            data = t.recv()
            if data is None:
                break
            client.feed(data, now)
        ms = 0
    client.step(now)


def done(ok, why):
    print("SEND %s %s" % ("ok" if ok else "failed", why))


while True:
    network(10)
    if not poller.poll(10):
        continue
    line = sys.stdin.readline()
    if not line:
        break
    words = line.split()
    if not words:
        continue
    cmd = words[0]
    if cmd == "tick":
        end = now + int(words[1])
        while now < end:
            now += _STEP
            client.step(now)
            network(2)  # answers (ACKs, Update responses) come back between steps
    elif cmd == "set":
        client.set(words[1], number(words[2]))
        client.step(now)
    elif cmd == "reading":
        reading[0] = number(words[1])
    elif cmd == "changed":
        client.changed(words[1])
        client.step(now)
    elif cmd == "send":
        client.send(words[1:], done)
        client.step(now)
    elif cmd == "quit":
        break
    network(5)
    print("ok %d" % now)
client.shutdown()
print("bye")
