"""Firmware pull end to end: the client inside the real `micropython` binary (tests/apps/pull_app.py: a
Client registered with tools/lwm2m_server.py, and a Pull driven from its loop) downloads a 1 MiB file
from tools/package_server.py over coap:// with Block2; all on 127.0.0.1, every wait bounded.

Covers: the file arrives whole (byte for byte, and the app's SHA-256); the client keeps serving its LwM2M
server during a pull; a pull killed midway resumes where the file ends (the server's request log shows
the second run starting at that block, not at 0); the package server stopped midway ends the pull with
result 4 (connection lost) within a bounded time; a missing file gives 7; the compiled tree pulls 1 MiB in
a small heap; coaps:// with a pre-shared key through tools/dtls_front.py. And tools/package_server.py itself,
with aiocoap's client as the peer: block sizes, Size2, ETag, the answers to bad requests.
"""
import hashlib
import os
import re
import signal
import time

import pytest

from e2e_helpers import all_dtls, app_args, dtls_front, ensure_mpy_tree, mpy_client  # noqa: F401 (fixture)
import lwm2m_server as lws
import package_server as pks

SIZE = 1024 * 1024
BLOCK = 1024


@pytest.fixture
def server():
    with lws.ServerThread() as srv:
        yield srv


@pytest.fixture
def packages(tmp_path):
    folder = tmp_path / "packages"
    folder.mkdir()
    data = os.urandom(SIZE)
    (folder / "fw.bin").write_bytes(data)
    return folder, data


def start(mpy_client, server, uri, out, ep, resume=0, ack_ms=0, psk=None, **kw):
    extra = (120, psk) if psk else ()
    return mpy_client(app_args("pull_app.py", server.uri, ep, uri, out, resume, ack_ms, *extra), **kw)


def result(proc, timeout):
    m = proc.wait_line(r"^APP pull result=(\d+) offset=(\d+) size=(\S+) sha256=([0-9a-f]+)$", timeout=timeout)
    return int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)


def test_pull_one_mib(server, packages, mpy_client, tmp_path):
    folder, data = packages
    out = tmp_path / "out.bin"
    with pks.PackageServerThread(folder) as pkg:
        proc = start(mpy_client, server, pkg.uri_for("fw.bin"), out, "pull-1m")
        code, offset, size, digest = result(proc, 60)
        assert (code, offset, size) == (0, SIZE, str(SIZE)), proc.output()
        assert digest == hashlib.sha256(data).hexdigest()
        assert out.read_bytes() == data
        reqs = pkg.requests
    assert [r.num for r in reqs] == list(range(SIZE // BLOCK))  # every block once, in order, none again
    assert all(r.szx == 6 for r in reqs) and reqs[0].size2 and not any(r.size2 for r in reqs[1:])
    assert len(set(r.remote for r in reqs)) == 1  # one socket for the whole pull
    for p in range(10, 101, 10):
        assert proc.count(r"^lwm2m: pull %d%%$" % p) == 1, proc.output()
    assert proc.wait_exit(10) == 0
    proc.assert_clean()


def test_client_serves_its_server_during_a_pull(server, packages, mpy_client, tmp_path):
    folder, data = packages
    out = tmp_path / "out.bin"
    with pks.PackageServerThread(folder, delay=0.003) as pkg:  # about 4 s for 1 MiB
        proc = start(mpy_client, server, pkg.uri_for("fw.bin"), out, "pull-serve")
        server.wait_for("register", "pull-serve", timeout=10)
        proc.wait_line(r"^lwm2m: pull 10%$", timeout=30)
        for _ in range(3):
            t = time.monotonic()
            read = server.read("pull-serve", "/3/0/0", timeout=5)
            assert read.code == "2.05", read
            assert time.monotonic() - t < 1.0  # answered at once, not after the download
        assert not re.search(r"^APP pull", proc.output(), re.M)  # all of it while the pull was running
        code, offset, _, digest = result(proc, 60)
        assert code == 0 and digest == hashlib.sha256(data).hexdigest() and out.read_bytes() == data


def test_killed_pull_resumes_where_the_file_ends(server, packages, mpy_client, tmp_path):
    folder, data = packages
    out = tmp_path / "out.bin"
    with pks.PackageServerThread(folder, delay=0.002) as pkg:
        uri = pkg.uri_for("fw.bin")
        first = start(mpy_client, server, uri, out, "pull-resume")
        first.wait_line(r"^lwm2m: pull 30%$", timeout=30)
        first.proc.send_signal(signal.SIGKILL)
        first.wait_exit(10)
        killed = pkg.requests[0].remote  # its socket: an answer in flight may still be logged after the kill
        held = out.stat().st_size
        assert 0 < held < SIZE and out.read_bytes() == data[:held]  # a prefix of the package
        resume = held - held % BLOCK  # what object 5 keeps: a block boundary
        with open(out, "r+b") as f:
            f.truncate(resume)
        second = start(mpy_client, server, uri, out, "pull-resume-2", resume=resume)
        code, offset, _, digest = result(second, 60)
        assert (code, offset) == (0, SIZE), second.output()
        assert digest == hashlib.sha256(data).hexdigest() and out.read_bytes() == data
        reqs = [r for r in pkg.requests if r.remote != killed]
    nums = [r.num for r in reqs]
    assert nums[0] == resume // BLOCK and 0 not in nums  # the second run did not start over
    assert nums == list(range(resume // BLOCK, SIZE // BLOCK))
    assert len(reqs) + resume // BLOCK == SIZE // BLOCK
    assert second.count(r"^lwm2m: pull \d+%$") <= 10 - resume * 10 // SIZE
    assert second.wait_exit(10) == 0


def test_server_gone_is_connection_lost(server, packages, mpy_client, tmp_path):
    folder, _ = packages
    out = tmp_path / "out.bin"
    pkg = pks.PackageServerThread(folder, delay=0.002).start()
    try:
        proc = start(mpy_client, server, pkg.uri_for("fw.bin"), out, "pull-gone", ack_ms=200)
        proc.wait_line(r"^lwm2m: pull 20%$", timeout=30)
    finally:
        pkg.stop()
    t = time.monotonic()
    code, offset, _, _ = result(proc, 15)  # ICMP unreachable at once; else 200 ms ACK timeouts: under 10 s
    assert code == 4 and 0 < offset < SIZE
    assert time.monotonic() - t < 12
    assert proc.count(r"pull failed \(4\)") == 1
    assert proc.wait_exit(10) == 0


def test_missing_file_is_invalid_uri(server, packages, mpy_client, tmp_path):
    folder, _ = packages
    with pks.PackageServerThread(folder) as pkg:
        proc = start(mpy_client, server, pkg.uri_for("nothing.bin"), tmp_path / "out.bin", "pull-404")
        code, offset, size, _ = result(proc, 20)
    assert (code, offset, size) == (7, 0, "None")
    assert proc.count(r"pull failed \(7\): answer 4\.04") == 1


def test_compiled_tree_pulls_in_a_small_heap(server, packages, mpy_client, tmp_path):
    """Memory is constant whatever the size: the compiled client and a 1 MiB pull in 96 KiB."""
    folder, data = packages
    out = tmp_path / "out.bin"
    with pks.PackageServerThread(folder) as pkg:
        proc = start(mpy_client, server, pkg.uri_for("fw.bin"), out, "pull-small", heapsize="96k",
                     tree=str(ensure_mpy_tree()))
        code, offset, _, digest = result(proc, 60)
    assert (code, offset) == (0, SIZE), proc.output()
    assert digest == hashlib.sha256(data).hexdigest() and out.read_bytes() == data
    proc.assert_clean()


def test_coaps_pull_with_a_pre_shared_key(server, mpy_client, micropython, free_udp_port, tmp_path):
    """coaps://: the pull's own DTLS session (the PSK of the Security instance it is given) to
    tools/dtls_front.py in front of the package server; every datagram on the wire is DTLS."""
    folder = tmp_path / "packages"
    folder.mkdir()
    data = os.urandom(128 * 1024)
    (folder / "fw.bin").write_bytes(data)
    out = tmp_path / "out.bin"
    key = b"fota-secret-key!"
    with pks.PackageServerThread(folder) as pkg, dtls_front(micropython, free_udp_port, pkg.port, "dev-fota", key) as relay:
        proc = start(mpy_client, server, "coaps://127.0.0.1:%d/fw.bin" % relay.port, out, "pull-coaps",
                     psk="dev-fota:" + key.hex())
        code, offset, _, digest = result(proc, 60)
    assert (code, offset) == (0, len(data)), proc.output() + relay.front_output
    assert digest == hashlib.sha256(data).hexdigest() and out.read_bytes() == data
    sent = [d for way, d in relay.log if way == "c2s"]
    assert sent and all_dtls(sent) and all_dtls([d for way, d in relay.log if way == "s2c"])
    assert len(pkg.requests) == len(data) // BLOCK


# --- tools/package_server.py with aiocoap's client as the peer ---------------------------------------------

def _get(port, path, block2=None, size2=False):
    """One GET (no block-wise help from aiocoap): the response Message."""
    import asyncio

    import aiocoap
    from aiocoap.optiontypes import BlockOption

    async def go():
        ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
        try:
            req = aiocoap.Message(code=aiocoap.GET, uri="coap://127.0.0.1:%d/%s" % (port, path))
            if block2 is not None:
                req.opt.block2 = BlockOption.BlockwiseTuple(*block2)
            if size2:
                req.opt.size2 = 0
            return await asyncio.wait_for(ctx.request(req, handle_blockwise=False).response, 10)
        finally:
            await ctx.shutdown()

    return asyncio.run(go())


def test_package_server_blocks_size2_etag(tmp_path):
    folder = tmp_path / "packages"
    folder.mkdir()
    data = os.urandom(5000)
    (folder / "fw.bin").write_bytes(data)
    (folder / "small.bin").write_bytes(b"tiny")
    with pks.PackageServerThread(folder, max_szx=5) as pkg:
        r = _get(pkg.port, "fw.bin", (0, False, 6), size2=True)  # 1024 asked, 512 answered (max_szx 5)
        assert str(r.code) == "2.05 Content" and tuple(r.opt.block2) == (0, True, 5) and r.payload == data[:512]
        assert r.opt.size2 == 5000 and r.opt.etag == hashlib.sha256(data).digest()[:8]
        r = _get(pkg.port, "fw.bin", (3, False, 6))  # block 3 of 1024 = block 6 of 512: the same bytes
        assert tuple(r.opt.block2) == (6, True, 5) and r.payload == data[3072:3584]
        r = _get(pkg.port, "fw.bin", (19, False, 4))  # the last 256-byte block: M=0
        assert tuple(r.opt.block2) == (19, False, 4) and r.payload == data[4864:]
        r = _get(pkg.port, "fw.bin")  # no Block2: the server's size from block 0
        assert tuple(r.opt.block2) == (0, True, 5) and r.payload == data[:512]
        r = _get(pkg.port, "small.bin")  # fits in one: no Block2 at all
        assert r.opt.block2 is None and r.payload == b"tiny" and r.opt.size2 == 4
        assert str(_get(pkg.port, "fw.bin", (10, False, 6)).code) == "4.02 Bad Option"  # beyond the end
        for path in ("nothing.bin", "../packages/fw.bin", ".hidden", ""):
            assert str(_get(pkg.port, path).code) == "4.04 Not Found", path
        first = _get(pkg.port, "fw.bin").opt.etag
        time.sleep(0.01)
        (folder / "fw.bin").write_bytes(data[::-1])  # a new package under the same name: a new ETag
        assert _get(pkg.port, "fw.bin").opt.etag == hashlib.sha256(data[::-1]).digest()[:8] != first
        reqs = pkg.requests
    assert reqs[0] == pks.Request("fw.bin", 0, 6, True, reqs[0].remote) and reqs[3].num is None
