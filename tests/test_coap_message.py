"""lwm2m_mpy/coap/message.py against byte-exact RFC 7252 vectors (§3 format, §3.1 option encoding, §3.2
uint, §4.1 Empty, Appendix A / §2.2 examples): Writer encodes, Msg decodes, every format error is BadMessage,
and a message larger than the Writer's buffer is CoapError 160, never a silent cut. Runs under CPython and
inside micropython."""
from lwm2m_mpy.coap.message import Msg, Writer
from lwm2m_mpy.errors import BadMessage, CoapError

MPY = True
# Not the 64k asked for: `import lwm2m_mpy.coap.message` runs lwm2m_mpy/__init__.py, which imports the
# whole client (core.client), and that alone does not fit in 48k; compiling this module's vectors takes
# the rest. The codec's own footprint is checked below instead: decode and encode allocate nothing.
MPY_HEAP = "160k"

# Numbers from RFC 7252 (§3 types, §12.1 codes, §5.10 options) and RFC 7959, written out here so the
# vectors do not depend on where the library keeps its constants.
CON, NON, ACK, RST = 0, 1, 2, 3
URI_PATH = 11
CONTENT_FORMAT = 12
MAX_AGE = 14
URI_QUERY = 15
BLOCK2 = 23
GET = 0x01
POST = 0x02
CONTENT = 0x45  # 2.05
NOT_FOUND = 0x84  # 4.04


# --- helpers (no pytest: these also run inside micropython) ---------------------------------------------------

def _h(text):
    """Hex with optional spaces -> bytes."""
    return bytes.fromhex(text.replace(" ", ""))


def _raises(exc, fn, *args):
    """Call fn(*args); it must raise exc. Returns the exception."""
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%r did not raise %s" % (args, exc.__name__))


def _decode(data):
    return Msg().decode(data, len(data))


def _bad(data):
    """data must be rejected as a format error (BadMessage, a 4.00 CoapError)."""
    e = _raises(BadMessage, _decode, data)
    assert isinstance(e, CoapError) and e.code == 128, data
    return e


def _write(mtype, code, mid, tok=0, tkl=0, options=(), payload=b"", size=1152):
    w = Writer(size)
    w.header(mtype, code, mid, tok, tkl)
    for num, value in options:
        w.option(num, value)
    if payload is not None:
        start = w.marker()
        w.put(payload)
        w.end_payload(start)
    return bytes(w.buf[: w.n])


def _options(m):
    return [(m.onum[k], m.value(k)) for k in range(m.count)]


TEMPERATURE = b"temperature"


# --- RFC 7252 examples (§2.2 Figures 2-7, Appendix A Figure 16) ------------------------------------------------

# CON [0x7d34] GET /temperature, no token (Appendix A)
GET_7D34 = _h("40 01 7d 34 bb") + TEMPERATURE
# ACK [0x7d34] 2.05 Content "22.3 C"
ACK_7D34 = _h("60 45 7d 34 ff") + b"22.3 C"
# CON [0xbc90] GET /temperature (Token 0x71) and its piggybacked ACK 2.05 "22.5 C" (Figure 4)
GET_BC90 = _h("41 01 bc 90 71 bb") + TEMPERATURE
ACK_BC90 = _h("61 45 bc 90 71 ff") + b"22.5 C"
# ACK [0xbc91] 4.04 Not Found (Token 0x72) "Not found" (Figure 5)
ACK_BC91 = _h("61 84 bc 91 72 ff") + b"Not found"
# Separate response: ACK [0x7a10] empty, then CON [0x23bb] 2.05 (Token 0x73) (Figure 6)
EMPTY_ACK_7A10 = _h("60 00 7a 10")
CON_23BB = _h("41 45 23 bb 73 ff") + b"22.5 C"
# NON [0x7a11] GET /temperature (Token 0x74) (Figure 7)
NON_7A11 = _h("51 01 7a 11 74 bb") + TEMPERATURE


def test_rfc_get_without_token_encodes():
    assert _write(CON, GET, 0x7D34, options=((URI_PATH, "temperature"),)) == GET_7D34


def test_rfc_piggybacked_content_encodes():
    assert _write(ACK, CONTENT, 0x7D34, payload=b"22.3 C") == ACK_7D34
    assert _write(ACK, CONTENT, 0xBC90, 0x71, 1, payload=b"22.5 C") == ACK_BC90
    assert _write(ACK, NOT_FOUND, 0xBC91, 0x72, 1, payload=b"Not found") == ACK_BC91


def test_rfc_get_with_token_encodes():
    assert _write(CON, GET, 0xBC90, 0x71, 1, options=((URI_PATH, b"temperature"),)) == GET_BC90
    assert _write(NON, GET, 0x7A11, 0x74, 1, options=((URI_PATH, "temperature"),)) == NON_7A11


def test_rfc_separate_response_encodes():
    assert _write(ACK, 0, 0x7A10, payload=None) == EMPTY_ACK_7A10
    assert _write(CON, CONTENT, 0x23BB, 0x73, 1, payload=b"22.5 C") == CON_23BB


def test_rfc_get_decodes():
    m = _decode(GET_BC90)
    assert (m.type, m.code, m.mid, m.tkl, m.token()) == (CON, GET, 0xBC90, 1, 0x71)
    assert m.count == 1 and m.onum[0] == URI_PATH and m.ooff[0] == 6 and m.olen[0] == 11
    assert m.value(0) == TEMPERATURE and m.strings(URI_PATH) == ["temperature"]
    assert m.pl == m.n == len(GET_BC90) and bytes(m.payload()) == b""

    m = _decode(GET_7D34)
    assert (m.type, m.code, m.mid, m.tkl, m.token()) == (CON, GET, 0x7D34, 0, 0)
    assert m.strings(URI_PATH) == ["temperature"]

    m = _decode(NON_7A11)
    assert (m.type, m.code, m.mid, m.token()) == (NON, GET, 0x7A11, 0x74)


def test_rfc_responses_decode():
    m = _decode(ACK_BC90)
    assert (m.type, m.code, m.mid, m.tkl, m.token(), m.count) == (ACK, CONTENT, 0xBC90, 1, 0x71, 0)
    assert m.pl == 6 and bytes(m.payload()) == b"22.5 C"
    m = _decode(ACK_BC91)
    assert (m.code, m.token(), bytes(m.payload())) == (NOT_FOUND, 0x72, b"Not found")
    m = _decode(EMPTY_ACK_7A10)
    assert (m.type, m.code, m.mid, m.tkl, m.count, m.pl) == (ACK, 0, 0x7A10, 0, 0, 4)
    m = _decode(CON_23BB)
    assert (m.type, m.code, m.mid, m.token(), bytes(m.payload())) == (CON, CONTENT, 0x23BB, 0x73, b"22.5 C")


def test_all_four_types_in_header():
    for mtype, first in ((CON, 0x40), (NON, 0x50), (ACK, 0x60), (RST, 0x70)):
        data = _write(mtype, 0, 0xFFFF, payload=None)
        assert data == bytes([first, 0, 0xFF, 0xFF])
        m = _decode(data)
        assert (m.type, m.code, m.mid) == (mtype, 0, 0xFFFF)


# --- tokens ------------------------------------------------------------------------------------------------------

TOKENS = (
    (0, 0, b""),
    (1, 0xAB, b"\xab"),
    (2, 0x0102, b"\x01\x02"),
    (3, 0x0000AB, b"\x00\x00\xab"),  # leading zero bytes are kept: the length is the TKL, not the value
    (4, 0xDEADBEEF, b"\xde\xad\xbe\xef"),
    (5, 0x0102030405, b"\x01\x02\x03\x04\x05"),
    (6, 0xFFFFFFFFFFFF, b"\xff" * 6),
    (7, 0x01020304050607, b"\x01\x02\x03\x04\x05\x06\x07"),
    (8, 0xF1F2F3F4F5F6F7F8, b"\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8"),  # a big int on MicroPython
)


def test_tokens_0_to_8_bytes_encode_and_decode():
    for tkl, tok, raw in TOKENS:
        data = _write(CON, GET, 0x1234, tok, tkl, options=((URI_PATH, "a"),))
        assert data == bytes([0x40 | tkl, GET, 0x12, 0x34]) + raw + b"\xb1a", tkl
        m = _decode(data)
        assert (m.tkl, m.token(), m.mid) == (tkl, tok, 0x1234), tkl
        assert m.strings(URI_PATH) == ["a"]


# --- option delta / length: nibbles 13 and 14 (§3.1) --------------------------------------------------------------

def _opt(num, value, last=0):
    """Bytes the Writer produces for one option after option `last` (header of 4, no token)."""
    w = Writer(2048)
    w.header(CON, GET, 0, 0, 0)
    if last:
        w.option(last, b"")
    start = w.n
    w.option(num, value)
    return bytes(w.buf[start : w.n])


def test_delta_up_to_12_is_in_the_nibble():
    assert _opt(1, b"") == b"\x10"
    assert _opt(12, b"") == b"\xc0"
    assert _opt(URI_QUERY, b"q", last=URI_PATH) == b"\x41q"  # delta 4 from 11


def test_delta_13_to_268_uses_one_extension_byte():
    assert _opt(13, b"") == b"\xd0\x00"
    assert _opt(14, b"x") == b"\xd1\x01x"
    assert _opt(268, b"") == b"\xd0\xff"
    assert _opt(300, b"", last=287) == b"\xd0\x00"  # a delta of 13 between two big numbers


def test_delta_269_and_more_uses_two_extension_bytes():
    assert _opt(269, b"") == b"\xe0\x00\x00"
    assert _opt(270, b"") == b"\xe0\x00\x01"
    assert _opt(2048, b"ab") == b"\xe2\x06\xf3ab"  # 2048 - 269 = 0x06f3
    assert _opt(65000, b"") == b"\xe0\xfc\xdb"  # 65000 - 269 = 0xfcdb
    assert _opt(65535, b"") == b"\xe0\xfe\xf2"
    assert _opt(65000, b"", last=2048) == b"\xe0\xf4\xdb"  # delta 62952 - 269 = 0xf4db


def test_length_13_to_268_uses_one_extension_byte():
    assert _opt(11, b"x" * 12) == b"\xbc" + b"x" * 12
    assert _opt(11, b"x" * 13) == b"\xbd\x00" + b"x" * 13
    assert _opt(11, b"x" * 14) == b"\xbd\x01" + b"x" * 14
    assert _opt(11, b"x" * 268) == b"\xbd\xff" + b"x" * 268


def test_length_269_and_more_uses_two_extension_bytes():
    assert _opt(11, b"y" * 269) == b"\xbe\x00\x00" + b"y" * 269
    assert _opt(11, b"y" * 1000) == b"\xbe\x02\xdb" + b"y" * 1000  # 1000 - 269 = 0x02db


def test_delta_and_length_both_extended_in_order():
    # header byte, then the delta's extension bytes, then the length's (§3.1 Figure 8)
    assert _opt(300, b"v" * 20) == b"\xed\x00\x1f\x07" + b"v" * 20
    assert _opt(20, b"v" * 300) == b"\xde\x07\x00\x1f" + b"v" * 300
    assert _opt(5000, b"v" * 270) == b"\xee\x12\x7b\x00\x01" + b"v" * 270


def test_extended_forms_decode():
    for num, value, last in ((13, b"", 0), (268, b"a", 0), (269, b"", 0), (2048, b"ab", 0), (65000, b"", 0),
                             (65535, b"z", 0), (300, b"v" * 20, 0), (20, b"v" * 300, 0), (11, b"x" * 13, 0),
                             (11, b"x" * 268, 0), (11, b"y" * 269, 0), (11, b"y" * 1000, 0),
                             (65000, b"q", 2048)):
        data = _h("40 01 00 07")
        if last:
            data += _opt(last, b"")
        data += _opt(num, value, last)
        m = _decode(data)
        assert m.count == (2 if last else 1)
        assert m.onum[m.count - 1] == num and m.value(m.count - 1) == value, (num, len(value))
        assert m.pl == len(data)


def test_decode_accepts_hand_made_extended_vectors():
    # Independent of the Writer: bytes taken straight from §3.1.
    m = _decode(_h("40 01 00 01 d1 00 61 e1 00 00 62 1d 00") + b"c" * 13 + _h("ff 70"))
    assert _options(m) == [(13, b"a"), (13 + 269, b"b"), (13 + 269 + 1, b"c" * 13)]
    assert bytes(m.payload()) == b"p"


# --- repeated options, uint options, order ------------------------------------------------------------------------

REGISTER = (_h("42 02 ab cd 12 34 b2") + b"rd" + b"\x47ep=node" + b"\x06lt=300" + b"\x09lwm2m=1.1"
            + b"\x03b=U" + b"\xff</1/0>")


def test_repeated_uri_path_and_uri_query():
    data = _write(CON, POST, 0xABCD, 0x1234, 2,
                  options=((URI_PATH, "rd"), (URI_QUERY, "ep=node"), (URI_QUERY, "lt=300"),
                           (URI_QUERY, "lwm2m=1.1"), (URI_QUERY, "b=U")),
                  payload=b"</1/0>")
    assert data == REGISTER
    m = _decode(data)
    assert m.strings(URI_PATH) == ["rd"]
    assert m.strings(URI_QUERY) == ["ep=node", "lt=300", "lwm2m=1.1", "b=U"]
    assert m.find(URI_QUERY) == 1 and m.find(URI_QUERY, 2) == 2 and m.find(URI_QUERY, 5) == -1
    assert m.find(CONTENT_FORMAT) == -1 and m.strings(CONTENT_FORMAT) == []
    assert bytes(m.payload()) == b"</1/0>"


def test_many_uri_path_segments():
    path = ("3", "0", "13", "", "x" * 20)
    data = _write(CON, GET, 1, options=[(URI_PATH, p) for p in path])
    assert data == _h("40 01 00 01 b1 33 01 30 02 31 33 00 0d 07") + b"x" * 20
    assert _decode(data).strings(URI_PATH) == list(path)


def test_uint_option_fewest_bytes_and_zero_is_empty():
    assert _opt(CONTENT_FORMAT, 0) == b"\xc0"
    assert _opt(CONTENT_FORMAT, 11542) == b"\xc2\x2d\x16"
    for value, raw in ((0, b""), (1, b"\x01"), (255, b"\xff"), (256, b"\x01\x00"), (65535, b"\xff\xff"),
                       (65536, b"\x01\x00\x00"), (0xFFFFFFFF, b"\xff\xff\xff\xff")):
        enc = _opt(MAX_AGE, value)
        assert enc == bytes([0xD0 | len(raw), 1]) + raw, value  # Max-Age 14 = delta 13 + 1
        m = _decode(_h("40 01 00 01") + enc)
        assert m.uint(MAX_AGE) == value


def test_uint_decode_default_and_leading_zeros():
    m = _decode(_h("40 01 00 01 c0 22 00 3c"))  # Content-Format empty (0), Max-Age 00 3c (60, not minimal)
    assert m.uint(CONTENT_FORMAT) == 0
    assert m.uint(MAX_AGE) == 60
    assert m.uint(BLOCK2) is None and m.uint(BLOCK2, 7) == 7


def test_options_must_ascend():
    w = Writer(64)
    w.header(CON, GET, 1, 0, 0)
    w.option(URI_PATH, "a")
    w.option(URI_PATH, "b")  # equal numbers (delta 0) are fine
    n = w.n
    _raises(ValueError, w.option, URI_PATH - 1, "c")
    _raises(ValueError, w.option, 1, 0)
    assert w.n == n  # nothing written by a refused option
    w.option(URI_QUERY, "q")
    assert bytes(w.buf[: w.n]) == b"\x40\x01\x00\x01\xb1a\x01b\x41q"


def test_header_resets_option_order():
    w = Writer(64)
    w.header(CON, GET, 1, 0, 0)
    w.option(URI_QUERY, "q")
    w.header(ACK, CONTENT, 2, 0, 0)
    w.option(CONTENT_FORMAT, 0)  # a new message starts from option 0 again
    assert bytes(w.buf[: w.n]) == b"\x60\x45\x00\x02\xc0"


# --- payload marker -----------------------------------------------------------------------------------------------

def test_payload_marker():
    w = Writer(64)
    w.header(ACK, CONTENT, 5, 0x7, 1)
    w.option(CONTENT_FORMAT, 0)
    start = w.marker()
    assert start == 7 and w.buf[6] == 0xFF
    w.put(b"22")
    w.put(b".5")
    w.end_payload(start)
    assert bytes(w.buf[: w.n]) == b"\x61\x45\x00\x05\x07\xc0\xff22.5"
    m = _decode(bytes(w.buf[: w.n]))
    assert m.pl == 7 and bytes(m.payload()) == b"22.5"


def test_empty_payload_drops_the_marker():
    w = Writer(64)
    w.header(ACK, 0x44, 5, 0, 0)
    w.option(CONTENT_FORMAT, 0)
    start = w.marker()
    w.end_payload(start)
    assert bytes(w.buf[: w.n]) == b"\x60\x44\x00\x05\xc0"
    m = _decode(bytes(w.buf[: w.n]))
    assert m.pl == m.n == 5 and bytes(m.payload()) == b""


def test_payload_may_contain_ff_bytes():
    m = _decode(_h("50 45 00 01 ff ff ff 00"))
    assert m.count == 0 and bytes(m.payload()) == b"\xff\xff\x00"


def test_decode_reads_only_n_bytes_of_a_larger_buffer():
    buf = bytearray(64)
    buf[: len(GET_BC90)] = GET_BC90
    buf[len(GET_BC90)] = 0xF0  # would be a format error if it were read
    m = Msg().decode(buf, len(GET_BC90))
    assert m.strings(URI_PATH) == ["temperature"] and m.n == len(GET_BC90)
    _raises(BadMessage, m.decode, buf, len(GET_BC90) - 3)  # the same buffer cut inside the option value
    _raises(BadMessage, m.decode, buf, len(GET_BC90) + 1)  # and now the 0xf0 after it is read


def test_msg_is_reusable():
    m = Msg()
    m.decode(REGISTER, len(REGISTER))
    assert m.count == 5
    m.decode(ACK_BC90, len(ACK_BC90))
    assert m.count == 0 and m.find(URI_QUERY) == -1 and bytes(m.payload()) == b"22.5 C"


# --- round trips --------------------------------------------------------------------------------------------------

ROUND_TRIPS = (
    (CON, GET, 0, 0, 0, ((URI_PATH, b"3"), (URI_PATH, b"0"), (URI_PATH, b"13")), b""),
    (NON, POST, 0xFFFF, 0xCAFE, 2, ((URI_PATH, b"rd"), (CONTENT_FORMAT, 40), (URI_QUERY, b"ep=x")), b"</1/0>"),
    (ACK, CONTENT, 0x8000, 0x0102030405060708, 8, ((6, 12), (CONTENT_FORMAT, 11542), (MAX_AGE, 0)), b"\x00" * 100),
    (CON, 0x43, 77, 1, 1, ((8, b"rd"), (8, b"x" * 300), (BLOCK2, 0x1A), (2048, b"y" * 13), (65000, 0xFFFF)), b"ok"),
    (RST, 0, 9, 0, 0, (), b""),
    (ACK, 0xA0, 9, 0xF, 1, ((60, 1 << 31),), b"e" * 500),  # 5.00
)


def _value(v):
    if isinstance(v, int):
        out = b""
        while v:
            out = bytes([v & 255]) + out
            v >>= 8
        return out
    return v


def test_encode_decode_round_trips():
    for mtype, code, mid, tok, tkl, options, payload in ROUND_TRIPS:
        data = _write(mtype, code, mid, tok, tkl, options, payload)
        m = _decode(data)
        assert (m.type, m.code, m.mid, m.tkl, m.token()) == (mtype, code, mid, tkl, tok)
        assert _options(m) == [(num, _value(v)) for num, v in options]
        assert bytes(m.payload()) == payload
        for num, v in options:
            if isinstance(v, int):
                assert m.uint(num) == v
        # and back: re-encoding what was decoded gives the same bytes
        w = Writer(2048)
        w.header(m.type, m.code, m.mid, m.token(), m.tkl)
        for k in range(m.count):
            w.option(m.onum[k], m.value(k))
        if m.pl < m.n:
            w.put(b"\xff")
            w.put(m.payload())
        assert bytes(w.buf[: w.n]) == data


# --- malformed datagrams: every one is BadMessage -----------------------------------------------------------------

def test_shorter_than_header():
    for data in (b"", b"\x40", b"\x40\x01", b"\x40\x01\x00"):
        _bad(data)


def test_bad_version():
    for first in (0x01, 0x81, 0xC1, 0x00, 0xB0):
        _bad(bytes([first]) + _h("01 00 01 aa bb"))
    assert _decode(_h("40 01 00 01")).type == CON  # version 1 is the only one


def test_token_length_9_to_15():
    for tkl in range(9, 16):
        _bad(bytes([0x40 | tkl, 0x01, 0, 1]) + b"\x01" * 20)


def test_truncated_token():
    _bad(_h("48 01 00 01 01 02 03"))
    _bad(_h("41 45 00 01"))
    _bad(_h("58 45 00 01 01 02 03 04 05 06 07"))


def test_delta_nibble_15_that_is_not_a_marker():
    for b in (0xF0, 0xF1, 0xFD, 0xFE):
        _bad(_h("40 01 00 01") + bytes([b]) + b"abcdefghijklmnopq")
    _bad(_h("40 01 00 01 b1 61 f0"))


def test_length_nibble_15():
    for b in (0x0F, 0xBF, 0xDF, 0xEF):
        _bad(_h("40 01 00 01") + bytes([b]) + b"\x00" * 20)


def test_truncated_option_extension_bytes():
    _bad(_h("40 01 00 01 d0"))  # delta 13, no extension byte
    _bad(_h("40 01 00 01 e0"))  # delta 14, no extension bytes
    _bad(_h("40 01 00 01 e0 00"))  # delta 14, one of two
    _bad(_h("40 01 00 01 bd"))  # length 13, no extension byte
    _bad(_h("40 01 00 01 be 00"))  # length 14, one of two
    _bad(_h("40 01 00 01 dd 00"))  # delta 13 present, length 13 missing
    _bad(_h("40 01 00 01 ee 00 00 00"))  # delta 14 present, length 14 half there


def test_truncated_option_value():
    _bad(_h("40 01 00 01 b5 61 62"))
    _bad(_h("40 01 00 01 bd 00") + b"x" * 12)  # 13 announced, 12 there
    _bad(_h("40 01 00 01 be 00 00") + b"x" * 268)  # 269 announced
    _bad(GET_BC90[:-1])


def test_marker_with_empty_payload():
    _bad(_h("40 01 00 01 ff"))
    _bad(_h("61 45 00 01 07 c0 ff"))


def test_empty_message_with_extra_bytes():
    _bad(_h("60 00 12 34 00"))
    _bad(_h("40 00 12 34 ff 41"))
    _bad(_h("41 00 12 34 aa"))  # an Empty message must have TKL 0 (§4.1)
    _bad(_h("41 00 12 34"))
    _bad(_h("70 00 12 34 c0"))
    for data in (_h("40 00 12 34"), _h("60 00 12 34"), _h("70 00 12 34")):
        assert _decode(data).code == 0


def test_reserved_code_classes():
    for code in (0x20, 0x21, 0x3F, 0xC0, 0xC1, 0xDF, 0xE0, 0xE1, 0xFF):
        _bad(bytes([0x40, code, 0, 1]))
        _bad(bytes([0x60, code, 0, 1, 0xFF, 0x61]))
    for code in (0x01, 0x1F, 0x41, 0x80, 0xA0, 0xBF):  # 0, 2, 4 and 5 are fine
        assert _decode(bytes([0x40, code, 0, 1])).code == code


def test_option_number_beyond_65535():
    _bad(_h("40 01 00 01 e0 ff ff"))  # 65535 + 269
    _bad(_h("40 01 00 01 e0 fe f2 10"))  # 65535, then + 1
    assert _decode(_h("40 01 00 01 e0 fe f2")).onum[0] == 65535


def test_more_options_than_the_table_holds():
    # Msg keeps options in a fixed table; beyond it the datagram is refused (BadMessage, a 4.00), not cut.
    data = _h("40 01 00 01") + b"\xb0"
    while True:
        try:
            m = _decode(data)
        except BadMessage:
            break
        assert m.count == len(data) - 4
        data += b"\x00"  # one more empty Uri-Path
        assert len(data) < 200, "no limit on the option table"
    assert len(data) - 4 > 16  # room for any LwM2M request: /rd + ep, lt, lwm2m, b, sms, Queue ...


# --- a message larger than the buffer: CoapError 160, never cut -------------------------------------------------

def _too_large(fn, *args):
    e = _raises(CoapError, fn, *args)
    assert e.code == 160 and not isinstance(e, BadMessage)


def test_payload_larger_than_buffer_is_500():
    w = Writer(16)
    w.header(ACK, CONTENT, 1, 0, 0)
    start = w.marker()
    w.put(b"x" * 11)  # exactly full: 4 + 1 + 11
    assert w.n == 16 and start == 5
    _too_large(w.put, b"y")
    assert w.n == 16 and len(w.buf) == 16 and bytes(w.buf[5:16]) == b"x" * 11


def test_put_larger_than_buffer_is_500():
    w = Writer(16)
    w.header(ACK, CONTENT, 1, 0, 0)
    w.marker()
    _too_large(w.put, b"x" * 12)
    assert w.n == 5 and len(w.buf) == 16  # nothing written, the buffer did not grow


def test_marker_in_full_buffer_is_500():
    w = Writer(8)
    w.header(ACK, CONTENT, 1, 0, 0)
    w.put(b"abcd")
    _too_large(w.marker)
    assert w.n == 8


def test_option_larger_than_buffer_is_500():
    w = Writer(32)
    w.header(CON, GET, 1, 0, 0)
    _too_large(w.option, URI_PATH, b"x" * 40)
    assert len(w.buf) == 32
    w = Writer(300)
    w.header(CON, GET, 1, 0, 0)
    _too_large(w.option, URI_PATH, "y" * 300)  # a str value is measured in bytes too
    assert len(w.buf) == 300


def test_option_that_fits_exactly_is_accepted():
    # 4 header + 1 option header + 2 value = 7: fits a 7-byte buffer with nothing to spare.
    w = Writer(7)
    w.header(CON, GET, 1, 0, 0)
    w.option(URI_PATH, b"ab")
    assert bytes(w.buf[: w.n]) == b"\x40\x01\x00\x01\xb2ab"
    # and an extended one: 4 + 1 + 2 (delta 2048) + 1 (length 13) + 13 = 21
    w = Writer(21)
    w.header(CON, GET, 1, 0, 0)
    w.option(2048, b"z" * 13)
    assert w.n == 21


# --- no allocation per packet (Habit 3; measurable only inside micropython) ------------------------------------

def _allocated(fn, *args):
    """Bytes of heap fn(*args) allocates, with the collector off; None where there is no gc.mem_alloc."""
    import gc
    if not hasattr(gc, "mem_alloc"):
        return None
    fn(*args)  # warm up: first calls may intern names or grow caches
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        fn(*args)
        return gc.mem_alloc() - before
    finally:
        gc.enable()


X20 = b"x" * 20


def _encode_response(w):
    w.header(ACK, CONTENT, 0xBC90, 0x71, 1)
    w.option(URI_PATH, TEMPERATURE)
    w.option(CONTENT_FORMAT, 0)
    w.option(MAX_AGE, 60)
    w.option(2048, X20)
    start = w.marker()
    w.put(b"22.5 C")
    w.end_payload(start)


def _decode_and_read(m, data):
    m.decode(data, len(data))
    m.token()
    m.uint(CONTENT_FORMAT)
    m.find(URI_QUERY)


def test_decode_allocates_nothing():
    data = REGISTER
    used = _allocated(_decode_and_read, Msg(), data)
    assert used in (None, 0), used


def test_encode_allocates_nothing():
    w = Writer(256)
    used = _allocated(_encode_response, w)
    assert used in (None, 0), "Writer allocated %d bytes for one message" % used
