"""Host-side firmware package server on aiocoap: the files of a folder over coap:// with Block2 (RFC 7959),
for the pull of object 5 (lwm2m_mpy/fota/pull.py), its tests and the bench.

Block2 is done here, not by aiocoap's Block2Cache: every block is read from the file at the position the
request names, so a client that resumes (a new process, a new source port) can start at any block, with
no state on the server. Each response honours the client's block size (or a smaller one, `max_szx`: a
server that answers with a smaller size, RFC 7959 §2.4 late negotiation), carries Size2 (the file's size)
and an ETag (the first 8 bytes of the content's SHA-256, computed again when the file changes).

    with PackageServerThread("build/packages") as server:  # 127.0.0.1, a free port: server.port
        uri = server.uri_for("fw.bin")                      # coap://127.0.0.1:<port>/fw.bin
        ...
        server.requests                                     # [Request(path, num, szx, size2, remote), ...]
        server.stop()                                       # mid-download: a server gone (ICMP unreachable)

CLI: python tools/package_server.py --dir DIR [--host 127.0.0.1] [--port 5693] [--max-szx 6] [--quiet]
Loopback by default; `--host` with a LAN address serves boards on the network (every file of DIR to anyone
who can reach it: a folder of packages only).
"""
import argparse
import asyncio
import hashlib
import ipaddress
import logging
import signal
import sys
import urllib.parse
from pathlib import Path
from typing import NamedTuple, Optional

import aiocoap
import aiocoap.interfaces
import aiocoap.resource
from aiocoap import Code, Message

try:
    from .lwm2m_server import LoopThread, _bound_port, _exclusive_bind  # as tools.package_server
except ImportError:
    from lwm2m_server import LoopThread, _bound_port, _exclusive_bind  # a script, or tools/ on sys.path

DEFAULT_PORT = 5693
OCTET_STREAM = 42  # application/octet-stream

log = logging.getLogger("package_server")


def ip_host(host):
    """host as an IP literal ("localhost" is 127.0.0.1); a name or anything else is a ValueError."""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError("host must be an IP address (127.0.0.1, ::1, or the LAN address boards reach), got %r"
                         % host) from None


class Request(NamedTuple):
    """One GET as it arrived: the path, the Block2 the client asked for (None without one), whether it
    asked for Size2 (RFC 7959 §4: Size2 0 in a request), and who asked."""

    path: str
    num: Optional[int]
    szx: Optional[int]
    size2: bool
    remote: str


class _Files(aiocoap.resource.Resource):
    """The root resource: any path is a file under the folder; GET only."""

    def __init__(self, server):
        super().__init__()
        self.server = server

    async def needs_blockwise_assembly(self, request):
        return False  # Block2 is ours (see the module doc)

    async def render(self, request):
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        return self.server._on_get(request)


class PackageServer:
    """asyncio package server: `await start()` / `await stop()` in one event loop (PackageServerThread
    wraps it for blocking code). `max_szx`: the largest block size exponent it answers with (6 = 1024);
    `delay`: seconds before each answer (a slow link, so tests can act in the middle of a download)."""

    def __init__(self, directory, host="127.0.0.1", port=DEFAULT_PORT, max_szx=6, delay=0.0):
        if not 0 <= max_szx <= 6:
            raise ValueError("max_szx must be 0..6 (16..1024-byte blocks)")
        self.directory = Path(directory).resolve()
        self.host = ip_host(host)
        self.requested_port = int(port)
        self.port = None  # the bound port, known after start()
        self.max_szx = max_szx
        self.delay = delay
        self.requests = []  # Request per GET, in order
        self._etags = {}  # path -> ((mtime_ns, size), etag)
        self._context = None

    async def start(self):
        _exclusive_bind(True)
        try:
            self._context = await aiocoap.Context.create_server_context(
                _Files(self), bind=(self.host, self.requested_port), transports=["udp6"])
        finally:
            _exclusive_bind(False)
        self.port = _bound_port(self._context)
        return self

    async def stop(self):
        if self._context is not None:
            context, self._context = self._context, None
            await context.shutdown()

    def uri_for(self, name):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "coap://%s:%d/%s" % (host, self.port, urllib.parse.quote(name))

    def _file(self, path):
        """The file a request path names, or None: nothing outside the folder, no hidden names."""
        if not path or any(p in ("", ".", "..") or p.startswith(".") for p in path):
            return None
        f = self.directory.joinpath(*path).resolve()
        if self.directory not in f.parents or not f.is_file():
            return None
        return f

    def _etag(self, key, f, stat):
        """The content's ETag, hashed again only when size or modification time changed."""
        stamp = (stat.st_mtime_ns, stat.st_size)
        known = self._etags.get(key)
        if known and known[0] == stamp:
            return known[1]
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(65536), b""):
                h.update(chunk)
        etag = h.digest()[:8]
        self._etags[key] = (stamp, etag)
        return etag

    def _on_get(self, request):
        path = list(request.opt.uri_path)
        key = "/".join(path)
        b2 = request.opt.block2
        self.requests.append(Request(key, b2.block_number if b2 else None, b2.size_exponent if b2 else None,
                                     request.opt.size2 is not None, str(request.remote.hostinfo)))
        if request.code != Code.GET:
            return Message(code=Code.METHOD_NOT_ALLOWED)
        f = self._file(path)
        if f is None:
            return Message(code=Code.NOT_FOUND)
        stat = f.stat()
        size = stat.st_size
        etag = self._etag(key, f, stat)
        asked = 6 if b2 is None or b2.size_exponent > 6 else b2.size_exponent  # 7 (BERT) is for TCP only
        szx = min(asked, self.max_szx)
        start = b2.block_number << (b2.size_exponent + 4) if b2 and b2.size_exponent < 7 else 0
        if start and start >= size:
            return Message(code=Code.BAD_OPTION, payload=b"block beyond the end")
        block = 16 << szx
        with open(f, "rb") as fh:
            fh.seek(start)
            data = fh.read(block)
        more = start + len(data) < size
        response = Message(code=Code.CONTENT, payload=data)
        response.opt.content_format = OCTET_STREAM
        response.opt.etag = etag
        response.opt.size2 = size
        if b2 is not None or more:  # the same byte position in the size we answer with (a power of 2)
            response.opt.block2 = (start >> (szx + 4), more, szx)
        return response


class PackageServerThread(LoopThread):
    """A PackageServer in its own thread and event loop; port=0 (the default) binds a free port (.port).
    `requests`: a copy of every Request so far; `stop()` closes the socket (a server gone)."""

    name = "package-server"

    def __init__(self, directory, host="127.0.0.1", port=0, max_szx=6, delay=0.0):
        super().__init__(PackageServer(directory, host, port, max_szx, delay))

    def uri_for(self, name):
        return self.server.uri_for(name)

    @property
    def requests(self):
        if self._thread is None:
            return list(self.server.requests)
        return self._snapshot(lambda: list(self.server.requests))

    def blocks(self, path=None):
        """The block numbers asked for (of `path`, or of every file), in order."""
        return [r.num for r in self.requests if path is None or r.path == path]


async def _serve(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on this platform
            pass
    server = PackageServer(args.dir, args.host, args.port, args.max_szx)
    await server.start()
    print("package server on %s port %d serving %s (Ctrl-C to stop)" % (server.host, server.port, server.directory),
          flush=True)
    if not args.quiet:
        seen = 0

        async def report():
            nonlocal seen
            while True:
                await asyncio.sleep(0.5)
                new = server.requests[seen:]
                seen += len(new)
                for r in new:
                    if r.num in (None, 0) or r.num % 256 == 0:  # a line per transfer start and every 256 blocks
                        print("GET /%s block %s (szx %s) from %s" % (r.path, r.num, r.szx, r.remote), flush=True)
        ticker = loop.create_task(report())
    try:
        await stop.wait()
    finally:
        if not args.quiet:
            ticker.cancel()
        await server.stop()
    print("stopped", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description="firmware package server (coap://, Block2) for tests and demos")
    parser.add_argument("--dir", required=True, help="folder whose files are served")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind [127.0.0.1]; a LAN address serves boards (anyone there can read DIR)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP port [%d]" % DEFAULT_PORT)
    parser.add_argument("--max-szx", type=int, default=6, choices=range(7), metavar="0-6",
                        help="largest block size exponent answered with (6: 1024 bytes) [6]")
    parser.add_argument("--quiet", action="store_true", help="no line per transfer")
    args = parser.parse_args(argv)
    try:
        args.host = ip_host(args.host)
    except ValueError as e:
        parser.error(str(e))
    if not ipaddress.ip_address(args.host).is_loopback:
        print("package_server: serving %s on the network (%s)" % (args.dir, args.host), file=sys.stderr)
    if not Path(args.dir).is_dir():
        parser.error("--dir %s is not a folder" % args.dir)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args))
    except OSError as e:
        print("package_server: cannot serve on %s port %d: %s" % (args.host, args.port, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
