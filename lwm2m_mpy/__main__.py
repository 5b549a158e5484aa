"""Command line for the unix port (and CPython): micropython -m lwm2m_mpy --server coap://HOST:PORT --endpoint NAME

Options (README "Command line"): --server URI --endpoint NAME --lifetime S --binding B --lwm2m 1.1|1.0
--no-root-link --retry S --queue --awake S --confirm N --store N --psk-id ID --psk-key HEX --state FILE
--bootstrap URI --config FILE --cert DER --cert-key DER --server-cert DER --seconds S --board NAME --quiet
--modem sim7080|bg95|sara-r5|nrf91 --uart PATH|tcp:HOST:PORT --apn NAME
--help (coaps:// servers need the PSK or the certificate options; --bootstrap without --server starts
factory-empty and bootstraps; --modem speaks UDP through a cellular modem's AT commands, coap:// only).
Defaults are Client()'s own.
"""
import sys

# The transmit buffer first, while the heap is one piece: on a 48 KiB heap a 1152-byte block may not
# be found any more once the code is loaded.
_TX = bytearray(1152)


def parse(argv):
    """(Client arguments, keyword arguments, seconds), or an exit code. A function of its own so that its
    option tables are garbage once the client runs."""
    # The option names live in long strings split at run time, locals rather than module globals: every
    # short string literal or global name is interned as a qstr, and on the 64-bit unix port the qstr
    # pool's next growth (about 3.6 KiB at once) decides whether Observe still loads in a 64 KiB heap.
    # Valued options map in order onto Client keyword arguments.
    valued = ("--server --endpoint --seconds --board --lifetime --binding --lwm2m --retry --awake --confirm --store"
              " --psk-id --psk-key --state --bootstrap --config --cert --cert-key --server-cert --modem --uart --apn")
    keywords = "lifetime binding version retry_s awake_s confirm store"
    flags = "--no-root-link --queue --quiet".split()
    kw = {"log": lambda msg: print("lwm2m:", msg), "buffer": _TX}
    psk = [b"", b""]
    certs = [b"", b"", b""]
    args = ["lwm2m-mpy", None]  # endpoint, server (coap://127.0.0.1:5683 unless bootstrapping)
    seconds = board = None
    modem = [None, None, None]  # --modem, --uart, --apn
    valued = valued.split()
    i = 0
    while i < len(argv):
        a = argv[i]
        v = argv[i + 1] if i + 1 < len(argv) else None
        i += 2
        if a in flags:  # no value
            i -= 1
            k = flags.index(a)
            kw[("root_link", "queue", "log")[k]] = (False, True, None)[k]
            continue
        if v is None or a not in valued:
            print("usage: micropython -m lwm2m_mpy [--server coap://HOST:PORT] [--endpoint NAME] [--lifetime S]"
                  " [--binding U] [--lwm2m 1.1|1.0] [--no-root-link] [--retry S] [--queue] [--awake S]"
                  " [--confirm N] [--store N] [--psk-id ID --psk-key HEX] [--cert DER --cert-key DER --server-cert DER]"
                  " [--state FILE] [--bootstrap URI]"
                  " [--config FILE] [--seconds S] [--board NAME] [--quiet]"
                  " [--modem sim7080|bg95|sara-r5|nrf91 --uart PATH|tcp:HOST:PORT [--apn NAME]]")
            return 0 if a in ("-h", "--help") else 2
        k = valued.index(a)
        if k < 2:  # --server, --endpoint
            args[1 - k] = v
        elif k == 2:
            seconds = float(v)
        elif k > 18:  # --modem, --uart, --apn
            modem[k - 19] = v
        elif k >= 16:  # --cert, --cert-key, --server-cert: DER files (Security /0/0/3, /0/0/5, /0/0/4)
            with open(v, "rb") as f:
                certs[k - 16] = f.read()
            kw["cert"] = tuple(certs)
        elif k >= 13:  # --state, --bootstrap, --config
            kw[("state", "bootstrap", "config")[k - 13]] = v
        elif k > 10:  # --psk-id text, --psk-key hex (the Security object's /0/0/3 and /0/0/5)
            psk[k - 11] = v.encode() if k == 11 else bytes.fromhex(v)
            kw["psk"] = tuple(psk)
        elif k == 3:  # a board profile, boards/NAME.py (lwm2m_mpy/board.py)
            board = v
        else:  # Client keyword arguments; --binding and --lwm2m are text
            kw[keywords.split()[k - 4]] = v if k in (5, 6) else int(v)
    if args[1] is None and "bootstrap" not in kw and "config" not in kw:
        args[1] = "coap://127.0.0.1:5683"
    if modem[0]:  # UDP over the modem's AT sockets (docs/modem.md)
        uri = args[1] or ""
        if not uri.startswith("coap://") or not modem[1]:
            print("--modem needs --uart and a coap:// --server (coaps:// over a modem is not supported yet)")
            return 2
        host, _, port = uri[7:].split("/")[0].partition(":")
        from lwm2m_mpy.transport.at import open_stream
        from lwm2m_mpy.transport.modem import for_modem

        try:
            kw["transport"] = for_modem(modem[0], open_stream(modem[1]), host, int(port or 5683), modem[2], kw["log"])
        except (ValueError, OSError) as e:  # an unknown modem, no such device
            print(e)
            return 2
    return args, kw, seconds, board


def main(argv):
    parsed = parse(argv)
    globals().pop("parse")  # its bytecode (about 1 KiB of heap) is not needed again: let it go
    if isinstance(parsed, int):
        return parsed
    from lwm2m_mpy import Client
    from lwm2m_mpy.transport import udp  # noqa: F401  (loaded now, before the client's objects fill the heap)

    client = Client(*parsed[0], **parsed[1])
    if parsed[3]:
        from lwm2m_mpy.board import setup, profile  # (not `from lwm2m_mpy import board`: the package's
        # __getattr__ answers for its names first on MicroPython)

        try:
            setup(client, profile(parsed[3]))
        except ValueError as e:  # an unknown board: say which exist where
            print(e)
            return 2
    client.run(parsed[2])
    return 0


sys.exit(main(sys.argv[1:]))
