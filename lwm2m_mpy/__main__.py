"""Command line for the unix port (and CPython): micropython -m lwm2m_mpy --server coap://HOST:PORT --endpoint NAME"""
import sys

USAGE = """usage: micropython -m lwm2m_mpy --server coap://HOST:PORT --endpoint NAME [options]
  --server URI        LwM2M server (coap://, default coap://127.0.0.1:5683)
  --endpoint NAME     endpoint client name (default lwm2m-mpy)
  --lifetime S        registration lifetime in seconds (default 300)
  --binding B         binding mode sent in Register (default U)
  --lwm2m VERSION     LwM2M version in Register: 1.1 (default) or 1.0
  --root-link         also send </>;rt="oma.lwm2m" in the object list
  --retry S           first retry delay after a failed Register, doubling each time (default 60)
  --seconds S         stop (and de-register) after S seconds (default: run until Ctrl-C)
  --board NAME        board profile (default unix)
  --quiet             no log lines"""


def main(argv):
    opts = {"server": "coap://127.0.0.1:5683", "endpoint": "lwm2m-mpy", "lifetime": "300", "binding": "U",
            "lwm2m": "1.1", "retry": "60", "seconds": None, "board": "unix"}
    flags = {"root-link": False, "quiet": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(USAGE)
            return 0
        key = a[2:] if a.startswith("--") else None
        if key in flags:
            flags[key] = True
        elif key in opts and i + 1 < len(argv):
            i += 1
            opts[key] = argv[i]
        else:
            print("unknown or incomplete option: %s\n%s" % (a, USAGE))
            return 2
        i += 1
    if opts["board"] != "unix":
        print("unknown board %s (available: unix)" % opts["board"])
        return 2
    from lwm2m_mpy import Client

    log = None if flags["quiet"] else (lambda msg: print("lwm2m:", msg))
    client = Client(opts["endpoint"], opts["server"], lifetime=int(opts["lifetime"]), binding=opts["binding"],
                    version=opts["lwm2m"], log=log, root_link=flags["root-link"], retry_s=int(opts["retry"]))
    client.run(None if opts["seconds"] is None else float(opts["seconds"]))
    return 0


sys.exit(main(sys.argv[1:]))
