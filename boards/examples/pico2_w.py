# main.py for the Raspberry Pi Pico 2 W (MicroPython). `make deploy BOARD=pico2_w PORT=/dev/ttyACM0` copies it to the
# board with the compiled library, the profile boards/pico2_w.py and your config.json (WiFi, endpoint, server:
# make it with tools/mkconfig.py). At power-up the board joins the WiFi, registers with the LwM2M server and
# serves the sensors, LED and button of the profile; Ctrl-C in mpremote de-registers it.
from lwm2m_mpy.board import run

run("pico2_w")
