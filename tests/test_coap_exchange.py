"""lwm2m_mpy/coap/exchange.py, the CoAP message layer (RFC 7252 §4, §5.2, §5.3.2): retransmission and
back-off, NSTART 1, piggybacked and separate responses matched by token, RST, duplicate detection within
EXCHANGE_LIFETIME, and what a server side sends back for every kind of incoming datagram. A fake `send`
records datagrams and the tests drive the clock. Runs under CPython and inside micropython."""
from lwm2m_mpy._compat import ticks_add, ticks_diff
from lwm2m_mpy.coap.exchange import Exchange

MPY = True

# RFC 7252 numbers, written out so the tests do not depend on where the library keeps them.
CON, NON, ACK, RST = 0, 1, 2, 3
GET = 0x01
CONTENT = 0x45  # 2.05
URI_PATH = 11
CONTENT_FORMAT = 12
ACK_TIMEOUT = 2000  # ms (§4.8)
ACK_TIMEOUT_MAX = 3000  # ACK_TIMEOUT * ACK_RANDOM_FACTOR 1.5
MAX_RETRANSMIT = 4
EXCHANGE_LIFETIME = 247000  # ms (§4.8.2)


def _h(text):
    return bytes.fromhex(text.replace(" ", ""))


def dgram(mtype, code, mid, token=b"", options=b"", payload=b""):
    """A datagram built by hand (independent of the Writer under test)."""
    data = bytes([0x40 | mtype << 4 | len(token), code, mid >> 8, mid & 255]) + token + options
    if payload:
        data += b"\xff" + payload
    return data


def fields(data):
    """(type, code, mid, token bytes) of a datagram the Exchange sent."""
    assert data[0] >> 6 == 1, data
    tkl = data[0] & 15
    return (data[0] >> 4 & 3, data[1], data[2] << 8 | data[3], bytes(data[4 : 4 + tkl]))


def empty(mtype, mid):
    return bytes([0x40 | mtype << 4, 0, mid >> 8, mid & 255])


class Peer:
    """The fake network and application around one Exchange."""

    def __init__(self):
        self.sent = []  # every datagram handed to send(), copied
        self.requests = []  # (type, code, mid, token bytes, uri path) the handler saw
        self.results = []  # what the request callback got: None, or (type, code, mid, token, payload)
        self.ex = Exchange(self.send, self.handle)

    def send(self, buf, n):
        self.sent.append(bytes(buf[:n]))

    def handle(self, msg, w):
        self.requests.append((msg.type, msg.code, msg.mid, bytes(msg.buf[4 : 4 + msg.tkl]),
                              msg.strings(URI_PATH)))
        w.option(CONTENT_FORMAT, 0)
        start = w.marker()
        w.put(("n=%d" % len(self.requests)).encode())  # differs per call: a replay is told from a re-run
        w.end_payload(start)
        w.buf[1] = CONTENT

    def done(self, msg):
        if not msg:  # None: timeout; False: RST
            self.results.append(msg)
        else:  # msg is the Exchange's receive buffer: copy out what the test needs now
            self.results.append((msg.type, msg.code, msg.mid, bytes(msg.buf[4 : 4 + msg.tkl]),
                                 bytes(msg.payload())))

    def get(self, now, path="temp", mtype=CON):
        """Send a GET; returns (mid, token) as sent."""
        w = self.ex.begin(GET, mtype)
        w.option(URI_PATH, path)
        before = len(self.sent)
        self.ex.request(self.done, now)
        assert len(self.sent) == before + 1
        t, code, mid, token = fields(self.sent[-1])
        assert (t, code) == (mtype, GET)
        return mid, token


GET_3_0 = dgram(CON, GET, 0x1234, b"\x01\x02", b"\xb1\x33\x01\x30")  # CON GET /3/0, token 0102


# --- outgoing CON: retransmission and timeout (§4.2, §4.8) -----------------------------------------------------

def test_con_request_is_sent_once_and_outstanding():
    p = Peer()
    assert p.ex.step(0) is None and not p.ex.busy()
    mid, token = p.get(0, "rd")
    assert p.ex.busy()
    assert len(token) >= 1  # a client token, so the response can be matched
    assert p.sent == [dgram(CON, GET, mid, token, b"\xb2rd")]
    assert p.results == []


def test_retransmission_back_off_and_timeout():
    p = Peer()
    mid, token = p.get(0)
    first = p.ex.step(0)  # the first deadline: ACK_TIMEOUT times a random factor in [1, 1.5]
    assert ACK_TIMEOUT <= first <= ACK_TIMEOUT_MAX, first
    assert p.ex.step(first - 1) == first and len(p.sent) == 1
    times = [0]
    t = first
    interval = first
    for k in range(MAX_RETRANSMIT):
        assert p.ex.step(t - 1) == t and len(p.sent) == k + 1  # not a moment early
        nxt = p.ex.step(t)
        times.append(t)
        assert len(p.sent) == k + 2 and p.sent[-1] == p.sent[0]  # the same bytes, same MID and token
        interval *= 2
        assert nxt == t + interval, (k, nxt, t, interval)
        assert p.ex.step(t) == nxt and len(p.sent) == k + 2  # stepping again at once sends nothing
        assert p.ex.busy() and p.results == []
        t = nxt
    # retransmissions at T, 3T, 7T, 15T after the first send; give up at 31T (<= MAX_TRANSMIT_WAIT 93 s)
    assert times == [0, first, 3 * first, 7 * first, 15 * first]
    assert t == 31 * first and t <= 93000
    assert p.ex.step(t - 1) == t and p.results == []
    assert p.ex.step(t) is None
    assert p.results == [None] and len(p.sent) == 1 + MAX_RETRANSMIT
    assert not p.ex.busy() and p.ex.step(t + 100000) is None


def test_retransmission_across_the_ticks_wrap():
    p = Peer()
    start = ticks_add(0, -1000)  # 1 s before the ms counter wraps
    p.get(start)
    first = p.ex.step(start)
    wait = ticks_diff(first, start)
    assert ACK_TIMEOUT <= wait <= ACK_TIMEOUT_MAX
    assert first < start  # wrapped
    assert p.ex.step(ticks_add(first, -1)) == first and len(p.sent) == 1
    second = p.ex.step(first)
    assert len(p.sent) == 2 and ticks_diff(second, first) == 2 * wait


def test_a_new_request_gets_a_new_mid_and_token():
    p = Peer()
    mid1, token1 = p.get(0)
    p.ex.feed(dgram(ACK, CONTENT, mid1, token1, payload=b"a"), 10)
    mid2, token2 = p.get(20)
    assert mid2 != mid1 and token2 != token1


def test_nstart_1_busy_until_the_exchange_ends():
    p = Peer()
    mid, token = p.get(0)
    assert p.ex.busy()
    p.ex.feed(empty(ACK, mid), 50)  # acknowledged, the response still to come: still outstanding
    assert p.ex.busy()
    p.ex.feed(dgram(NON, CONTENT, 0x0500, token, payload=b"x"), 60)
    assert not p.ex.busy() and len(p.results) == 1


def test_cancel_forgets_without_callback():
    p = Peer()
    mid, token = p.get(0)
    p.ex.cancel()
    assert not p.ex.busy() and p.ex.step(100000) is None
    p.ex.feed(dgram(ACK, CONTENT, mid, token, payload=b"late"), 200)
    assert p.results == [] and len(p.sent) == 1


def test_non_request_is_not_retransmitted():
    p = Peer()
    mid, token = p.get(0, mtype=NON)
    due = p.ex.step(0)
    assert due is not None and due >= ACK_TIMEOUT_MAX
    assert p.ex.step(due - 1) == due and len(p.sent) == 1
    assert p.ex.step(due) is None
    assert p.results == [None] and len(p.sent) == 1


def test_non_request_gets_non_response():
    p = Peer()
    mid, token = p.get(0, mtype=NON)
    p.ex.feed(dgram(NON, CONTENT, 0x7777, token, payload=b"22"), 100)
    assert p.results == [(NON, CONTENT, 0x7777, token, b"22")]
    assert len(p.sent) == 1  # a NON response is not acknowledged


# --- responses to our CON (§5.2.1, §5.2.2, §5.3.2) ---------------------------------------------------------------

def test_piggybacked_response_delivered():
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(dgram(ACK, CONTENT, mid, token, b"\xc0", b"22.5 C"), 500)
    assert p.results == [(ACK, CONTENT, mid, token, b"22.5 C")]
    assert not p.ex.busy() and p.ex.step(500) is None
    assert p.ex.step(100000) is None and len(p.sent) == 1  # no retransmission afterwards
    p.ex.feed(dgram(ACK, CONTENT, mid, token, b"\xc0", b"22.5 C"), 600)  # a duplicate ACK: ignored
    assert len(p.results) == 1 and len(p.sent) == 1


def test_ack_with_right_mid_but_wrong_token_is_not_the_response():
    p = Peer()
    mid, token = p.get(0)
    wrong = bytes([token[0] ^ 0xFF]) + token[1:]
    p.ex.feed(dgram(ACK, CONTENT, mid, wrong, payload=b"not yours"), 100)
    p.ex.feed(dgram(ACK, CONTENT, mid, b"", payload=b"no token"), 110)
    assert p.results == [] and p.ex.busy()
    p.ex.feed(dgram(ACK, CONTENT, mid, token, payload=b"yours"), 120)
    assert p.results == [(ACK, CONTENT, mid, token, b"yours")]


def test_ack_with_right_token_but_wrong_mid_is_not_the_response():
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(dgram(ACK, CONTENT, (mid + 1) & 0xFFFF, token, payload=b"x"), 100)
    assert p.results == [] and p.ex.busy()


def test_token_is_compared_as_bytes_not_as_a_number():
    # §5.3.1: the token is a sequence of 0-8 bytes. 0x0000AB and 0xAB are different tokens.
    p = Peer()
    p.ex.tok = 0xAA  # the next client token is 0x000000AB: leading zero bytes
    mid, token = p.get(0)
    short = token
    while len(short) > 1 and short[0] == 0:
        short = short[1:]
    assert short != token, "precondition: the client token %r has leading zero bytes" % token
    p.ex.feed(dgram(ACK, CONTENT, mid, short, payload=b"not yours"), 100)
    assert p.results == [], "an ACK with token %r was taken as the response to token %r" % (short, token)
    assert p.ex.busy()


def test_empty_ack_then_separate_con_response():
    p = Peer()
    mid, token = p.get(0)
    first = p.ex.step(0)
    p.ex.feed(empty(ACK, mid), 100)  # §5.2.2: the server will answer later
    assert p.results == [] and p.ex.busy() and len(p.sent) == 1
    due = p.ex.step(first)  # no retransmission after the ACK
    assert len(p.sent) == 1 and due is not None and ticks_diff(due, first) > 0
    p.ex.feed(dgram(CON, CONTENT, 0x23BB, token, b"\xc0", b"22.5 C"), 5000)
    assert p.sent[1:] == [_h("60 00 23 bb")]  # the separate CON response is acknowledged: empty ACK, its MID
    assert p.results == [(CON, CONTENT, 0x23BB, token, b"22.5 C")]
    assert not p.ex.busy() and p.ex.step(6000) is None


def test_separate_con_response_without_empty_ack_first():
    # the empty ACK was lost; the separate response (its own MID) both answers and acknowledges
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(dgram(CON, CONTENT, 0x0101, token, payload=b"x"), 300)
    assert p.sent[1:] == [empty(ACK, 0x0101)]
    assert p.results == [(CON, CONTENT, 0x0101, token, b"x")] and not p.ex.busy()


def test_duplicate_separate_response_is_acknowledged_again():
    # §4.5: our ACK may be lost; the server then retransmits the CON response, and we SHOULD
    # acknowledge each duplicate copy the same way (an RST would tell it we rejected the response).
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(empty(ACK, mid), 100)
    response = dgram(CON, CONTENT, 0x23BB, token, payload=b"22.5 C")
    p.ex.feed(response, 1000)
    p.ex.feed(response, 3500)
    assert len(p.results) == 1  # delivered once
    assert p.sent[1:] == [empty(ACK, 0x23BB), empty(ACK, 0x23BB)], p.sent[1:]


def test_separate_response_never_comes():
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(empty(ACK, mid), 100)
    due = p.ex.step(100)
    assert due is not None and ticks_diff(due, 100) >= 31 * ACK_TIMEOUT  # at least as long as a CON lives
    assert p.ex.step(ticks_add(due, -1)) == due and p.results == []
    assert p.ex.step(due) is None
    assert p.results == [None] and len(p.sent) == 1 and not p.ex.busy()


def test_separate_non_response():
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(empty(ACK, mid), 100)
    p.ex.feed(dgram(NON, CONTENT, 0x4000, token, payload=b"21 C"), 900)
    assert p.results == [(NON, CONTENT, 0x4000, token, b"21 C")]
    assert len(p.sent) == 1  # a NON is not acknowledged


def test_rst_to_our_con():
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(empty(RST, (mid + 1) & 0xFFFF), 50)  # not ours: ignored
    assert p.results == [] and p.ex.busy()
    p.ex.feed(empty(RST, mid), 100)
    assert p.results == [False] and not p.ex.busy()  # False, not None: a RST is not a timeout
    assert p.ex.step(100000) is None and len(p.sent) == 1  # no retransmission after the RST


def _notify(p, mtype, now, token=b"\xaa\xbb"):
    """Send a notification (2.05 with the observer's token, RFC 7641) the way core/observe.py does."""
    w = p.ex.tx
    p.ex.mid = mid = (p.ex.mid + 1) & 0xFFFF
    w.header(mtype, CONTENT, mid, int.from_bytes(token, "big"), len(token))
    if mtype == CON:
        p.ex.request(p.done, now)
    else:
        p.ex.send(w.buf, w.n)
    return mid


def test_con_notification_ends_with_its_empty_ack():
    p = Peer()
    mid = _notify(p, CON, 0)
    assert p.ex.busy()
    p.ex.feed(empty(ACK, mid), 100)
    assert not p.ex.busy() and len(p.results) == 1 and p.results[0][:3] == (ACK, 0, mid)
    assert p.ex.step(100000) is None and len(p.sent) == 1  # no retransmission, no separate-response wait


def test_con_notification_rst_and_timeout_are_told_apart():
    p = Peer()
    mid = _notify(p, CON, 0)
    p.ex.feed(empty(RST, mid), 10)
    assert p.results == [False]
    _notify(p, CON, 20)
    t = 20
    while p.ex.busy():  # 4 retransmissions, then the timeout
        t += 1000
        p.ex.step(t)
    assert p.results == [False, None] and len(p.sent) == 1 + 5


def test_rst_to_a_non_notification_goes_to_the_rst_hook():
    p = Peer()
    heard = []
    p.ex.rst = heard.append
    mid = _notify(p, NON, 0)
    p.ex.feed(empty(RST, mid), 10)
    assert heard == [mid] and p.results == []


def test_con_response_with_unknown_token_gets_rst():
    p = Peer()
    mid, token = p.get(0)
    other = bytes([token[-1] ^ 1]) + token  # a different, longer token
    p.ex.feed(dgram(CON, CONTENT, 0x5555, other, payload=b"?"), 100)
    assert p.sent[1:] == [_h("70 00 55 55")]
    assert p.results == [] and p.ex.busy()
    p.ex.cancel()
    p.ex.feed(dgram(CON, CONTENT, 0x5556, token, payload=b"?"), 200)  # nothing outstanding any more
    assert p.sent[2:] == [_h("70 00 55 56")] and p.results == []


def test_non_response_with_unknown_token_is_ignored():
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(dgram(NON, CONTENT, 0x5555, b"\x99", payload=b"?"), 100)
    assert p.results == [] and p.ex.busy()
    assert all(fields(d)[0] != ACK for d in p.sent)


# --- incoming requests: we are the server (§4.2, §4.5, §5.2) -------------------------------------------------------

def test_con_request_gets_piggybacked_ack():
    p = Peer()
    p.ex.feed(GET_3_0, 0)
    assert p.requests == [(CON, GET, 0x1234, b"\x01\x02", ["3", "0"])]
    # ACK, same MID and token, code from the handler, Content-Format 0, payload
    assert p.sent == [_h("62 45 12 34 01 02 c0 ff") + b"n=1"]


def test_con_request_while_our_request_is_outstanding():
    p = Peer()
    mid, token = p.get(0)
    p.ex.feed(GET_3_0, 10)
    assert p.sent[1] == _h("62 45 12 34 01 02 c0 ff") + b"n=1"
    first = p.ex.step(10)
    p.ex.step(first)  # our retransmission is still the original request, not the response we built
    assert p.sent[2] == p.sent[0]
    p.ex.feed(dgram(ACK, CONTENT, mid, token, payload=b"ok"), first + 10)
    assert p.results == [(ACK, CONTENT, mid, token, b"ok")]


def test_duplicate_con_is_answered_from_cache_within_exchange_lifetime():
    p = Peer()
    t0 = 1000
    p.ex.feed(GET_3_0, t0)
    answer = p.sent[0]
    for dt in (1, 2000, 100000, EXCHANGE_LIFETIME - 1):
        p.ex.feed(GET_3_0, t0 + dt)
        assert p.sent[-1] == answer, dt  # the very same bytes ("n=1")...
        assert len(p.requests) == 1, dt  # ...and the handler not run again
    assert len(p.sent) == 5


def test_duplicate_con_after_exchange_lifetime_runs_the_handler_again():
    p = Peer()
    t0 = 1000
    p.ex.feed(GET_3_0, t0)
    p.ex.feed(GET_3_0, t0 + EXCHANGE_LIFETIME)
    assert len(p.requests) == 2
    assert p.sent == [_h("62 45 12 34 01 02 c0 ff") + b"n=1", _h("62 45 12 34 01 02 c0 ff") + b"n=2"]


def test_different_mids_are_different_requests():
    p = Peer()
    p.ex.feed(GET_3_0, 0)
    p.ex.feed(dgram(CON, GET, 0x1235, b"\x01\x02", b"\xb1\x33\x01\x30"), 10)  # same token, new MID
    assert len(p.requests) == 2
    assert fields(p.sent[1]) == (ACK, CONTENT, 0x1235, b"\x01\x02")


def test_non_request_gets_non_response_with_a_new_mid():
    p = Peer()
    own_mid, own_token = p.get(0)
    p.ex.cancel()
    in_mid = own_mid ^ 0x8000  # far from our own MID sequence
    p.ex.feed(dgram(NON, GET, in_mid, b"\x07", b"\xb1\x33"), 10)
    p.ex.feed(dgram(NON, GET, in_mid ^ 1, b"\x08", b"\xb1\x33"), 20)
    assert [r[:4] for r in p.requests] == [(NON, GET, in_mid, b"\x07"), (NON, GET, in_mid ^ 1, b"\x08")]
    t1, code1, mid1, tok1 = fields(p.sent[1])
    t2, code2, mid2, tok2 = fields(p.sent[2])
    assert (t1, code1, tok1) == (NON, CONTENT, b"\x07") and (t2, code2, tok2) == (NON, CONTENT, b"\x08")
    assert mid1 not in (in_mid, in_mid ^ 1, own_mid) and mid2 not in (in_mid, in_mid ^ 1, own_mid, mid1)
    assert p.sent[1][4:] == b"\x07\xc0\xffn=1"
    next_mid, _ = p.get(30)  # our MID sequence does not reuse them either
    assert next_mid not in (own_mid, mid1, mid2)


def test_empty_con_ping_gets_rst():
    p = Peer()
    p.ex.feed(_h("40 00 ab cd"), 0)
    assert p.sent == [_h("70 00 ab cd")] and p.requests == []


def test_empty_non_ack_rst_without_request_are_ignored():
    p = Peer()
    for data in (_h("50 00 ab cd"), _h("60 00 ab cd"), _h("70 00 ab cd")):
        p.ex.feed(data, 0)
    assert p.sent == [] and p.requests == [] and p.results == []


def test_malformed_con_gets_rst_with_its_mid():
    p = Peer()
    cases = (
        _h("49 01 12 34") + b"\x01" * 12,  # TKL 9
        _h("4f 01 12 35") + b"\x01" * 20,  # TKL 15
        _h("40 01 12 36 f0 00"),  # option delta 15
        _h("40 01 12 37 bf"),  # option length 15
        _h("40 01 12 38 b5 61"),  # truncated option value
        _h("40 01 12 39 ff"),  # payload marker, no payload
        _h("40 00 12 3a 00"),  # Empty with bytes after the header
        _h("40 21 12 3b"),  # reserved class 1
        _h("48 01 12 3c 01 02"),  # truncated token
    )
    for data in cases:
        p.ex.feed(data, 0)
    assert p.sent == [empty(RST, 0x1234 + k) for k in range(len(cases))]
    assert p.requests == []


def test_malformed_non_ack_rst_and_foreign_versions_are_dropped():
    p = Peer()
    mid, token = p.get(0)
    for data in (
        _h("59 01 12 34") + b"\x01" * 12,  # NON, TKL 9
        _h("50 01 12 34 f0"),  # NON, delta 15
        bytes([0x69, CONTENT, mid >> 8, mid & 255]) + b"\x01" * 12,  # ACK with our MID, TKL 9
        _h("70 00 12 34 00"),  # RST with bytes
        _h("00 01 12 34"),  # version 0 "CON"
        _h("80 01 12 34"),  # version 2 "CON"
        _h("40 01 12"),  # shorter than a header
        b"",
    ):
        p.ex.feed(data, 10)
    assert p.sent[1:] == [] and p.requests == [] and p.results == []
    assert p.ex.busy()  # the outstanding request was not disturbed


def test_request_in_ack_or_rst_is_dropped():
    p = Peer()
    p.ex.feed(dgram(ACK, GET, 0x1234, b"\xaa", b"\xb1\x33"), 0)
    p.ex.feed(dgram(RST, GET, 0x1235, b"\xaa", b"\xb1\x33"), 0)
    assert p.sent == [] and p.requests == []


# --- a datagram the transport may have cut (heap too crowded for a full receive) --------------------------------

def test_cut_con_request_is_answered_413_with_size1_and_not_handled():
    p = Peer()
    p.ex.feed(GET_3_0, 0, True)
    assert p.requests == []  # never handed to the application
    # ACK 4.13 (0x8d), same MID and token, Size1 (60) = what fits now: len - 1 = 9
    assert p.sent == [bytes([0x62, 0x8D, 0x12, 0x34, 0x01, 0x02, 0xD1, 60 - 13, 9])], p.sent


def test_cut_non_or_response_is_dropped_quietly():
    p = Peer()
    p.ex.feed(dgram(NON, GET, 0x2222, b"\x07", b"\xb1\x33"), 0, True)
    p.ex.feed(dgram(ACK, CONTENT, 0x2223, b"\x07", b""), 0, True)
    assert p.sent == [] and p.requests == []
