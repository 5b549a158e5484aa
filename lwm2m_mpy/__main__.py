"""Command line for the unix port (and CPython): micropython -m lwm2m_mpy --server coap://HOST:PORT --endpoint NAME

Options (README "Command line" has the full story):
  --server URI  --endpoint NAME  --lifetime S  --binding B  --lwm2m 1.1|1.0  --root-link
  --retry S  --seconds S  --board unix  --quiet  --help
"""
import sys

# The transmit buffer first, while the heap is one piece: on a 48 KiB heap a 1152-byte block may not
# be found any more once the code is loaded.
_TX = bytearray(1152)


def main(argv):
    opts = {"server": "coap://127.0.0.1:5683", "endpoint": "lwm2m-mpy", "lifetime": "300", "binding": "U",
            "lwm2m": "1.1", "retry": "60", "seconds": None, "board": "unix", "root-link": None, "quiet": None}
    i = 0
    while i < len(argv):
        key = argv[i][2:]
        if argv[i][:2] != "--" or key not in opts:
            print("usage: micropython -m lwm2m_mpy [--server coap://HOST:PORT] [--endpoint NAME] [--lifetime S]"
                  " [--binding U] [--lwm2m 1.1|1.0] [--root-link] [--retry S] [--seconds S] [--board unix] [--quiet]")
            return 0 if argv[i] in ("-h", "--help") else 2
        if key in ("root-link", "quiet"):  # flags
            opts[key] = True
        else:
            i += 1
            if i == len(argv):
                print("--%s needs a value" % key)
                return 2
            opts[key] = argv[i]
        i += 1
    if opts["board"] != "unix":
        print("unknown board %s (available: unix)" % opts["board"])
        return 2
    from lwm2m_mpy import Client
    from lwm2m_mpy.transport import udp  # noqa: F401  (loaded now, before the client's objects fill the heap)

    client = Client(opts["endpoint"], opts["server"], int(opts["lifetime"]), opts["binding"], opts["lwm2m"],
                    log=None if opts["quiet"] else lambda msg: print("lwm2m:", msg),
                    root_link=bool(opts["root-link"]), retry_s=int(opts["retry"]), buffer=_TX)
    client.run(None if opts["seconds"] is None else float(opts["seconds"]))
    return 0


sys.exit(main(sys.argv[1:]))
