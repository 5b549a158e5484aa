# main.py for a Raspberry Pi Pico with a SIM7080G modem (MicroPython). `make deploy BOARD=pico_sim7080
# PORT=/dev/ttyACM0 CONFIG=config.json` copies it with the library, the modem driver and the profile;
# config.json needs "endpoint", "server" (coap://, an IP address) and, for your SIM, "apn". The board
# attaches to the cellular network, registers with the LwM2M server and serves its temperature and LED.
from lwm2m_mpy.board import run

run("pico_sim7080")
