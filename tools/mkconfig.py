#!/usr/bin/env python3
"""Write a board's config.json (WiFi, endpoint, server, keys: docs/boards.md), checked as the board will
read it (lwm2m_mpy.board.client_args), readable by its owner only (mode 0600). Never committed
(.gitignore); never printed: the password and the key are not shown, not even in error messages.

    python tools/mkconfig.py --ssid S [--password P] --endpoint E --server URI
                             [--psk-id ID [--psk-key HEX]] [--lifetime S] [--bootstrap URI]
                             [--board NAME] [-o config.json]

A password or key left out is asked for (no echo) when stdin is a terminal, else read as one line from
stdin: `--password` on a command line stays in the shell's history. Without --ssid the file has no
"wifi" section (boards with NET = None: unix, blinka). --board checks the file against a profile
(WiFi needed, no DTLS on CircuitPython). tools/deploy.py --config applies the same checks.
Host tool, CPython standard library only.
"""
import argparse
import getpass
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_uri(uri, what):
    """coap://host[:port][/...] or coaps://...; IPv6 as [::1]. ValueError naming `what` otherwise."""
    if not isinstance(uri, str):
        raise ValueError("%s must be a URI string" % what)
    m = re.match(r"^(coaps?)://(\[[0-9A-Fa-f:.]+\]|[^/:\[\]\s]+)(?::(\d+))?(/\S*)?$", uri)
    if not m:
        scheme = uri.partition("://")[0] if "://" in uri else ""
        if scheme and scheme not in ("coap", "coaps"):
            raise ValueError("%s %s: the scheme must be coap or coaps, not %s" % (what, uri, scheme))
        raise ValueError("%s %s: expected coap://HOST[:PORT] or coaps://HOST[:PORT]" % (what, uri))
    if m.group(3) is not None and not 0 < int(m.group(3)) < 65536:
        raise ValueError("%s %s: port out of range" % (what, uri))
    return m.group(1)


def check(cfg, prof=None):
    """Raise ValueError (its words never contain the password or the key) unless `cfg` is a config.json
    the board can use; with `prof` (a boards/NAME.py module) also against that board."""
    if not isinstance(cfg, dict):
        raise ValueError("config.json must be a JSON object")
    schemes = []
    for key, what in (("server", "server"), ("bootstrap", "bootstrap server")):
        if cfg.get(key) is not None:
            schemes.append(check_uri(cfg[key], what))
    ep = cfg.get("endpoint")
    if ep is not None and (not isinstance(ep, str) or not ep or re.search(r"[\s&?#/]", ep)):
        raise ValueError("endpoint must be a non-empty name without spaces, &, ?, # or /")
    lifetime = cfg.get("lifetime")
    if lifetime is not None and (type(lifetime) is not int or lifetime <= 0):
        raise ValueError("lifetime must be a positive whole number of seconds")
    psk_id, psk_key = cfg.get("psk_id"), cfg.get("psk_key")
    if psk_id is not None or psk_key is not None:
        if not isinstance(psk_id, str) or not psk_id:
            raise ValueError("psk_key needs psk_id (the PSK identity)")
        if not isinstance(psk_key, str) or not psk_key:
            raise ValueError("psk_id needs psk_key (the key, in hex)")
        if len(psk_key) % 2 or not re.match(r"^[0-9A-Fa-f]+$", psk_key):
            raise ValueError("psk_key must be hex digits, two per byte (the key itself is not shown)")
        if "coaps" not in schemes:
            raise ValueError("psk_id/psk_key given but no coaps:// server: the key would not be used")
    elif "coaps" in schemes:
        raise ValueError("a coaps:// server needs psk_id and psk_key")
    wifi = cfg.get("wifi")
    if wifi is not None:
        if not isinstance(wifi, dict) or not isinstance(wifi.get("ssid"), str) or not wifi["ssid"]:
            raise ValueError('wifi must be {"ssid": ..., "password": ...}')
        if not isinstance(wifi.get("password", ""), str):
            raise ValueError("wifi password must be a string")
        extra = set(wifi) - {"ssid", "password"}
        if extra:
            raise ValueError("wifi: unknown key %s (known: ssid password)" % " ".join(sorted(extra)))
    if prof is not None:
        if getattr(prof, "NET", None) == "wlan" and wifi is None:
            raise ValueError("this board joins a WiFi: the config needs a wifi section (--ssid)")
        if getattr(prof, "PORT", None) == "circuitpython" and "coaps" in schemes:
            raise ValueError("CircuitPython has no DTLS: use a coap:// server")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from lwm2m_mpy.board import client_args

    try:
        client_args(cfg)  # the board's own reading: unknown keys, no server
    except (KeyError, TypeError) as e:
        raise ValueError("not what the board reads (%s)" % type(e).__name__)


def secret(value, prompt):
    """The value given, or asked for without echo (a terminal), or one line of stdin."""
    if value is not None:
        return value
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise ValueError("%s: not given and stdin is empty" % prompt.rstrip(": "))
    return line.rstrip("\r\n")


def build(args):
    cfg = {}
    if args.ssid is not None:
        cfg["wifi"] = {"ssid": args.ssid, "password": secret(args.password, "WiFi password: ")}
    elif args.password is not None:
        raise ValueError("--password without --ssid")
    if args.endpoint is not None:
        cfg["endpoint"] = args.endpoint
    if args.server is not None:
        cfg["server"] = args.server
    if args.psk_id is not None:
        cfg["psk_id"] = args.psk_id
        cfg["psk_key"] = secret(args.psk_key, "PSK key (hex): ").strip()
    elif args.psk_key is not None:
        cfg["psk_key"] = args.psk_key  # check() says what is missing
    if args.lifetime is not None:
        cfg["lifetime"] = args.lifetime
    if args.bootstrap is not None:
        cfg["bootstrap"] = args.bootstrap
    if args.server is None and args.bootstrap is None:
        raise ValueError("--server URI is needed (or --bootstrap URI alone: the board bootstraps)")
    prof = None
    if args.board:
        sys.path.insert(0, ROOT)
        from lwm2m_mpy import board

        prof = board.profile(args.board)
    check(cfg, prof)
    return cfg


def write(path, cfg):
    """Write `cfg` as JSON, mode 0600 (also when the file existed with a wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except (AttributeError, OSError):  # not on every OS; os.open's mode already applies to a new file
        pass
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
        f.write("\n")


def summary(cfg):
    """What was written, without the password or the key."""
    out = []
    if "wifi" in cfg:
        out.append("wifi %s (password not shown)" % cfg["wifi"]["ssid"])
    for k in ("endpoint", "server", "bootstrap", "lifetime", "psk_id"):
        if k in cfg:
            out.append("%s %s" % (k, cfg[k]))
    if "psk_key" in cfg:
        out.append("psk_key %d bytes (not shown)" % (len(cfg["psk_key"]) // 2))
    return ", ".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description="write a board's config.json (see the module docstring)")
    parser.add_argument("--ssid", help="WiFi network name")
    parser.add_argument("--password", help="WiFi password (asked for when left out)")
    parser.add_argument("--endpoint", help="LwM2M endpoint client name, e.g. pico-1")
    parser.add_argument("--server", help="LwM2M server URI, coap://HOST[:5683] or coaps://HOST[:5684]")
    parser.add_argument("--psk-id", help="DTLS PSK identity (coaps://)")
    parser.add_argument("--psk-key", help="DTLS PSK key in hex (asked for when left out)")
    parser.add_argument("--lifetime", type=int, help="registration lifetime, seconds")
    parser.add_argument("--bootstrap", help="bootstrap server URI (factory bootstrap)")
    parser.add_argument("--board", help="check against boards/NAME.py too")
    parser.add_argument("-o", "--output", default="config.json", help="file to write [config.json]")
    args = parser.parse_args(argv)
    try:
        cfg = build(args)
    except (ValueError, KeyboardInterrupt, EOFError) as e:
        print("mkconfig: %s" % (e if isinstance(e, ValueError) else "cancelled"), file=sys.stderr)
        return 2
    write(args.output, cfg)
    print("wrote %s (mode 0600): %s" % (args.output, summary(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
