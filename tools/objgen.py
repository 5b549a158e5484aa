#!/usr/bin/env python3
"""Generate the static object tables of docs/design.md from OMA LwM2M registry XML files.

    python tools/objgen.py [--registry DIR] [-o OUTDIR] OID [OID ...]
    python tools/objgen.py --all          # every object in the registry
    python tools/objgen.py --list         # object id, version and name

Host tool, CPython standard library only. Each object becomes lwm2m_mpy/tables/o<OID>.py holding one
bytes constant T, so a frozen build keeps the table in flash and pays only for the objects it lists.
"""
import argparse
import os
import struct
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_REGISTRY = os.path.join(ROOT, "..", "shared", "oma-registry")
DEFAULT_OUT = os.path.join(ROOT, "lwm2m_mpy", "tables")

# Type codes, in the order of docs/design.md. Registry spellings are matched after lowercasing and
# dropping spaces, so "Unsigned Integer", "unsigned integer" and "UnsignedInteger" all map to 3, and
# "ObjLnk"/"CoreLnk" to 8/9. An empty <Type> means "none" (executables; also 10482/5, which is R).
TYPE_NAMES = ("none", "String", "Integer", "Unsigned Integer", "Float", "Boolean", "Opaque", "Time",
              "Objlnk", "Corelnk")
_TYPE_CODES = {name.lower().replace(" ", ""): code for code, name in enumerate(TYPE_NAMES)}
_TYPE_CODES[""] = 0

# Record flag bits (resource) and object flag bits.
R, W, E, MULTIPLE, MANDATORY = 1, 2, 4, 8, 16
OBJ_MULTIPLE, OBJ_MANDATORY = 1, 2


class RegistryError(ValueError):
    """A registry file we cannot turn into a table; the message names the file."""


class NotAnObject(RegistryError):
    """A registry file that is not an object definition (DDF.xml index, Common.xml, units list)."""


@dataclass
class Resource:
    rid: int
    name: str
    type: int            # index into TYPE_NAMES
    ops: str             # "", "R", "W", "RW", "E" (letters always in R, W, E order)
    multiple: bool
    mandatory: bool

    @property
    def flags(self):
        return ((R if "R" in self.ops else 0) | (W if "W" in self.ops else 0)
                | (E if "E" in self.ops else 0) | (MULTIPLE if self.multiple else 0)
                | (MANDATORY if self.mandatory else 0))


@dataclass
class ObjectDef:
    oid: int
    name: str
    version: tuple       # (major, minor)
    multiple: bool
    mandatory: bool
    resources: list = field(default_factory=list)   # sorted by rid
    source: str = ""     # file name the definition came from

    def resource(self, rid):
        for res in self.resources:
            if res.rid == rid:
                return res
        raise KeyError(rid)


def _text(elem, tag):
    """Child text with all whitespace runs (tabs, CR, NBSP) collapsed; "" when absent."""
    child = elem.find(tag)
    return " ".join((child.text or "").split()) if child is not None else ""


def _choice(value, true_word, false_word, default, where):
    word = value.lower()
    if not word:
        return default
    if word in (true_word, false_word):
        return word == true_word
    raise RegistryError("%s: expected %s or %s, got %r" % (where, true_word, false_word, value))


def _u16(value, where):
    try:
        number = int(value)
    except ValueError:
        raise RegistryError("%s: not an integer: %r" % (where, value)) from None
    if not 0 <= number <= 0xFFFF:
        raise RegistryError("%s: %d does not fit 16 bits" % (where, number))
    return number


def parse(path):
    """Read one registry XML file into an ObjectDef; raise NotAnObject for non-object files."""
    base = os.path.basename(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise RegistryError("%s: %s" % (base, exc)) from None
    obj = root.find("Object") if root.tag == "LWM2M" else None
    # Common.xml is also <LWM2M><Object>, but ObjectType="CommonResources" and has no ObjectID.
    if obj is None or obj.find("ObjectID") is None:
        raise NotAnObject("%s: not an object definition" % base)

    oid = _u16(_text(obj, "ObjectID"), base + " ObjectID")
    version = _text(obj, "ObjectVersion") or "1.0"
    try:
        major, minor = (int(part) for part in version.split("."))
    except ValueError:
        major = minor = -1
    if not (0 <= major <= 255 and 0 <= minor <= 255):
        raise RegistryError("%s: bad ObjectVersion %r" % (base, version))

    resources = []
    for item in obj.iterfind("Resources/Item"):
        where = "%s resource %s" % (base, item.get("ID"))
        type_name = _text(item, "Type")
        code = _TYPE_CODES.get(type_name.lower().replace(" ", ""))
        if code is None:
            raise RegistryError("%s: unknown Type %r" % (where, type_name))
        ops = _text(item, "Operations").upper().replace(" ", "")
        if set(ops) - set("RWE"):
            raise RegistryError("%s: unknown Operations %r" % (where, ops))
        resources.append(Resource(
            rid=_u16((item.get("ID") or "").strip(), where + " ID"),
            name=_text(item, "Name"),
            type=code,
            ops="".join(letter for letter in "RWE" if letter in ops),
            multiple=_choice(_text(item, "MultipleInstances"), "multiple", "single", False, where),
            mandatory=_choice(_text(item, "Mandatory"), "mandatory", "optional", False, where),
        ))
    # Many IPSO files list resources out of order; the client binary-searches, so sort here.
    resources.sort(key=lambda res: res.rid)
    for before, after in zip(resources, resources[1:]):
        if before.rid == after.rid:
            raise RegistryError("%s: resource %d defined twice" % (base, after.rid))
    if len(resources) > 0xFFFF:
        raise RegistryError("%s: too many resources" % base)

    where = base + " object"
    return ObjectDef(
        oid=oid, name=_text(obj, "Name"), version=(major, minor),
        multiple=_choice(_text(obj, "MultipleInstances"), "multiple", "single", False, where),
        mandatory=_choice(_text(obj, "Mandatory"), "mandatory", "optional", False, where),
        resources=resources, source=base)


def encode(obj):
    """The table bytes: 7-byte header then one 4-byte record per resource (docs/design.md)."""
    flags = (OBJ_MULTIPLE if obj.multiple else 0) | (OBJ_MANDATORY if obj.mandatory else 0)
    out = bytearray(struct.pack(">HBBBH", obj.oid, flags, obj.version[0], obj.version[1],
                                len(obj.resources)))
    for res in obj.resources:
        out += struct.pack(">HBB", res.rid, res.type, res.flags)
    return bytes(out)


def _escape(data):
    return "".join("\\x%02x" % byte for byte in data)


def render(obj):
    """The text of module o<OID>.py. Comments are free: mpy-cross drops them."""
    lines = [
        "# Generated by tools/objgen.py from %s -- do not edit." % obj.source,
        "# Object %d %s, version %d.%d, %s, %s." % (
            obj.oid, obj.name, obj.version[0], obj.version[1],
            "multiple instances" if obj.multiple else "single instance",
            "mandatory" if obj.mandatory else "optional"),
        "# Layout: docs/design.md \"Static object tables\".",
        "#",
    ]
    width = max([len(res.name) for res in obj.resources] + [4])
    lines.append("# %5s  %-*s  %-16s  %s" % ("id", width, "name", "type", "ops"))
    for res in obj.resources:
        notes = " ".join(word for word, on in (("multiple", res.multiple),
                                                  ("mandatory", res.mandatory)) if on)
        line = "# %5d  %-*s  %-16s  %-3s  %s" % (res.rid, width, res.name, TYPE_NAMES[res.type],
                                                 res.ops or "-", notes)
        lines.append(line.rstrip())
    data = encode(obj)
    if len(data) <= 16:      # fits one line
        lines.append('T = b"%s"' % _escape(data))
    else:                    # header on the first line, then four records (16 bytes) per line
        lines.append("T = (")
        lines.append('    b"%s"' % _escape(data[:7]))
        for start in range(7, len(data), 16):
            lines.append('    b"%s"' % _escape(data[start:start + 16]))
        lines.append(")")
    # Keep the file ASCII whatever the registry contains.
    return "\n".join(lines).encode("ascii", "backslashreplace").decode("ascii") + "\n"


def objects(registry):
    """Every object definition in the registry directory, sorted by object id."""
    found = []
    for name in sorted(os.listdir(registry)):
        if name.endswith(".xml"):
            try:
                found.append(parse(os.path.join(registry, name)))
            except NotAnObject:
                pass
    return sorted(found, key=lambda obj: obj.oid)


def find(registry, oid):
    """The ObjectDef for one object id: <OID>.xml when it is there, else search the directory."""
    path = os.path.join(registry, "%d.xml" % oid)
    if os.path.exists(path):
        obj = parse(path)
        if obj.oid == oid:
            return obj
    for obj in objects(registry):
        if obj.oid == oid:
            return obj
    raise RegistryError("object %d not found in %s" % (oid, registry))


def write(obj, outdir):
    path = os.path.join(outdir, "o%d.py" % obj.oid)
    with open(path, "w", newline="\n") as out:
        out.write(render(obj))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("oids", metavar="OID", type=int, nargs="*", help="object ids to generate")
    parser.add_argument("--registry", default=DEFAULT_REGISTRY, help="OMA registry XML directory")
    parser.add_argument("-o", "--out", default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--all", action="store_true", help="generate every object in the registry")
    parser.add_argument("--list", action="store_true", help="print object id, version and name")
    args = parser.parse_args(argv)
    if not (args.oids or args.all or args.list):
        parser.error("give object ids, --all or --list")
    try:
        if args.list:
            for obj in objects(args.registry):
                print("%5d  %d.%d  %s" % (obj.oid, obj.version[0], obj.version[1], obj.name))
            return 0
        chosen = objects(args.registry) if args.all else [find(args.registry, oid)
                                                          for oid in args.oids]
        os.makedirs(args.out, exist_ok=True)
        for obj in chosen:
            print(write(obj, args.out))
    except (RegistryError, OSError) as exc:
        print("objgen: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
