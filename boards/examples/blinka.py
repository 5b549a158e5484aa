# A Linux single-board computer (Raspberry Pi & co.) with CPython and Adafruit Blinka: from the project
# folder, `python boards/examples/blinka.py` with a config.json beside it ({"endpoint": "pi-1",
# "server": "coap://192.168.1.10:5683"}), or the command line `python -m lwm2m_mpy --board blinka
# --server coap://192.168.1.10:5683 --endpoint pi-1`. On a desktop, BLINKA_OS_AGNOSTIC=1 simulates the pins.
import sys

sys.path.insert(0, ".")  # boards/ and lwm2m_mpy/ from the project folder
from lwm2m_mpy.board import run  # noqa: E402

run("blinka")
