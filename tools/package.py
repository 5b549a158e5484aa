#!/usr/bin/env python3
"""Make a firmware-update package for object 5 (docs/fota.md), or show one's header.

    python tools/package.py --type esp32 --name NAME --version V -o OUT.pkg micropython.app-bin
    python tools/package.py --type files --name NAME --version V -o OUT.pkg build/deploy/pico_w
    python tools/package.py --type raw   --name NAME --version V -o OUT.pkg any.bin
    python tools/package.py --info OUT.pkg

Types: esp32 (1) an ESP32 application image, the `.app-bin` of an ESP32_GENERIC-OTA build (not the
firmware .bin with the bootloader); files (2) a folder of application files, e.g. the compiled tree
tools/deploy.py leaves in build/deploy/BOARD, archived as records (name length, name, file length, data)
and installed file by file on the board (rp2, CircuitPython); raw (3) any bytes, for the file sink.
Header: "LWMP", format 1, type, header length (u16 BE), payload length (u32 BE), SHA-256 of the payload,
name and version (u8 length + UTF-8 each). --name defaults to the input's name, --version to the time.
Exit status: 0 done, 1 a bad input or package, 2 a bad command line. Host tool, CPython standard library.
"""
import argparse
import hashlib
import os
import struct
import sys
import time

MAGIC = b"LWMP"
FORMAT = 1
TYPES = {"esp32": 1, "files": 2, "raw": 3}
NAMES = {v: k for k, v in TYPES.items()}
FIXED = 44  # magic 4, format 1, type 1, header length 2, payload length 4, SHA-256 32
APP_DESC_MAGIC = struct.pack("<I", 0xABCD5432)  # esp_app_desc_t, right after the image and segment headers
SKIPPED = ("__pycache__",)  # never on a board


class Bad(Exception):
    """Exit status 1, with a message."""


def header(kind, payload, name, version):
    name_b, version_b = name.encode("utf-8"), version.encode("utf-8")
    for what, b in (("name", name_b), ("version", version_b)):
        if len(b) > 255:
            raise Bad("%s is %d bytes in UTF-8: at most 255" % (what, len(b)))
    if len(payload) >= 1 << 32:
        raise Bad("payload of %d bytes: at most 4 GiB - 1" % len(payload))
    size = FIXED + 2 + len(name_b) + len(version_b)
    return (MAGIC + struct.pack(">BBHI", FORMAT, kind, size, len(payload)) + hashlib.sha256(payload).digest()
            + bytes([len(name_b)]) + name_b + bytes([len(version_b)]) + version_b)


def archive(folder):
    """(payload, [(name, size)]): every file under folder (sorted; __pycache__ left out) as a record."""
    if not os.path.isdir(folder):
        raise Bad("%s is not a folder (--type files archives a folder)" % folder)
    names = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in SKIPPED]
        names += [os.path.relpath(os.path.join(top, f), folder).replace(os.sep, "/") for f in files]
    out, listing = bytearray(), []
    for name in sorted(names):
        if name.split("/")[0] == ".fota":
            raise Bad("%s: .fota/ is the update's own folder on the board" % name)
        name_b = name.encode("utf-8")
        if len(name_b) > 255:
            raise Bad("%s: names are at most 255 bytes" % name)
        with open(os.path.join(folder, *name.split("/")), "rb") as fh:
            data = fh.read()
        out += bytes([len(name_b)]) + name_b + struct.pack(">I", len(data)) + data
        listing.append((name, len(data)))
    if not listing:
        raise Bad("%s has no files" % folder)
    return bytes(out), listing


def records(payload):
    """The records of an archive payload: [(name, size)]; Bad if they do not fill it exactly."""
    out, i = [], 0
    while i < len(payload):
        n = payload[i]
        if i + 1 + n + 4 > len(payload):
            raise Bad("archive: record at %d runs past the end" % i)
        name = payload[i + 1:i + 1 + n].decode("utf-8", "replace")
        size = struct.unpack_from(">I", payload, i + 1 + n)[0]
        i += 1 + n + 4 + size
        if i > len(payload):
            raise Bad("archive: %s runs past the end" % name)
        out.append((name, size))
    return out


def check_esp32(data, path):
    if len(data) < 36 or data[0] != 0xE9 or data[32:36] != APP_DESC_MAGIC:
        raise Bad("%s is not an ESP32 application image: give the .app-bin of an OTA build "
                  "(the firmware .bin starts with the bootloader)" % path)


def make(args):
    kind = TYPES[args.type]
    if kind == 2:
        payload, listing = archive(args.input)
    else:
        if not os.path.isfile(args.input):
            raise Bad("%s is not a file" % args.input)
        with open(args.input, "rb") as f:
            payload = f.read()
        listing = None
        if kind == 1 and not args.force:
            check_esp32(payload, args.input)
    name = args.name if args.name is not None else os.path.basename(os.path.normpath(args.input))
    version = args.version if args.version is not None else time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    head = header(kind, payload, name, version)
    out = args.output
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(head + payload)
    print("%s: %s package %r version %r, %d bytes (header %d, payload %d), sha256 %s" % (
        out, args.type, name, version, len(head) + len(payload), len(head), len(payload),
        hashlib.sha256(payload).hexdigest()))
    for n, size in listing or ():
        print("  %8d  %s" % (size, n))
        if n == "config.json":
            print("  note: config.json is in the package: the board's own (WiFi, keys) will be replaced")
    return 0


def parse(data):
    """The header of a package as a dict; Bad when it is not one."""
    if len(data) < FIXED + 2 or data[:4] != MAGIC:
        raise Bad("not a package (no LWMP header)")
    fmt, kind, size, length = struct.unpack_from(">BBHI", data, 4)
    if fmt != FORMAT:
        raise Bad("package format %d: this tool knows %d" % (fmt, FORMAT))
    n = data[FIXED]
    at = FIXED + 1 + n
    if size > len(data) or at >= size or at + 1 + data[at] != size:
        raise Bad("header length %d does not match its strings" % size)
    return {"type": kind, "header": size, "length": length, "sha256": data[12:FIXED],
            "name": data[FIXED + 1:at].decode("utf-8", "replace"),
            "version": data[at + 1:size].decode("utf-8", "replace")}


def info(path):
    with open(path, "rb") as f:
        data = f.read()
    h = parse(data)
    payload = data[h["header"]:]
    print("%s: format %d, type %d (%s), name %r, version %r" % (
        path, FORMAT, h["type"], NAMES.get(h["type"], "unknown"), h["name"], h["version"]))
    print("header %d bytes, payload %d bytes, sha256 %s" % (h["header"], h["length"], h["sha256"].hex()))
    ok = len(payload) == h["length"] and hashlib.sha256(payload).digest() == h["sha256"]
    if len(payload) != h["length"]:
        print("payload: %d bytes follow the header, not %d: BAD" % (len(payload), h["length"]))
    else:
        print("payload: sha256 %s" % ("OK" if ok else "MISMATCH: BAD"))
    if ok and h["type"] == 2:
        for name, size in records(payload):
            print("  %8d  %s" % (size, name))
    return 0 if ok else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description="make a firmware-update package (docs/fota.md) or show one")
    parser.add_argument("input", nargs="?", help="the image file (esp32, raw) or folder (files)")
    parser.add_argument("--type", choices=sorted(TYPES), help="esp32 (1), files (2) or raw (3)")
    parser.add_argument("--name", help="package name (/5/0/6) [the input's name]")
    parser.add_argument("--version", help="package version (/5/0/7) [UTC time, YYYYmmdd-HHMMSS]")
    parser.add_argument("-o", "--output", help="the package file to write")
    parser.add_argument("--force", action="store_true", help="esp32: skip the application-image check")
    parser.add_argument("--info", metavar="PKG", help="print the header of PKG and check its payload")
    args = parser.parse_args(argv)
    try:
        if args.info:
            return info(args.info)
        if not (args.type and args.input and args.output):
            parser.error("give --type, -o OUT and the input (or --info PKG)")
        return make(args)
    except (Bad, OSError) as e:  # a refused input or an unreadable/unwritable file: one line, exit 1
        print("package: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
