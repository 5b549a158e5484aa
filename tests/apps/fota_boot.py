"""E2E app (run by micropython): a board with FOTA = "files" booting. ROOT stands for the board's
filesystem: fota/guard.py's boot() runs first (as boot.py does on a board), then ROOT/main.py is run, the
application that object 5 may replace.

    micropython fota_boot.py ROOT coap://127.0.0.1:PORT ENDPOINT
"""
import sys

from lwm2m_mpy.fota import guard

root = sys.argv[1]
guard.boot(root)
with open(root + "/main.py") as f:
    code = f.read()
exec(code, {"__name__": "__main__", "ROOT": root, "URI": sys.argv[2], "ENDPOINT": sys.argv[3]})
