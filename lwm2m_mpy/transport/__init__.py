"""Transports: objects with send(buf, n), recv() -> bytes or None, wait(ms) -> bool, close(); `sock` for asyncio."""
