"""The desktop (MicroPython unix port, or CPython): simulated sensors, button, LED, lamp and GNSS, no
hardware. The default of `make run`."""
PORT = "micropython"
NET = None  # the host's own network
PARTS = {
    "temp": ("sim", {"kind": "t", "mid": 21.5, "amp": 2.0, "period": 120}),
    "hum": ("sim", {"kind": "h", "mid": 45.0, "amp": 8.0, "period": 300}),
    "baro": ("sim", {"kind": "p", "mid": 1013.0, "amp": 4.0, "period": 600}),
    "light": ("sim", {"kind": "lux", "mid": 300.0, "amp": 250.0, "period": 90}),
    "button": ("sim", {"kind": "in", "every": 7}),
    "led": ("sim", {"kind": "out", "name": "LED"}),
    "lamp": ("sim", {"kind": "out", "name": "lamp"}),
    "gnss": ("sim", {"kind": "gnss", "lat": 48.8584, "lon": 2.2945}),
}
OBJECTS = (
    (3303, 0, "temp", {"app": "room", "every": 1}),
    (3304, 0, "hum", {"app": "room"}),
    (3315, 0, "baro", {}),
    (3301, 0, "light", {}),
    (3347, 0, "button", {"app": "simulated button"}),
    (3201, 0, "led", {"app": "LED"}),
    (3311, 0, "lamp", {"watts": 9.0}),
    (4, 0, None, {}),
    (6, 0, "gnss", {}),
)
FOTA = "file"  # updates land in a file (fota/file_sink.py): the desktop has nothing to flash
