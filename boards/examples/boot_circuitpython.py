# boot.py for CircuitPython boards with FOTA = "files" (`make deploy` copies it). Firmware updates and the
# stored configuration need the CIRCUITPY drive writable by the board, which makes it read-only to your
# computer: hold a button (here GP15 to GND) while resetting to keep it writable from USB instead.
import board
import digitalio
import storage

button = digitalio.DigitalInOut(board.GP15)
button.pull = digitalio.Pull.UP
if button.value:  # not pressed: the board writes, the computer reads
    storage.remount("/", readonly=False)
    from lwm2m_mpy.fota import guard

    guard.boot()
button.deinit()
