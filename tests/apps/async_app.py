"""E2E app (run by micropython): the client under asyncio (`await client.serve()`) beside another task
that ticks, proving the loop is shared and not blocked; stops the client after SECONDS.

    micropython async_app.py coap://127.0.0.1:PORT ENDPOINT SECONDS
"""
import sys

import asyncio

from lwm2m_mpy import Client

uri, endpoint, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
client = Client(endpoint, uri, log=lambda msg: print("lwm2m:", msg))
ticks = [0]
client.bind("/3/0/9", get=lambda: ticks[0])  # Battery Level: how often the other task ran


async def other_task():
    while not client.done:
        ticks[0] += 1
        await asyncio.sleep_ms(50)


async def stopper():
    await asyncio.sleep_ms(int(seconds * 1000))
    client.stop()


async def main():
    await asyncio.gather(client.serve(), other_task(), stopper())


asyncio.run(main())
print("APP exit ticks=%d" % ticks[0])
