"""asyncio driver for the client: `await client.serve()` awaits the socket instead of blocking in poll."""
import asyncio
import gc

from ._compat import ticks_ms, IS_MICROPYTHON


async def _readable(sock, timeout_ms):
    """True once `sock` is readable, False after timeout_ms. MicroPython's asyncio has no datagram
    API, so wait on its IO queue; CPython's loop has add_reader."""
    if IS_MICROPYTHON:
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
    t = client.open()
    client.start(ticks_ms())
    try:
        while not client.done:
            try:
                if await _readable(t.sock, client.wait_ms(ticks_ms())):
                    client.drain()
            except MemoryError:  # the same relief as in Client.run() (kept inline there for its heap)
                client.dm.unload()
                c = client.ex.c_mid
                c[:] = client.ex.c_data[:] = [None] * len(c)
                gc.collect()
    finally:
        client.shutdown()
