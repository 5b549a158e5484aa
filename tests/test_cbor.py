"""lwm2m_mpy/codec/cbor.py against RFC 8949: every Appendix A example decoded (and the canonical ones
encoded byte for byte), shortest-float encoding, definite/indefinite lengths, tags, every malformed or
hostile input a CoapError 4.00, and a seeded fuzz in which nothing but CoapError escapes. Runs under
CPython and inside micropython; the interop tests at the end (cbor2, an independent implementation) run
under CPython only. The heap checks of both codecs are in test_senml.py."""
from collections import OrderedDict

from lwm2m_mpy.codec import cbor
from lwm2m_mpy.coap.message import Writer
from lwm2m_mpy.errors import CoapError

MPY = True
# Compiling this module (vectors, fuzz, and the CPython-only interop tests) needs more than 64k; the codec's
# own heap use is measured in test_senml.py, which also runs the codecs compiled in a 64k heap.
MPY_HEAP = "128k"
MPY_SKIP = ("test_interop_vectors_with_cbor2", "test_interop_encode_random_with_cbor2",
            "test_interop_decode_cbor2_output", "test_interop_fuzz_against_cbor2")

try:
    import cbor2
except ImportError:  # micropython: the interop tests are in MPY_SKIP
    cbor2 = None

INF = float("inf")
NAN = float("nan")


# --- helpers (no pytest: these also run inside micropython) --------------------------------------------------

def _h(text):
    return bytes.fromhex(text.replace(" ", ""))


def _same(a, b):
    """Equal, with NaN equal to NaN and -0.0 told apart from 0.0, through lists and dicts."""
    if isinstance(a, float) and isinstance(b, float):
        if a != a or b != b:
            return a != a and b != b
        return a == b and (str(a)[0] == "-") == (str(b)[0] == "-")
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and _same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _error(fn, *args):
    """fn(*args) must raise CoapError; returns its code."""
    try:
        fn(*args)
    except CoapError as e:
        return e.code
    raise AssertionError("no CoapError for %r" % (args,))


def _bad(data):
    assert _error(cbor.loads, data) == 128, data


def _od(*pairs):
    """A map whose order survives MicroPython (its dict has no insertion order)."""
    d = OrderedDict()
    for k, v in pairs:
        d[k] = v
    return d


# --- RFC 8949 Appendix A -------------------------------------------------------------------------------------

# (value, encoding): the encoder must write exactly these bytes, the decoder read them back.
CANONICAL = [
    (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
    (1000, "1903e8"), (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"), (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
    (0.0, "f90000"), (-0.0, "f98000"), (1.0, "f93c00"), (1.1, "fb3ff199999999999a"), (1.5, "f93e00"),
    (65504.0, "f97bff"), (100000.0, "fa47c35000"), (3.4028234663852886e38, "fa7f7fffff"),
    (1.0e300, "fb7e37e43c8800759c"), (5.960464477539063e-8, "f90001"), (0.00006103515625, "f90400"),
    (-4.0, "f9c400"), (-4.1, "fbc010666666666666"), (INF, "f97c00"), (NAN, "f97e00"), (-INF, "f9fc00"),
    (False, "f4"), (True, "f5"), (None, "f6"),
    (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"), ("", "60"), ("a", "6161"), ("IETF", "6449455446"),
    ("\"\\", "62225c"), ("\u00fc", "62c3bc"), ("\u6c34", "63e6b0b4"), ("\U00010151", "64f0908591"),
    ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"), (_od((1, 2), (3, 4)), "a201020304"), (_od(("a", 1), ("b", [2, 3])), "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    (_od(("a", "A"), ("b", "B"), ("c", "C"), ("d", "D"), ("e", "E")), "a56161614161626142616361436164614461656145"),
]

# (encoding, value) that decode only: longer float forms, undefined, tags (the tagged item is returned),
# indefinite lengths.
DECODE_ONLY = [
    ("fa7f800000", INF), ("fa7fc00000", NAN), ("faff800000", -INF),
    ("fb7ff0000000000000", INF), ("fb7ff8000000000000", NAN), ("fbfff0000000000000", -INF),
    ("f7", None),
    ("c074323031332d30332d32315432303a30343a30305a", "2013-03-21T20:04:00Z"),
    ("c11a514b67b0", 1363896240), ("c1fb41d452d9ec200000", 1363896240.5),
    ("d74401020304", b"\x01\x02\x03\x04"), ("d818456449455446", b"dIETF"),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", "http://www.example.com"),
    ("c249010000000000000000", b"\x01" + bytes(8)), ("c349010000000000000000", b"\x01" + bytes(8)),
    ("5f42010243030405ff", b"\x01\x02\x03\x04\x05"), ("7f657374726561646d696e67ff", "streaming"),
    ("9fff", []), ("9f018202039f0405ffff", [1, [2, 3], [4, 5]]), ("9f01820203820405ff", [1, [2, 3], [4, 5]]),
    ("83018202039f0405ff", [1, [2, 3], [4, 5]]), ("83019f0203ff820405", [1, [2, 3], [4, 5]]),
    ("9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", list(range(1, 26))),
    ("bf61610161629f0203ffff", {"a": 1, "b": [2, 3]}), ("826161bf61626163ff", ["a", {"b": "c"}]),
    ("bf6346756ef563416d7421ff", {"Fun": True, "Amt": -2}),
    # beyond Appendix A: empty indefinite strings, chunks that are empty, a tag on a tag
    ("5fff", b""), ("7fff", ""), ("7f60616160ff", "a"), ("d91267d9126801", 1), ("d9d9f7f6", None),
]


def test_appendix_a_encode_byte_exact():
    for v, hx in CANONICAL:
        assert cbor.dumps(v) == _h(hx), (v, cbor.dumps(v), hx)


def test_appendix_a_decode():
    for v, hx in CANONICAL:
        assert _same(cbor.loads(_h(hx)), v), (hx, v)
    for hx, v in DECODE_ONLY:
        assert _same(cbor.loads(_h(hx)), v), (hx, v)


def test_decode_types():
    assert type(cbor.loads(_h("4161"))) is bytes
    assert type(cbor.loads(_h("5f4161ff"))) is bytes
    assert type(cbor.loads(_h("f93c00"))) is float
    assert type(cbor.loads(_h("01"))) is int


# --- encoder -------------------------------------------------------------------------------------------------

def test_head_shortest_form():
    for major, n, hx in ((0, 0, "00"), (0, 23, "17"), (0, 24, "1818"), (0, 255, "18ff"), (0, 256, "190100"),
                         (2, 65535, "59ffff"), (4, 65536, "9a00010000"), (5, 4294967295, "baffffffff"),
                         (6, 4294967296, "db0000000100000000"), (7, 22, "f6")):
        w = Writer(16)
        cbor.head(w, major, n)
        assert bytes(w.buf[: w.n]) == _h(hx), (major, n)


def test_float_shortest_exact():
    cases = [
        (2.0 ** -24, "f90001"), (2.0 ** -25, "fa33000000"), (2.0 ** -14, "f90400"), (65520.0, "fa477ff000"),
        (65536.0, "fa47800000"), (0.1, "fb3fb999999999999a"), (1.0 + 2.0 ** -10, "f93c01"),
        (1.0 + 2.0 ** -11, "fa3f801000"), (1.0 + 2.0 ** -23, "fa3f800001"), (1.0 + 2.0 ** -24, "fb3ff0000010000000"),
        (2.0 ** -149, "fa00000001"), (2.0 ** -150, "fb3690000000000000"), (3.4028235677973366e38, "fb47effffff0000000"),
        (1e39, "fb48078287f49c4a1d"), (-2.0 ** -24, "f98001"), (5e-324, "fb0000000000000001"),
    ]
    for v, hx in cases:
        e = cbor.dumps(v)
        assert e == _h(hx), (v, e, hx)
        assert _same(cbor.loads(e), v)


def test_encode_containers_and_buffers():
    assert cbor.dumps((1, "a")) == _h("82016161")
    assert cbor.dumps(bytearray(b"\x01")) == _h("4101")
    assert cbor.dumps(memoryview(b"\x01\x02")[1:]) == _h("4102")
    assert cbor.dumps([[[]]]) == _h("818180")
    assert cbor.dumps({"x": None}) == _h("a16178f6")
    assert cbor.dumps(-(2 ** 64)) == _h("3bffffffffffffffff")


def test_encode_out_of_range():
    for v in (2 ** 64, -(2 ** 64) - 1):
        try:
            cbor.dumps(v)
        except ValueError:
            pass
        else:
            raise AssertionError(v)
    try:
        cbor.dumps(object())
    except TypeError:
        pass
    else:
        raise AssertionError("object encoded")


def test_encode_full_writer_is_5_00():
    for v, size in (("abcd", 4), (b"abcd", 4), (1.1, 8), (1000, 2), ([1, 2, 3], 3), ({"a": 1}, 3)):
        w = Writer(size)
        assert _error(cbor.put, w, v) == 160, v
        assert w.n <= size
    w = Writer(5)
    cbor.put(w, "abcd")  # exactly full
    assert w.n == 5


def test_put_appends_after_existing_bytes():
    w = Writer(16)
    w.put(b"\xaa")
    cbor.put(w, [1, -1])
    assert bytes(w.buf[: w.n]) == _h("aa820120")


# --- decoder -------------------------------------------------------------------------------------------------

def test_decode_range_and_offsets():
    data = _h("ff 83010203 ff")
    v, i = cbor.decode(data, 1, 5, 0)
    assert v == [1, 2, 3] and i == 5
    assert cbor.loads(data, 1, 5) == [1, 2, 3]
    assert cbor.loads(memoryview(data), 1, 5) == [1, 2, 3]
    assert cbor.loads(bytearray(_h("6161"))) == "a"
    # end cuts an item short even when the buffer goes on
    assert _error(cbor.loads, _h("83010203"), 0, 3) == 128


def test_depth_limit():
    assert cbor.loads(_h("81" * 8 + "00")) == [[[[[[[[0]]]]]]]]
    assert cbor.loads(_h("a1 00" * 7 + "81 00")) is not None
    _bad(_h("81" * 9 + "00"))
    _bad(_h("81" * 8 + "80"))  # the ninth level is refused even when empty
    _bad(_h("9f" * 9 + "ff" * 9))
    _bad(_h("a1 00" * 8 + "a0"))
    _bad(_h("9f" * 1152))
    _bad(_h("81" * 1152))
    # strings and tags do not count as levels; a long chain of tags costs no recursion
    assert cbor.loads(_h("c1" * 1000 + "05")) == 5
    assert cbor.loads(_h("81" * 7 + "5f4161ff")) == [[[[[[[b"a"]]]]]]]


MALFORMED = [
    # truncated heads and items
    "", "18", "19 01", "1a 010203", "1b 01020304050607", "38", "f9 00", "fa 000000", "fb 00", "c0", "d9 ffff",
    "41", "62 61", "83 01 02", "a2 01 02 03", "a1 01", "5f", "5f 41 00", "7f 61 61", "9f", "9f 01", "bf",
    "bf 01", "bf 01 02",
    # reserved additional information 28-30, and 31 where no indefinite length exists
    "1c", "1d", "1e", "3c", "5d", "7e", "9c", "bd", "de", "fc", "fd", "fe", "1f", "3f", "df",
    # breaks where no indefinite item is open
    "ff", "81 ff", "a1 01 ff", "a1 ff 01", "82 01 ff", "c0 ff", "bf 01 ff",
    # chunks of an indefinite string: same major type and definite only
    "5f 61 61 ff", "7f 41 61 ff", "5f 5f ff ff", "7f 7f ff ff", "5f 01 ff", "5f c0 41 00 ff", "5f f6 ff",
    # declared lengths and counts past the end (checked before anything is allocated)
    "5a ffffffff 00", "5b ffffffffffffffff 00", "7a 7fffffff", "7b 0000000100000000", "59 0400",
    "9a ffffffff 00", "9b ffffffffffffffff", "ba ffffffff", "bb 8000000000000000", "99 0401 00", "b9 0300 00",
    "98 02 00", "a2 00 00 00",
    # text that is not UTF-8 (RFC 3629): bad bytes, overlong, surrogates, past U+10FFFF, cut sequences
    "61 ff", "61 80", "62 c0 80", "62 c1 bf", "63 e0 80 80", "63 ed a0 80", "63 ed bf bf", "64 f0 80 80 80",
    "64 f4 90 80 80", "64 f5 80 80 80", "62 e2 82", "61 c3", "63 e2 28 a1", "7f 61 c3 61 bc ff",
    # simple values other than false/true/null/undefined
    "e0", "f0", "f3", "f8 00", "f8 13", "f8 14", "f8 18", "f8 20", "f8 ff",
    # map keys that cannot be keys
    "a1 80 00", "a1 a0 00", "a1 9f ff 00",
]


def test_malformed_is_4_00():
    for hx in MALFORMED:
        _bad(_h(hx))


def test_trailing_bytes_are_4_00():
    for hx in ("00 00", "f6 00", "80 ff", "9fff ff", "6161 61"):
        _bad(_h(hx))


def test_nothing_but_coap_error_escapes_fuzz():
    """Seeded mutations of every vector (bytes flipped, inserted, cut) decode or raise CoapError 4.00."""
    seeds = [_h(hx) for _, hx in CANONICAL] + [_h(hx) for hx, _ in DECODE_ONLY] + [_h(hx) for hx in MALFORMED]
    x = 12345
    count = 0
    for data in seeds:
        for _ in range(12):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            b = bytearray(data)
            op = x % 4
            pos = (x >> 8) % (len(b) + 1)
            val = (x >> 16) & 255
            if op == 0 and b:
                b[pos % len(b)] = val
            elif op == 1:
                b[pos:pos] = bytes((val,))
            elif op == 2:
                b = b[:pos]
            else:
                b = b + b
            try:
                cbor.loads(bytes(b))
            except CoapError as e:
                assert e.code == 128, (bytes(b), e.code)
            count += 1
    assert count > 1000


# --- interop with cbor2 (CPython only) -----------------------------------------------------------------------

def test_interop_vectors_with_cbor2():
    """The vectors above as cbor2 reads them: the tables are right, not just consistent with our codec."""
    for v, hx in CANONICAL:
        assert _same(cbor2.loads(_h(hx)), v), hx
        assert cbor2.dumps(v, canonical=isinstance(v, float)) == _h(hx) or isinstance(v, dict), hx
    for hx, v in DECODE_ONLY:
        got = cbor2.loads(_h(hx))
        while isinstance(got, cbor2.CBORTag):
            got = got.value
        if got is cbor2.undefined:
            got = None
        elif hx.startswith(("c2", "c3")):  # cbor2 turns bignums into ints; we return the byte string
            got = (abs(got) - (got < 0)).to_bytes(9, "big")
        elif hx.startswith(("c0", "c1")):  # and tags 0/1 into datetimes
            continue
        assert _same(got, v), hx
    for hx in MALFORMED:
        if hx.startswith(("f0", "f3", "f8 14", "f8 20", "f8 ff", "e0", "a1 80", "a1 a0", "a1 9f")):
            continue  # well-formed to cbor2 (unassigned simple values, container keys): refused by us on purpose
        try:
            cbor2.loads(_h(hx))
        except (cbor2.CBORDecodeError, ValueError):
            continue
        raise AssertionError("cbor2 accepts %s" % hx)


def _random_value(rnd, depth=0):
    import struct

    kind = rnd.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return rnd.choice([0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 64 - 1])
    if kind == 1:
        return -rnd.randrange(1, 2 ** 64 + 1) >> rnd.randrange(64)
    if kind == 2:
        return rnd.randrange(2 ** rnd.randrange(1, 65))
    if kind == 3:  # any double, from its bits (NaN payloads aside)
        f = struct.unpack(">d", rnd.getrandbits(64).to_bytes(8, "big"))[0]
        return f if f == f else NAN
    if kind == 4:  # halves and singles, to exercise the short forms
        f = struct.unpack(">e", rnd.getrandbits(16).to_bytes(2, "big"))[0]
        if rnd.random() < 0.5:
            f = struct.unpack(">f", rnd.getrandbits(32).to_bytes(4, "big"))[0]
        return f if f == f else NAN
    if kind == 5:
        return rnd.choice([None, True, False, 0.0, -0.0, INF, -INF])
    if kind == 6:
        return "".join(chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0xA0, 0xD800),
                                       rnd.randrange(0xE000, 0x110000)])) for _ in range(rnd.randrange(30)))
    if kind == 7:
        return rnd.randbytes(rnd.randrange(300))
    if kind in (8, 9):
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randrange(30))]
    d = {}
    for _ in range(rnd.randrange(10)):
        key = rnd.choice([rnd.randrange(-100, 100), "k%d" % rnd.randrange(1000), bytes([rnd.randrange(256)])])
        d[key] = _random_value(rnd, depth + 1)
    return d


def _no_maps(v):
    """True when v holds no dict: cbor2's canonical form sorts map keys, ours keeps the dict's order."""
    if isinstance(v, dict):
        return False
    return all(_no_maps(x) for x in v) if isinstance(v, list) else True


def test_interop_encode_random_with_cbor2():
    """Ours encodes, cbor2 decodes the same value; for floats and everything but maps the bytes are
    exactly cbor2's canonical (shortest) encoding."""
    import random

    rnd = random.Random(8949)
    for _ in range(3000):
        v = _random_value(rnd)
        data = cbor.dumps(v, 1 << 20)
        assert _same(cbor2.loads(data), v), (v, data.hex())
        if _no_maps(v):
            assert data == cbor2.dumps(v, canonical=True), (v, data.hex())
        assert _same(cbor.loads(data), v)


def test_interop_decode_cbor2_output():
    """cbor2 encodes (plain, canonical, and with values tagged), ours decodes."""
    import random

    rnd = random.Random(7049)
    for _ in range(3000):
        v = _random_value(rnd)
        for data in (cbor2.dumps(v), cbor2.dumps(v, canonical=True), cbor2.dumps(cbor2.CBORTag(4711, v))):
            assert _same(cbor.loads(data), v), (v, data.hex())
    # indefinite lengths and half floats, written by hand (cbor2 writes neither) and checked with cbor2
    for hx in ("9f f93c00 f97bff f90001 f98000 f97c00 ff", "bf 6161 5f 4101 40 4102 ff 6162 7f 6161 6162 ff ff",
               "9f 9f 9f ff ff 9f bf ff ff ff", "a2 f5 9f ff f4 bf ff", "7f 62c3bc 63e6b0b4 ff"):
        data = _h(hx)
        assert _same(cbor.loads(data), cbor2.loads(data)), hx


def test_interop_fuzz_against_cbor2():
    """Random short inputs: whatever we accept, cbor2 reads the same way; nothing but CoapError escapes."""
    import random

    rnd = random.Random(1152)
    alphabet = bytes(range(0x00, 0x1C)) + bytes(range(0x20, 0x3C)) + b"\x40\x41\x42\x5f\x60\x61\x62\x7f" + \
        bytes(range(0x80, 0x84)) + b"\x9f\xa0\xa1\xa2\xbf\xf4\xf5\xf6\xf9\xfa\xfb\xff\xbc\x80\xe6\xb0\xb4"
    accepted = 0
    for _ in range(30000):
        data = bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 12)))
        try:
            v = cbor.loads(data)
        except CoapError as e:
            assert e.code == 128
            continue
        accepted += 1
        assert _same(v, cbor2.loads(data)), data.hex()
    assert accepted > 1000, accepted
