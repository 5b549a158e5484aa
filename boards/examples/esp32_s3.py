# main.py for the ESP32-S3 DevKitC-1 (MicroPython). `make deploy BOARD=esp32_s3 PORT=/dev/ttyACM0` copies it to the
# board with the compiled library, the profile boards/esp32_s3.py and your config.json (WiFi, endpoint, server:
# make it with tools/mkconfig.py). At power-up the board joins the WiFi, registers with the LwM2M server and
# serves the sensors, LED and button of the profile; Ctrl-C in mpremote de-registers it.
from lwm2m_mpy.board import run

run("esp32_s3")
