"""Host-side LwM2M payload codecs: TLV (LwM2M 1.1 Core §7.4.3), plain text (§7.4.1), SenML JSON and
SenML CBOR (§7.4.4 / §7.4.5 on RFC 8428), CoRE link format (RFC 6690, as used by Register and
Discover, Core §6.2.1 / §5.4.2).

Written from the specifications for the host server (tools/lwm2m_server.py), independently of the
client's streaming codecs in lwm2m_mpy/codec/, so that interop tests compare two implementations.
Plain CPython: values are Python objects, payloads are bytes.
"""
import base64
import json
import re
import struct
from typing import NamedTuple, Optional

import cbor2

# --- Content-Format numbers (Core §7.2, the CoRE Content-Formats registry) ------------------------
TEXT = 0  # text/plain;charset=utf-8
LINK = 40  # application/link-format
OPAQUE = 42  # application/octet-stream
CBOR = 60
SENML_JSON = 110
SENML_CBOR = 112
TLV = 11542  # application/vnd.oma.lwm2m+tlv
LWM2M_JSON = 11543  # application/vnd.oma.lwm2m+json
LWM2M_CBOR = 11544  # application/vnd.oma.lwm2m+cbor (LwM2M 1.2)
# Pre-registration numbers that LwM2M 1.0 implementations still send.
OLD_TEXT = 1541
OLD_TLV = 1542
OLD_JSON = 1543
OLD_OPAQUE = 1544

TEXT_FORMATS = (TEXT, OLD_TEXT)
TLV_FORMATS = (TLV, OLD_TLV)
OPAQUE_FORMATS = (OPAQUE, OLD_OPAQUE)

# --- TLV identifier kinds: bits 7-6 of the type byte ----------------------------------------------
OBJECT_INSTANCE = 0  # value holds Resource / Multiple Resource TLVs
RESOURCE_INSTANCE = 1  # one instance inside a Multiple Resource TLV
MULTIPLE_RESOURCE = 2  # value holds Resource Instance TLVs
RESOURCE = 3  # value is the resource value itself

KIND_NAMES = ("object instance", "resource instance", "multiple resource", "resource")

# Canonical data-type names (Core Appendix C) and the spellings accepted for them (the OMA object
# XML spells them "Unsigned Integer", "Objlnk", ...).
_TYPE_ALIASES = {
    "string": "string", "str": "string",
    "integer": "integer", "int": "integer",
    "unsigned integer": "unsigned", "unsigned": "unsigned", "uint": "unsigned",
    "float": "float",
    "boolean": "boolean", "bool": "boolean",
    "opaque": "opaque", "bytes": "opaque",
    "time": "time",
    "objlnk": "objlnk",
    "corelnk": "corelnk",
    "none": "none", "": "none",
}


class CodecError(ValueError):
    """A payload that does not follow the format, or a value that cannot be encoded as asked."""


def norm_type(type_name):
    """Canonical data-type name ('string', 'integer', 'unsigned', 'float', 'boolean', 'opaque',
    'time', 'objlnk', 'corelnk', 'none') for any accepted spelling; None stays None (unknown)."""
    if type_name is None:
        return None
    try:
        return _TYPE_ALIASES[str(type_name).strip().lower()]
    except KeyError:
        raise CodecError("unknown data type %r" % (type_name,)) from None


def infer_type(value):
    """The data type a Python value encodes as when no type is given."""
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        # Integer is signed 64-bit (Core App. C); only larger values need Unsigned Integer.
        return "unsigned" if value > 0x7FFFFFFFFFFFFFFF else "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "opaque"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return "objlnk"
    raise CodecError("cannot infer an LwM2M data type for %r" % (value,))


# --- TLV values (binary representation of each data type, Core App. C) ----------------------------

def _int_bytes(value, signed):
    # Integers take the fewest of 1, 2, 4 or 8 bytes that hold the value (Core App. C).
    for size in (1, 2, 4, 8):
        try:
            return value.to_bytes(size, "big", signed=signed)
        except OverflowError:
            continue
    raise CodecError("integer %d does not fit in 8 bytes" % value)


def encode_tlv_value(value, type_name=None):
    """The TLV value bytes of one resource (instance) value."""
    kind = norm_type(type_name) or infer_type(value)
    if kind in ("string", "corelnk"):
        if not isinstance(value, str):
            raise CodecError("%s value must be str, got %r" % (kind, value))
        return value.encode("utf-8")
    if kind in ("integer", "time"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CodecError("%s value must be int, got %r" % (kind, value))
        return _int_bytes(value, signed=True)
    if kind == "unsigned":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CodecError("unsigned value must be a non-negative int, got %r" % (value,))
        return _int_bytes(value, signed=False)
    if kind == "float":
        value = float(value)
        # 4 bytes when single precision holds the value exactly, else 8 (both are valid).
        single = struct.pack(">f", value)
        if struct.unpack(">f", single)[0] == value or value != value:
            return single
        return struct.pack(">d", value)
    if kind == "boolean":
        if value not in (True, False, 0, 1):
            raise CodecError("boolean value must be True/False, got %r" % (value,))
        return b"\x01" if value else b"\x00"
    if kind == "opaque":
        return bytes(value)
    if kind == "objlnk":
        object_id, instance_id = value
        return struct.pack(">HH", object_id, instance_id)
    if kind == "none":
        return b""
    raise CodecError("cannot encode type %r" % kind)


def decode_tlv_value(data, type_name=None):
    """Python value of TLV value bytes; with no (or an unknown) type the bytes come back as they are."""
    data = bytes(data)
    kind = norm_type(type_name)
    if kind is None or kind == "opaque":
        return data
    if kind in ("string", "corelnk"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CodecError("string value is not UTF-8: %s" % e) from None
    if kind in ("integer", "time", "unsigned"):
        if len(data) not in (1, 2, 4, 8):
            raise CodecError("%s value of %d bytes (must be 1, 2, 4 or 8)" % (kind, len(data)))
        return int.from_bytes(data, "big", signed=(kind != "unsigned"))
    if kind == "float":
        if len(data) == 4:
            return struct.unpack(">f", data)[0]
        if len(data) == 8:
            return struct.unpack(">d", data)[0]
        raise CodecError("float value of %d bytes (must be 4 or 8)" % len(data))
    if kind == "boolean":
        if data not in (b"\x00", b"\x01"):
            raise CodecError("boolean value %r (must be one byte 0 or 1)" % data)
        return data == b"\x01"
    if kind == "objlnk":
        if len(data) != 4:
            raise CodecError("objlnk value of %d bytes (must be 4)" % len(data))
        return struct.unpack(">HH", data)
    if kind == "none":
        return data
    raise CodecError("cannot decode type %r" % kind)


# --- TLV framing (Core §7.4.3) ----------------------------------------------------------------------
# Type byte: bits 7-6 identifier kind; bit 5 identifier length (0: 8 bits, 1: 16 bits); bits 4-3
# length-field size (00: none, the value length is in bits 2-0; 01/10/11: 8/16/24-bit length field);
# bits 2-0 value length when bits 4-3 are 00. Then the identifier, the length field, the value.

def tlv_entry(kind, identifier, value):
    """One TLV: header with the shortest identifier and length encodings, then the value bytes."""
    if kind not in (OBJECT_INSTANCE, RESOURCE_INSTANCE, MULTIPLE_RESOURCE, RESOURCE):
        raise CodecError("bad TLV kind %r" % (kind,))
    if not 0 <= identifier <= 0xFFFF:
        raise CodecError("TLV identifier %d out of range 0..65535" % identifier)
    value = bytes(value)
    length = len(value)
    type_byte = kind << 6
    if identifier > 0xFF:
        type_byte |= 0x20
        ident = identifier.to_bytes(2, "big")
    else:
        ident = bytes((identifier,))
    if length < 8:
        type_byte |= length
        length_field = b""
    elif length <= 0xFF:
        type_byte |= 0x08
        length_field = length.to_bytes(1, "big")
    elif length <= 0xFFFF:
        type_byte |= 0x10
        length_field = length.to_bytes(2, "big")
    elif length <= 0xFFFFFF:
        type_byte |= 0x18
        length_field = length.to_bytes(3, "big")
    else:
        raise CodecError("TLV value of %d bytes exceeds the 24-bit length field" % length)
    return bytes((type_byte,)) + ident + length_field + value


def tlv_split(data):
    """The TLVs at one nesting level: a list of (kind, identifier, value bytes). Raises CodecError on
    a header or value that runs past the end of data."""
    data = bytes(data)
    entries = []
    pos = 0
    end = len(data)
    while pos < end:
        type_byte = data[pos]
        pos += 1
        kind = type_byte >> 6
        ident_size = 2 if type_byte & 0x20 else 1
        length_size = (type_byte >> 3) & 0x03
        if pos + ident_size + length_size > end:
            raise CodecError("TLV header truncated at byte %d" % (pos - 1))
        identifier = int.from_bytes(data[pos:pos + ident_size], "big")
        pos += ident_size
        if length_size:
            length = int.from_bytes(data[pos:pos + length_size], "big")
            pos += length_size
        else:
            length = type_byte & 0x07
        if pos + length > end:
            raise CodecError("TLV %s %d: value of %d bytes runs past the payload end"
                             % (KIND_NAMES[kind], identifier, length))
        entries.append((kind, identifier, data[pos:pos + length]))
        pos += length
    return entries


def _resources_from_entries(entries, types):
    """{rid: value or {riid: value}} from the Resource / Multiple Resource TLVs of one instance."""
    resources = {}
    for kind, rid, value in entries:
        if rid in resources:
            raise CodecError("resource %d appears twice" % rid)
        type_name = types.get(rid) if types else None
        if kind == RESOURCE:
            resources[rid] = decode_tlv_value(value, type_name)
        elif kind == MULTIPLE_RESOURCE:
            instances = {}
            for sub_kind, riid, sub_value in tlv_split(value):
                if sub_kind != RESOURCE_INSTANCE:
                    raise CodecError("multiple resource %d holds a %s TLV" % (rid, KIND_NAMES[sub_kind]))
                if riid in instances:
                    raise CodecError("resource instance %d/%d appears twice" % (rid, riid))
                instances[riid] = decode_tlv_value(sub_value, type_name)
            resources[rid] = instances
        else:
            raise CodecError("a %s TLV where a resource was expected" % KIND_NAMES[kind])
    return resources


def decode_tlv(data, types=None):
    """Decode a TLV payload by what its top level holds:
      Object Instance TLVs        -> {iid: {rid: value or {riid: value}}}
      Resource / Multiple Resource -> {rid: value or {riid: value}}
      Resource Instance TLVs       -> {riid: value}
    types maps resource id -> data type (see norm_type); values of resources without a type come
    back as bytes. For resource-instance payloads types may be a single type name."""
    entries = tlv_split(data)
    kinds = {kind for kind, _, _ in entries}
    if not entries:
        return {}
    if kinds == {OBJECT_INSTANCE}:
        instances = {}
        for _, iid, value in entries:
            if iid in instances:
                raise CodecError("object instance %d appears twice" % iid)
            instances[iid] = _resources_from_entries(tlv_split(value), types)
        return instances
    if kinds <= {RESOURCE, MULTIPLE_RESOURCE}:
        return _resources_from_entries(entries, types)
    if kinds == {RESOURCE_INSTANCE}:
        type_name = types if isinstance(types, str) or types is None else None
        values = {}
        for _, riid, value in entries:
            if riid in values:
                raise CodecError("resource instance %d appears twice" % riid)
            values[riid] = decode_tlv_value(value, type_name)
        return values
    raise CodecError("TLV payload mixes %s at its top level"
                     % ", ".join(sorted(KIND_NAMES[k] for k in kinds)))


def _type_of(types, rid, value):
    if isinstance(types, dict):
        return types.get(rid)
    return types  # a single type name (or None: infer from the value)


def encode_tlv_resource(rid, value, type_name=None):
    """A Resource TLV, or a Multiple Resource TLV when value is a dict {riid: value}."""
    if isinstance(value, dict):
        inner = b"".join(tlv_entry(RESOURCE_INSTANCE, riid, encode_tlv_value(v, type_name))
                         for riid, v in sorted(value.items()))
        return tlv_entry(MULTIPLE_RESOURCE, rid, inner)
    return tlv_entry(RESOURCE, rid, encode_tlv_value(value, type_name))


def encode_tlv_resources(resources, types=None):
    """TLVs of one object instance's resources: {rid: value or {riid: value}} (sorted by id).
    types: {rid: type name} or None (infer each type from its Python value)."""
    return b"".join(encode_tlv_resource(rid, value, _type_of(types, rid, value))
                    for rid, value in sorted(resources.items()))


def encode_tlv_instances(instances, types=None):
    """Object Instance TLVs: {iid: {rid: value or {riid: value}}}."""
    return b"".join(tlv_entry(OBJECT_INSTANCE, iid, encode_tlv_resources(resources, types))
                    for iid, resources in sorted(instances.items()))


# --- plain text (Core §7.4.1; data types as text, Core App. C) --------------------------------------

def encode_text(value, type_name=None):
    """text/plain payload of one value: numbers in decimal, booleans "0"/"1", Objlnk "oid:iid",
    opaque as base64 (LwM2M 1.1)."""
    kind = norm_type(type_name) or infer_type(value)
    if kind in ("string", "corelnk"):
        return str(value).encode("utf-8")
    if kind in ("integer", "time", "unsigned"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CodecError("%s value must be int, got %r" % (kind, value))
        return str(value).encode("ascii")
    if kind == "float":
        return repr(float(value)).encode("ascii")
    if kind == "boolean":
        return b"1" if value else b"0"
    if kind == "objlnk":
        return ("%d:%d" % tuple(value)).encode("ascii")
    if kind == "opaque":
        return base64.b64encode(bytes(value))
    if kind == "none":
        return b""
    raise CodecError("cannot encode type %r as text" % kind)


def decode_text(data, type_name=None):
    """Python value of a text/plain payload; with no type it stays a str."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise CodecError("text payload is not UTF-8: %s" % e) from None
    kind = norm_type(type_name)
    try:
        if kind is None or kind in ("string", "corelnk", "none"):
            return text
        if kind in ("integer", "time", "unsigned"):
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "boolean":
            if text not in ("0", "1"):
                raise CodecError("boolean text %r (must be 0 or 1)" % text)
            return text == "1"
        if kind == "objlnk":
            object_id, instance_id = text.split(":")
            return int(object_id), int(instance_id)
        if kind == "opaque":
            return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as e:
        if isinstance(e, CodecError):
            raise
        raise CodecError("bad %s text %r: %s" % (kind, text, e)) from None
    raise CodecError("cannot decode type %r from text" % kind)


# --- SenML JSON (110) and SenML CBOR (112): Core §7.4.4 / §7.4.5, RFC 8428 ------------------------
# A pack is an array of records. A record's name is the base name (bn, which carries over to the
# records after it) plus its own name (n); here the name is an LwM2M path ("/3/0/7/0"). A record holds
# at most one value: v (number), vs (string), vb (boolean), vd (opaque: base64url without padding in
# JSON, a byte string in CBOR) or LwM2M's vlo (Objlnk "oid:iid"); Read-Composite and Observe-Composite
# requests carry records with a name only. CBOR uses the integer labels of RFC 8428 §6 (vlo has none).

SENML_FORMATS = (SENML_JSON, SENML_CBOR)
_SENML_LABELS = {-1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs", 0: "n", 1: "u", 2: "v",
                 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd"}
_SENML_KEYS = {name: label for label, name in _SENML_LABELS.items()}
_SENML_VALUES = ("v", "vs", "vb", "vd", "vlo")
# The SenML field each data type is written in.
_SENML_FIELD = {"string": "vs", "corelnk": "vs", "integer": "v", "unsigned": "v", "time": "v",
                "float": "v", "boolean": "vb", "opaque": "vd", "objlnk": "vlo"}


class SenMLRecord(NamedTuple):
    """One resolved record: path (bn + n), value (None for a path-only record), time (bt + t, or
    None when the record has neither)."""
    path: str
    value: object
    time: Optional[float] = None


def _senml_pack(data, content_format):
    """The records of a payload as dicts keyed by the JSON field names."""
    data = bytes(data)
    if content_format == SENML_JSON:
        try:
            pack = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CodecError("SenML JSON: %s" % e) from None
    elif content_format == SENML_CBOR:
        try:
            pack = cbor2.loads(data)
        except (cbor2.CBORDecodeError, ValueError, TypeError) as e:
            raise CodecError("SenML CBOR: %s" % e) from None
    else:
        raise CodecError("content format %r is not SenML (110 or 112)" % (content_format,))
    if not isinstance(pack, list) or not all(isinstance(record, dict) for record in pack):
        raise CodecError("a SenML pack is an array of maps, got %r" % (pack,))
    if content_format == SENML_JSON:
        return pack
    # CBOR: integer labels to names; labels RFC 8428 does not define are ignored like unknown fields.
    return [{_SENML_LABELS.get(key, key): value for key, value in record.items()} for record in pack]


def _senml_value(fields, binary, base_value):
    present = [name for name in _SENML_VALUES if name in fields]
    if len(present) > 1:
        raise CodecError("SenML record with more than one value: %r" % (fields,))
    if not present:
        return None
    name = present[0]
    value = fields[name]
    if name == "v" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value + base_value if base_value is not None else value
    if name == "vs" and isinstance(value, str):
        return value
    if name == "vb" and isinstance(value, bool):
        return value
    if name == "vd" and binary and isinstance(value, bytes):
        return value
    if name == "vd" and not binary and isinstance(value, str) and re.match(r"[A-Za-z0-9_-]*={0,2}\Z", value):
        try:  # base64url; RFC 8428 §5 leaves the padding out, accept it anyway
            return base64.b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4), b"-_", validate=True)
        except ValueError as e:
            raise CodecError("SenML vd %r is not base64url: %s" % (value, e)) from None
    if name == "vlo" and isinstance(value, str) and re.match(r"[0-9]+:[0-9]+\Z", value):
        object_id, instance_id = value.split(":")
        return int(object_id), int(instance_id)
    raise CodecError("bad SenML %s value %r" % (name, value))


def _senml_path(name):
    try:
        if name.startswith("/"):
            return format_path(parse_path(name))
    except ValueError:
        pass
    raise CodecError("SenML name %r is not an LwM2M path" % name)


def senml_records(data, content_format):
    """[SenMLRecord] of a SenML JSON or CBOR payload, names and times resolved (RFC 8428 §4.6).
    Raises CodecError on a malformed pack, a name that is not an LwM2M path, a value of the wrong
    kind, or a must-understand field (a name ending in "_", RFC 8428 §4.4)."""
    base_name, base_time, base_value = "", None, None
    records = []
    for fields in _senml_pack(data, content_format):
        unknown = [name for name in fields if isinstance(name, str) and name.endswith("_")]
        if unknown:
            raise CodecError("SenML must-understand field(s) %s" % ", ".join(unknown))
        if "bn" in fields:
            base_name = fields["bn"]
        if "bt" in fields:
            base_time = fields["bt"]
        if "bv" in fields:
            base_value = fields["bv"]
        name = fields.get("n", "")
        if not isinstance(base_name, str) or not isinstance(name, str):
            raise CodecError("SenML bn/n must be strings: %r" % (fields,))
        path = _senml_path(base_name + name)
        times = [t for t in (base_time, fields.get("t")) if t is not None]
        if any(isinstance(t, bool) or not isinstance(t, (int, float)) for t in times):
            raise CodecError("SenML bt/t must be numbers: %r" % (fields,))
        value = _senml_value(fields, content_format == SENML_CBOR, base_value)
        records.append(SenMLRecord(path, value, sum(times) if times else None))
    return records


def decode_senml(data, content_format):
    """{path: value} of a SenML payload ({"/3/0/1": "Model", "/3/0/7/0": 3800, ...}). A path given
    more than once (a time series) keeps its last value; senml_records() has them all."""
    return senml_values(senml_records(data, content_format))


def senml_values(records):
    """{path: value} of resolved records (see decode_senml); a record without a value is an error."""
    values = {}
    for record in records:
        if record.value is None:
            raise CodecError("SenML record for %s has no value" % record.path)
        values[record.path] = record.value
    return values


def decode_senml_paths(data, content_format):
    """The paths of a SenML payload, in order (the request body of Read- and Observe-Composite)."""
    return [record.path for record in senml_records(data, content_format)]


def _senml_field(value, type_name):
    """(field name, value as the format carries it before JSON/CBOR specifics)."""
    kind = norm_type(type_name) or infer_type(value)
    field = _SENML_FIELD.get(kind)
    if field is None:
        raise CodecError("cannot write type %r in SenML" % kind)
    if field == "v":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CodecError("%s value must be a number, got %r" % (kind, value))
        return field, float(value) if kind == "float" else value
    if field == "vs" and not isinstance(value, str):
        raise CodecError("%s value must be str, got %r" % (kind, value))
    if field == "vb" and value not in (True, False):
        raise CodecError("boolean value must be True/False, got %r" % (value,))
    if field == "vd":
        return field, bytes(value)
    if field == "vlo":
        return field, "%d:%d" % tuple(value)
    return field, bool(value) if field == "vb" else value


def senml_pack(values, types=None):
    """SenML records (dicts with the JSON field names) for {path: value}, or for a list of paths
    (records with a name only). The first record's bn is the path prefix all records share (at
    least one segment short of the shortest path: "/3/0/" for the resources of /3/0), as in the
    Core §7.4.4 examples; types: {path: type name}, else inferred from each Python value."""
    paths = [parse_path(path) for path in values]
    if not isinstance(values, dict):
        return [{"n": format_path(parts)} for parts in paths]
    common = 0
    if paths:
        shortest = min(len(parts) for parts in paths)
        while common < shortest - 1 and len({parts[common] for parts in paths}) == 1:
            common += 1
    records = []
    for parts, value in zip(paths, values.values()):
        record = {}
        if common and not records:
            record["bn"] = format_path(parts[:common]) + "/"
        record["n"] = "/".join(str(p) for p in parts[common:]) if common else format_path(parts)
        type_name = (types or {}).get(format_path(parts))
        field, record[field] = _senml_field(value, type_name)
        records.append(record)
    return records


def encode_senml(values, content_format, types=None):
    """SenML JSON (110) or CBOR (112) payload of {path: value} or of a list of paths; see senml_pack."""
    pack = senml_pack(values, types)
    if content_format == SENML_JSON:
        for record in pack:
            if "vd" in record:
                record["vd"] = base64.urlsafe_b64encode(record["vd"]).rstrip(b"=").decode("ascii")
        try:
            return json.dumps(pack, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        except ValueError as e:  # NaN and infinities have no JSON form
            raise CodecError("SenML JSON: %s" % e) from None
    if content_format == SENML_CBOR:
        return cbor2.dumps([{_SENML_KEYS.get(name, name): value for name, value in record.items()}
                            for record in pack])
    raise CodecError("content format %r is not SenML (110 or 112)" % (content_format,))


# --- CoRE link format (RFC 6690 §2) -----------------------------------------------------------------
# link-value = "<" URI-Reference ">" *( ";" link-param ), links separated by ",". A parameter value is
# a token or a quoted-string; quoted strings may hold "," and ";" and backslash escapes.

def parse_links(data):
    """[(path, {attr: value or None})] from a link-format payload (bytes or str). Quoted values are
    unquoted; an attribute without "=" maps to None. Raises CodecError on malformed input."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
    links = []
    pos = 0
    end = len(text)

    def skip_space(p):
        while p < end and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip_space(pos)
    if pos == end:
        return links
    while True:
        if pos >= end or text[pos] != "<":
            raise CodecError("link-format: expected '<' at offset %d" % pos)
        close = text.find(">", pos + 1)
        if close < 0:
            raise CodecError("link-format: unterminated '<' at offset %d" % pos)
        path = text[pos + 1:close]
        attrs = {}
        pos = close + 1
        while pos < end and text[pos] == ";":
            pos += 1
            start = pos
            while pos < end and text[pos] not in "=;,":
                pos += 1
            name = text[start:pos].strip()
            if not name:
                raise CodecError("link-format: empty parameter name at offset %d" % start)
            value = None
            if pos < end and text[pos] == "=":
                pos += 1
                if pos < end and text[pos] == '"':
                    pos += 1
                    chars = []
                    while True:
                        if pos >= end:
                            raise CodecError("link-format: unterminated quoted value for %r" % name)
                        ch = text[pos]
                        if ch == "\\" and pos + 1 < end:
                            chars.append(text[pos + 1])
                            pos += 2
                            continue
                        if ch == '"':
                            pos += 1
                            break
                        chars.append(ch)
                        pos += 1
                    value = "".join(chars)
                else:
                    start = pos
                    while pos < end and text[pos] not in ";,":
                        pos += 1
                    value = text[start:pos].strip()
            attrs[name] = value
        links.append((path, attrs))
        pos = skip_space(pos)
        if pos == end:
            return links
        if text[pos] != ",":
            raise CodecError("link-format: expected ',' or ';' at offset %d" % pos)
        pos = skip_space(pos + 1)


def format_links(links):
    """Link-format text from [(path, {attr: value or None})]. Numbers go unquoted (ct=11543, ver=1.1),
    every other value as a quoted string."""
    parts = []
    for path, attrs in links:
        item = "<%s>" % path
        for name, value in (attrs or {}).items():
            if value is None:
                item += ";" + name
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                item += ";%s=%s" % (name, value)
            else:
                value = str(value)
                if _is_number(value):
                    item += ";%s=%s" % (name, value)
                else:
                    item += ';%s="%s"' % (name, value.replace("\\", "\\\\").replace('"', '\\"'))
        parts.append(item)
    return ",".join(parts)


def _is_number(text):
    return _NUMBER.match(text) is not None


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


# --- paths and Execute arguments --------------------------------------------------------------------

def parse_path(path):
    """(oid, iid, rid, riid) prefix of an LwM2M path such as "/3/0/1": a tuple of 0 to 4 ints."""
    if isinstance(path, (tuple, list)):
        parts = [int(p) for p in path]
    else:
        text = str(path).strip("/")
        try:
            parts = [int(p) for p in text.split("/")] if text else []
        except ValueError:
            raise ValueError("bad LwM2M path %r" % (path,)) from None
    if len(parts) > 4 or any(not 0 <= p <= 0xFFFF for p in parts):
        raise ValueError("bad LwM2M path %r" % (path,))
    return tuple(parts)


def format_path(parts):
    return "/" + "/".join(str(p) for p in parts)


def execute_arguments(args):
    """Execute payload (Core §5.4.5): {0: "value", 1: None} -> b"0='value',1". A str or bytes passes
    through unchanged."""
    if args is None:
        return b""
    if isinstance(args, (bytes, bytearray)):
        return bytes(args)
    if isinstance(args, str):
        return args.encode("utf-8")
    items = []
    for digit, value in sorted(args.items()):
        items.append(str(digit) if value is None else "%d='%s'" % (digit, value))
    return ",".join(items).encode("utf-8")


def decode_lwm2m_cbor(data):
    """LwM2M CBOR (11544, LwM2M 1.2): nested maps keyed by path ids (a key may also be an array of ids,
    several levels at once) -> {path string: value}."""
    out = {}

    def walk(prefix, node):
        if not isinstance(node, dict):
            if len(prefix) < 3:
                raise CodecError("LwM2M CBOR value above resource level at /%s" % "/".join(map(str, prefix)))
            out[format_path(prefix)] = node
            return
        for key, value in node.items():
            ids = list(key) if isinstance(key, (list, tuple)) else [key]
            if not all(isinstance(i, int) and 0 <= i <= 65535 for i in ids):
                raise CodecError("LwM2M CBOR key %r is not a path id" % (key,))
            walk(prefix + ids, value)

    top = cbor2.loads(data)
    if not isinstance(top, dict):
        raise CodecError("LwM2M CBOR payload is not a map")
    walk([], top)
    return out
