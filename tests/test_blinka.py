"""The `machine` stand-in of lwm2m_mpy/_compat_other.py over Adafruit Blinka's simulated board (CPython,
BLINKA_OS_AGNOSTIC=1): Pin, ADC, PWM, I2C as MicroPython drivers use them. Blinka reads the environment
when `board` is first imported, so the checks run in a child process (this file run as a script) with
the variable set; the tests assert on what it reports. Also: importing lwm2m_mpy on plain CPython loads
none of Blinka's modules (the stand-in imports them when a pin is made).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 60  # s: Blinka's import and board detection take about a second


def observe():
    """Runs in the child: every check's raw result, as JSON on the last line of stdout."""
    import lwm2m_mpy  # noqa: F401  (installs the stand-ins)
    import machine

    out = {"module": repr(machine)}
    Pin = machine.Pin
    toggle = Pin("Dx_INPUT_TOGGLE", Pin.IN)
    out["toggle"] = [toggle.value() for _ in range(6)]
    out["true_up"] = Pin("Dx_INPUT_TRUE", Pin.IN, Pin.PULL_UP).value()
    out["false"] = Pin("Dx_INPUT_FALSE", Pin.IN).value()

    led = Pin("Dx_OUTPUT", Pin.OUT, value=1)
    out["initial"] = led.value()
    trips = []
    for v in (0, 1, 0, True, False):
        led.value(v)
        trips.append([int(v), led.value(), Pin("Dx_OUTPUT").value()])  # a second Pin on it: same state
    out["trips"] = trips
    led.on()
    out["on"] = led()
    led.toggle()
    out["toggled"] = led()

    knob = machine.ADC("Ax_INPUT_WAVE_SINE")
    out["sine"] = [knob.read_u16() for _ in range(40)]
    out["pi"] = machine.ADC(Pin("Ax_INPUT_FIXED_INT_PI")).read_u16()  # ADC(Pin(...)): the pin is handed over

    pwm = machine.PWM("Ax_OUTPUT", freq=1000, duty_u16=0x8000)
    out["pwm"] = [pwm.duty_u16(), pwm.freq()]
    pwm.freq(2000)
    pwm.duty_u16(0x4000)
    out["pwm2"] = [pwm.duty_u16(), pwm.freq()]

    bus = machine.I2C(0, scl="SCL", sda="SDA", freq=100000)
    out["scan"] = bus.scan()
    out["unlocked"] = bus.bus.try_lock()  # every transfer unlocks the bus again
    bus.bus.unlock()
    out["shared_bus"] = machine.I2C(0, scl="SCL", sda="SDA").bus is bus.bus

    uid = machine.unique_id()
    out["uid"] = [type(uid).__name__, len(uid)]
    for name, make in (("bad_name", lambda: Pin("NO_SUCH_PIN")), ("bad_number", lambda: Pin(4))):
        try:
            make()
            out[name] = None
        except ValueError as e:
            out[name] = str(e)
    return out


def bare_import():
    """Runs in the child: plain CPython (no Blinka environment) importing the library."""
    import lwm2m_mpy  # noqa: F401
    from lwm2m_mpy.core import client  # noqa: F401  (the whole client, as a host tool would)

    hw = ("board", "digitalio", "analogio", "busio", "pwmio", "microcontroller", "socketpool", "wifi")
    return {"loaded": [m for m in hw if m in sys.modules], "machine": repr(sys.modules.get("machine")),
            "network": "network" in sys.modules, "socket": repr(sys.modules["socket"])}


def run_child(what, blinka):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("BLINKA_OS_AGNOSTIC", None)
    if blinka:
        env["BLINKA_OS_AGNOSTIC"] = "1"
    proc = subprocess.run([sys.executable, __file__, what], env=env, cwd=str(ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=CHILD_TIMEOUT)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


@pytest.fixture(scope="module")
def seen():
    return run_child("observe", blinka=True)[0]


def test_the_library_puts_its_machine_in_place(seen):
    assert "_Machine" in seen["module"]


def test_toggle_input_changes_between_reads(seen):
    values = seen["toggle"]
    assert set(values) == {0, 1}, values
    assert all(a != b for a, b in zip(values, values[1:])), values
    assert seen["true_up"] == 1 and seen["false"] == 0


def test_output_value_round_trips(seen):
    assert seen["initial"] == 1  # Pin(..., Pin.OUT, value=1)
    for written, read, other in seen["trips"]:
        assert read == written and other == written, seen["trips"]
    assert seen["on"] == 1 and seen["toggled"] == 0


def test_adc_read_u16_changes_within_its_range(seen):
    sine = seen["sine"]
    assert all(isinstance(v, int) and 0 <= v <= 65535 for v in sine), sine
    assert len(set(sine)) > 3, sine  # follows Blinka's simulated sine wave
    assert seen["pi"] == 31415  # Blinka's fixed input, through ADC(Pin(...))


def test_pwm_duty_and_frequency(seen):
    assert seen["pwm"] == [0x8000, 1000]
    assert seen["pwm2"] == [0x4000, 2000]  # a new frequency keeps working and takes a new duty


def test_i2c_scan_locks_and_unlocks_one_shared_bus(seen):
    assert len(seen["scan"]) == 3 and all(0 <= a <= 0x79 for a in seen["scan"]), seen["scan"]  # Blinka's fake bus
    assert seen["unlocked"] is True
    assert seen["shared_bus"] is True


def test_unique_id_and_clear_errors_for_unknown_pins(seen):
    assert seen["uid"][0] == "bytes" and seen["uid"][1] > 0
    assert "NO_SUCH_PIN" in seen["bad_name"] and "no pin" in seen["bad_name"]
    assert "no pin 4" in seen["bad_number"]  # neither board.GP4 nor board.D4 on the simulated board


def test_plain_cpython_import_loads_no_hardware_modules():
    report, printed = run_child("bare", blinka=False)
    assert report["loaded"] == [], report
    assert not printed, printed  # nothing printed (Blinka's board detection warns when it runs)
    assert "_Machine" in report["machine"]  # in place, lazily
    assert report["network"] is False  # CPython has sockets: no CircuitPython stand-ins for them
    assert "_Sockets" not in report["socket"]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(observe() if sys.argv[1] == "observe" else bare_import()))
