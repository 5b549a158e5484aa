"""A fake `esp32` module for tests: the die temperature functions of MicroPython's esp32 port, and its
OTA partitions (esp32.Partition, below).
Set `celsius` / `fahrenheit`; set `mcu_temperature = None` to look like an original ESP32 (only
raw_temperature, in °F)."""
celsius = 45.0
fahrenheit = 128


def _mcu_temperature():
    return celsius


def raw_temperature():
    return fahrenheit


mcu_temperature = _mcu_temperature


# --- OTA partitions: esp32.Partition as MicroPython's esp32 port has it -------------------------------
# Two app partitions, "ota_0" and "ota_1", held in memory (flash[label]: a bytearray, erased = 0xFF; a
# write can only clear bits, as on real flash, so a sector written without its erase shows). Every call
# is appended to `calls` as a tuple, e.g. ("writeblocks", "ota_1", 3, 4096). ota_reset() starts a clean
# board; ota_restart() is a reset as the bootloader sees it: boot the partition set_boot() chose, marked
# pending verify, and if that one never called mark_app_valid_cancel_rollback(), go back to the one before.
BLOCK = 4096
calls = []
flash = {}
ota = {"running": "ota_0", "boot": "ota_0", "previous": None, "unconfirmed": False, "rollback": True}


def ota_reset(blocks=8, running="ota_0"):
    del calls[:]
    flash.clear()
    for label in ("ota_0", "ota_1"):
        flash[label] = bytearray(b"\xff" * (blocks * BLOCK))
    ota.update({"running": running, "boot": running, "previous": None, "unconfirmed": False, "rollback": True})


def ota_restart():
    if ota["unconfirmed"]:  # the new image did not confirm in its first boot: the bootloader rolls back
        ota["running"] = ota["boot"] = ota["previous"]
        ota["unconfirmed"] = False
    elif ota["boot"] != ota["running"]:
        ota["previous"] = ota["running"]
        ota["running"] = ota["boot"]
        ota["unconfirmed"] = ota["rollback"]


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id):
        if id == Partition.RUNNING:
            id = ota["running"]
        elif id == Partition.BOOT:
            id = ota["boot"]
        if id not in flash:
            raise OSError(2)  # ENOENT, as the port raises for no such partition
        self.label = id

    def info(self):
        n = int(self.label[-1])
        return (0, 0x10 + n, 0x10000 + n * len(flash[self.label]), len(flash[self.label]), self.label, False)

    def get_next_update(self):
        calls.append(("get_next_update", self.label))
        return Partition("ota_1" if self.label == "ota_0" else "ota_0")

    def ioctl(self, cmd, arg):
        if cmd == 4:
            return len(flash[self.label]) // BLOCK
        if cmd == 5:
            return BLOCK
        if cmd == 6:
            calls.append(("erase", self.label, arg))
            data = flash[self.label]
            for i in range(arg * BLOCK, (arg + 1) * BLOCK):
                data[i] = 0xFF
            return 0
        return None if cmd > 6 else 0

    def readblocks(self, block, buf, offset=0):
        start = block * BLOCK + offset
        data = flash[self.label]
        if start + len(buf) > len(data):
            raise OSError(22)
        buf[0:len(buf)] = data[start:start + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        n = len(buf)
        data = flash[self.label]
        start = block * BLOCK + (offset or 0)
        if start + n > len(data):
            raise OSError(22)
        if offset is None:  # the 3-argument form erases the sectors first
            calls.append(("writeblocks", self.label, block, n))
            for i in range(start, start + n):
                data[i] = 0xFF
        else:
            calls.append(("writeblocks", self.label, block, n, offset))
        for i in range(n):
            data[start + i] &= buf[i]

    def set_boot(self):
        calls.append(("set_boot", self.label))
        ota["boot"] = self.label

    @staticmethod
    def mark_app_valid_cancel_rollback():
        calls.append(("mark_app_valid_cancel_rollback",))
        if not ota["rollback"]:
            raise OSError(-261)  # a build without CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
        ota["unconfirmed"] = False
