"""Raspberry Pi Pico (or Pico W, WiFi unused) with a SIMCom SIM7080G Cat-M/NB-IoT modem on UART0 (GP0 TX to
the modem's RXD, GP1 RX from its TXD), e.g. Waveshare's Pico-SIM7080G-Cat-M/NB-IoT board (level shifters
on board; its PWRKEY is GP14: pulse it low 1 s, or press the PWR button); the RP2040's temperature sensor
and the onboard LED. The APN comes from config.json ("apn") or MODEM below."""
PORT = "micropython"
NET = "modem"  # the client's datagrams go through the modem (lwm2m_mpy/transport/modem_sim7080.py)
MODEM = {"modem": "sim7080", "uart": 0, "tx": 0, "rx": 1, "baud": 115200, "apn": ""}
PARTS = {
    "mcu": ("mcu_temp", {}),
    "led": ("pin_out", {"pin": "LED"}),
}
OBJECTS = (
    (3303, 0, "mcu", {"app": "MCU"}),
    (3201, 0, "led", {"app": "onboard LED"}),
)
FOTA = "files"  # an update replaces the application's files (fota/files_sink.py, boot.py runs fota/guard.py)
