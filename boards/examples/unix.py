# The desktop: the MicroPython unix port (or CPython) with simulated sensors, button, LED and GNSS.
# From build/mpy (after `make mpy`): `MICROPYPATH=.frozen micropython ../../boards/examples/unix.py`
# with a config.json in that folder ({"endpoint": "desk-1", "server": "coap://127.0.0.1:5683"}).
# `make run` does the same through the command line: `micropython -m lwm2m_mpy --board unix ...`.
from lwm2m_mpy.board import run

run("unix")
