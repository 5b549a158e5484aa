# code.py for the Raspberry Pi Pico W under CircuitPython. `make deploy BOARD=circuitpython_pico_w
# PORT=/media/$USER/CIRCUITPY` copies it to the CIRCUITPY drive with the library, the profile and your
# config.json (tools/mkconfig.py). The board joins the WiFi, registers with the LwM2M server (coap://:
# CircuitPython has no DTLS) and serves the BME280, LED, button and potentiometer of the profile.
from lwm2m_mpy.board import run

run("circuitpython_pico_w")
