"""E2E app (run by micropython): a Client with Firmware Update (object 5) over the file sink, its state in
FOLDER/fota.json and the firmware in FOLDER/firmware.bin. The sink's restart ends the process ("APP reset"),
as machine.reset() ends a board's program: the test starts the app again, which is the device booting the
new firmware.

    micropython fota_app.py coap://127.0.0.1:PORT ENDPOINT FOLDER
"""
import sys

from lwm2m_mpy import Client
from lwm2m_mpy.board import drive
from lwm2m_mpy.fota.file_sink import Sink
from lwm2m_mpy.objects import firmware

uri, endpoint, folder = sys.argv[1], sys.argv[2], sys.argv[3]
log = lambda msg: print("lwm2m:", msg)  # noqa: E731
client = Client(endpoint, uri, lifetime=300, log=log)


def reset():
    print("APP reset")
    sys.exit(3)


sink = Sink({"file": folder + "/firmware.bin"}, reset)
fw = firmware.make(client, 5, 0, sink, {"file": folder + "/fota.json"})
drive(client, [fw], log)
client.run()
