"""E2E app (run by micropython): the client over DTLS with a pre-shared key, short CoAP timers so that a lost
session shows within seconds (the CLI keeps RFC 7252's 2 s ACK timeout).

    micropython dtls_app.py coaps://127.0.0.1:PORT ENDPOINT IDENTITY HEXKEY ACK_MS LIFETIME SECONDS
"""
import sys

from lwm2m_mpy import Client

uri, ep, ident, key, ack_ms, lifetime, seconds = sys.argv[1:8]
client = Client(ep, uri, lifetime=int(lifetime), retry_s=1, psk=(ident.encode(), bytes.fromhex(key)),
                log=lambda msg: print("lwm2m:", msg))
client.ex.ack_ms = int(ack_ms)
client.run(float(seconds))
