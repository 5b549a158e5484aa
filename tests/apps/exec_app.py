"""E2E app (run by micropython): a Client whose Reboot (/3/0/4) runs an app callback that prints a
marker line with the arguments the server sent, instead of rebooting.

    micropython exec_app.py coap://127.0.0.1:PORT ENDPOINT [SECONDS]
"""
import sys

from lwm2m_mpy import Client

uri, endpoint = sys.argv[1], sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else None
client = Client(endpoint, uri, lifetime=300, log=lambda msg: print("lwm2m:", msg))
client.set("/3/0/0", "Acme")
calls = []


def on_reboot(args):
    calls.append(args)
    print("APP execute /3/0/4 n=%d args=%r" % (len(calls), args))


client.on_execute("/3/0/4", on_reboot)
client.run(seconds)
print("APP exit calls=%d" % len(calls))
