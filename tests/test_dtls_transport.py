"""transport/dtls.py's own logic with a stand-in session (no network): a send error or 5 datagrams
without an answer mean a new handshake; a handshake that fails sends nothing. Runs inside micropython
(the only place with a DTLS client); under CPython the module says so and the tests return."""
from lwm2m_mpy.transport import dtls

MPY = True


class Session:
    """What wrap_socket returns, as far as the transport uses it."""

    def __init__(self, answers=(), fail_write=False):
        self.written = []
        self.answers = list(answers)
        self.fail_write = fail_write
        self.closed = False

    def write(self, data):
        if self.fail_write:
            raise OSError(104)
        self.written.append(bytes(data))

    def recv(self, n):
        if self.answers:
            return self.answers.pop(0)
        raise OSError(11)

    def close(self):
        self.closed = True


def _transport(sessions, log):
    try:
        t = dtls.DTLS("127.0.0.1", 5684, b"id", b"key", log=log.append)
    except OSError:  # CPython: no DTLS client in its ssl module
        return None

    def connect():
        if not sessions:
            log.append("handshake failed")
            return False
        t.sock = sessions.pop(0)
        return True

    t._connect = connect
    return t


def test_five_unanswered_datagrams_mean_a_new_handshake():
    log = []
    first, second = Session(), Session(answers=[b"\x60\x45\x00\x01"])
    t = _transport([first, second], log)
    if t is None:
        return
    for i in range(5):
        t.send(b"abcd", 4)
    assert len(first.written) == 5 and t.sock is first
    t.send(b"abcd", 4)  # the sixth: the session counts as lost
    assert first.closed and t.sock is second and second.written == [b"abcd"]
    assert any("new handshake" in line for line in log)
    assert t.recv() == b"\x60\x45\x00\x01" and t.silent == 0  # an answer resets the count
    assert t.recv() is None


def test_a_send_error_drops_the_session_and_a_failed_handshake_sends_nothing():
    log = []
    broken = Session(fail_write=True)
    t = _transport([broken], log)
    if t is None:
        return
    t.send(b"abcd", 4)
    assert broken.closed and t.sock is None
    t.send(b"abcd", 4)  # no session to be had: nothing is sent, in plaintext or otherwise
    assert t.sock is None and "handshake failed" in log and t.recv() is None
