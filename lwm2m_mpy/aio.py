"""asyncio driver for the client: `await client.serve()` awaits the socket instead of blocking in poll."""
import asyncio
import gc

from ._compat import ticks_ms

# MicroPython's asyncio, and CircuitPython's port of it, await sockets through their IO queue; CPython's
# loop has add_reader
_UASYNCIO = hasattr(asyncio, "wait_for_ms")
_GLANCE = 50  # ms between looks at the other sockets when there are several sessions


async def _readable(sock, timeout_ms):
    """True once `sock` is readable, False after timeout_ms. MicroPython's asyncio has no datagram
    API, so wait on its IO queue."""
    if _UASYNCIO:
        async def wait():
            yield asyncio.core._io_queue.queue_read(sock)

        try:
            await asyncio.wait_for_ms(wait(), timeout_ms)
            return True
        except asyncio.TimeoutError:
            return False
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(sock, fut.set_result, True)
    try:
        return await asyncio.wait_for(fut, timeout_ms / 1000)
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(sock)


async def serve(client):
    client.start(ticks_ms())
    try:
        while not client.done:
            try:
                ms = client.wait_ms(ticks_ms())
                sock = client.transport.sock  # looked up each turn: bootstrap and DTLS handshakes change it
                if client.peers or sock is None:  # more than one socket: look at them all every 50 ms
                    ms = min(ms, _GLANCE)
                if sock is None:
                    await asyncio.sleep_ms(ms) if _UASYNCIO else await asyncio.sleep(ms / 1000)
                elif await _readable(sock, ms):
                    client.drain()
                for p in client.peers:
                    p.drain()
            except MemoryError:  # the same relief as in Client.run() (kept inline there for its heap)
                client.dm.unload()
                c = client.ex.c_mid
                c[:] = client.ex.c_data[:] = [None] * len(c)
                gc.collect()
    finally:
        client.shutdown()
