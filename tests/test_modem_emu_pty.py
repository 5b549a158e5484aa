"""tools/modem_emu.py on a pty (--pty): the start-up, attach, open, send and read of tests/test_modem_emu.py
through the pty's slave, from the thread API and from the CLI. Linux/macOS (CPython's pty module)."""
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT
from test_modem_emu import ANSWER, DATA_URC, PAYLOAD, ATClient, open_socket, read, send, start_session

pytest.importorskip("pty")
pytest.importorskip("termios")

sys.path.append(str(ROOT / "tools"))
from modem_emu import ModemEmulator  # noqa: E402


def session(path, dialect, peer):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        client = ATClient(fd)
        start_session(client, dialect)
        port = peer.getsockname()[1]
        assert open_socket(client, dialect, port) == "OK"
        assert send(client, dialect, port, PAYLOAD)[1] in ("OK", "SEND OK")
        data, addr = peer.recvfrom(2048)
        assert data == PAYLOAD  # binary with CR LF inside: the pty is raw, nothing translated
        peer.sendto(ANSWER, addr)
        client.expect(DATA_URC[dialect])
        assert read(client, dialect)[0] == ANSWER
        return client
    finally:
        os.close(fd)


@pytest.fixture
def peer():
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3)
    yield sock
    sock.close()


@pytest.mark.parametrize("dialect", ["sim7080", "bg95", "sara-r5", "nrf91"])
def test_pty_session(peer, dialect):
    with ModemEmulator(dialect, attach_delay=0.1, pty=True) as emu:
        assert emu.stream == emu.path and os.path.exists(emu.path)
        client = session(emu.path, dialect, peer)
        assert emu.bytes_in == client.written
        # a second open of the same pty after the first closed: the modem is still there
        fd = os.open(emu.path, os.O_RDWR | os.O_NOCTTY)
        try:
            again = ATClient(fd)
            assert again.ok("AT+CSQ") == [b"+CSQ: 20,99"]
        finally:
            os.close(fd)


def test_pty_cli(peer):
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "modem_emu.py"), "--dialect", "sara-r5",
                             "--pty", "--attach-delay", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline().strip()
        m = re.match(r"modem_emu: sara-r5 on (/\S+)$", line)
        assert m, line
        session(m.group(1), "sara-r5", peer)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out
        assert re.search(r"AT\+USOST\s+\d+\s+\d+", out), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
