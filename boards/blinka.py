"""Linux single-board computers (Raspberry Pi & co.) with CPython and Adafruit Blinka. Pin names are
Blinka's `board` names; with BLINKA_OS_AGNOSTIC=1 Blinka simulates a board with these pins (the tests
and any desktop): a toggling input, an output, a sine-wave analog input. On a real Pi, name its pins
instead ("D17", "D27", ...) and add an ADC chip for the analog input."""
PORT = "cpython"
NET = None  # Linux brings the network up
PARTS = {
    "switch": ("pin_in", {"pin": "Dx_INPUT_TOGGLE"}),
    "led": ("pin_out", {"pin": "Dx_OUTPUT"}),
    "knob": ("adc", {"pin": "Ax_INPUT_WAVE_SINE", "scale": 3.3}),
}
OBJECTS = (
    (3200, 0, "switch", {"app": "switch", "debounce": 0, "every": 1}),
    (3201, 0, "led", {"app": "LED"}),
    (3202, 0, "knob", {"app": "knob", "every": 1}),
    (4, 0, None, {}),
)
FOTA = "file"  # updates land in a file (fota/file_sink.py): the desktop has nothing to flash
