"""Command line for the unix port (and CPython): micropython -m lwm2m_mpy --server coap://HOST:PORT --endpoint NAME

Options (README "Command line"): --server URI --endpoint NAME --lifetime S --binding B --lwm2m 1.1|1.0
--root-link --retry S --queue --awake S --confirm N --store N --seconds S --board unix --quiet --help.
Defaults are Client()'s own.
"""
import sys

# The transmit buffer first, while the heap is one piece: on a 48 KiB heap a 1152-byte block may not
# be found any more once the code is loaded.
_TX = bytearray(1152)


def main(argv):
    kw = {"log": lambda msg: print("lwm2m:", msg), "buffer": _TX}
    args = ["lwm2m-mpy", "coap://127.0.0.1:5683"]  # endpoint, server
    seconds = None
    i = 0
    while i < len(argv):
        a = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        i += 2
        if a in ("--root-link", "--queue"):  # the flags take no value
            kw[a[2:].replace("-", "_")] = True
            i -= 1
        elif a == "--quiet":
            kw["log"] = None
            i -= 1
        elif v is None or a not in ("--server", "--endpoint", "--lifetime", "--binding", "--lwm2m", "--retry",
                                    "--awake", "--confirm", "--store", "--seconds", "--board"):
            print("usage: micropython -m lwm2m_mpy [--server coap://HOST:PORT] [--endpoint NAME] [--lifetime S]"
                  " [--binding U] [--lwm2m 1.1|1.0] [--root-link] [--retry S] [--queue] [--awake S] [--confirm N]"
                  " [--store N] [--seconds S] [--board unix] [--quiet]")
            return 0 if a in ("-h", "--help") else 2
        elif a == "--server":
            args[1] = v
        elif a == "--endpoint":
            args[0] = v
        elif a == "--seconds":
            seconds = float(v)
        elif a == "--board":
            if v != "unix":
                print("unknown board %s (available: unix)" % v)
                return 2
        else:  # --lifetime, --binding, --lwm2m, --retry, --awake, --confirm, --store: Client keyword arguments
            kw[{"--lwm2m": "version", "--retry": "retry_s", "--awake": "awake_s"}.get(a, a[2:])] = (
                v if a in ("--binding", "--lwm2m") else int(v))
    from lwm2m_mpy import Client
    from lwm2m_mpy.transport import udp  # noqa: F401  (loaded now, before the client's objects fill the heap)

    Client(*args, **kw).run(seconds)
    return 0


sys.exit(main(sys.argv[1:]))
