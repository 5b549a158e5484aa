"""The MicroPython board profiles (boards/pico_w.py, pico2_w.py, esp32.py, esp32_s3.py) made real by
lwm2m_mpy/board.py on fake hardware (tests/fakes: a `machine` module, an `esp32` module, fake I2C chips),
on the sans-IO client over real CoAP messages: every object of the profile reads what its part measures,
the button counts and notifies, a Write lights the LED pin, a sensor missing from the bus leaves its objects
out and the rest working; config.json handling. Runs under CPython and inside micropython (unix port)."""
import sys

import lwm2m_mpy.board as board  # (`from lwm2m_mpy import board`: the package's __getattr__ answers first on MicroPython)
from lwm2m_mpy.drivers import aht20, bme280, sht3x
from test_ipso import write
from test_observe import CHANGED, CONTENT, GET, TEXT, Device, decode, opt
from test_drivers import _board, chips, esp32, machine

MPY = True
MPY_HEAP = "512k"  # the test modules it imports (drivers, fakes, IPSO and observe tests) fill a 256k heap

NOT_FOUND = 132
OBSERVE = 6


def on_board(name, kind):
    """Profile `name` with its MCU temperature sensor told which chip it is on (the unix port is neither)."""
    prof = board.profile(name)

    class Profile:
        OBJECTS = prof.OBJECTS
        PARTS = {}

    for part in prof.PARTS:
        driver, cfg = prof.PARTS[part]
        if driver == "mcu_temp":
            cfg = {"kind": kind}
        Profile.PARTS[part] = (driver, cfg)
    return Profile


def text(d, path):
    r = d.ask(GET, path, accept=TEXT)
    assert r.code == CONTENT, (path, r.code, bytes(r.payload()))
    return bytes(r.payload()).decode()


def close(a, b, tol=0.011):
    return abs(float(a) - b) <= tol


def button_and_led(d, pin, led):
    """The button (a pull-up, pressed = low) counts a press and notifies it; a Write lights the LED pin."""
    obs = d.ask(GET, "/3347/0/5501", observe=0, accept=TEXT)
    assert obs.code == CONTENT and bytes(obs.payload()) == b"0"
    machine.levels[pin] = 0  # pressed
    got = d.run(d.t + 300)
    assert [bytes(m.payload()) for _, m in got if opt(m, OBSERVE) is not None] == [b"1"]
    assert text(d, "/3347/0/5500") == "1"
    machine.levels[pin] = 1
    d.run(d.t + 300)
    assert text(d, "/3347/0/5500") == "0" and text(d, "/3347/0/5501") == "1"
    assert write(d, "/3201/0/5550", b"1").code == CHANGED
    assert machine.pins[led].out == 1 and text(d, "/3201/0/5550") == "1"
    assert write(d, "/3201/0/5550", b"0").code == CHANGED
    assert machine.pins[led].out == 0


def test_pico_w_profile_on_fake_rp2040():
    hw = _board()
    hw.attach(0, 0x76, chips.BME280())
    hw.adc_values[4] = 14000  # the RP2040's sensor: 0.705 V, about 27.5 °C
    hw.adc_values[26] = 32768  # the potentiometer half way
    hw.levels[15] = 1  # button up (pull-up)
    d = Device()
    insts = board.setup(d.c, on_board("pico_w", "rp2"))
    assert len(insts) == 8
    mcu = 27 - (14000 * 3.3 / 65535 - 0.706) / 0.001721
    assert close(text(d, "/3303/0/5700"), mcu)
    env = bme280.make({"i2c": 0, "addr": 0x76})  # the same chip, read by the driver alone
    assert close(text(d, "/3303/1/5700"), env.read("t"))
    assert close(text(d, "/3304/0/5700"), env.read("h"))
    assert close(text(d, "/3315/0/5700"), env.read("p"))
    assert text(d, "/3315/0/5701") == "hPa" and text(d, "/3303/1/5701") == "Cel"
    assert close(text(d, "/3202/0/5600"), 32768 / 65535 * 3.3, 0.001)
    button_and_led(d, 15, "LED")
    assert d.ask(GET, "/4/0/0", accept=TEXT).code == CONTENT  # Connectivity Monitoring reads


def test_pico2_w_profile_with_aht20():
    hw = _board()
    hw.attach(0, 0x38, chips.AHT20())
    hw.adc_values[4] = 14000
    hw.levels[15] = 1
    d = Device()
    board.setup(d.c, on_board("pico2_w", "rp2"))
    env = aht20.make({"i2c": 0, "addr": 0x38})
    assert close(text(d, "/3303/1/5700"), env.read("t"))
    assert close(text(d, "/3304/0/5700"), env.read("h"))
    button_and_led(d, 15, "LED")


def test_esp32_profile_on_fake_esp32():
    hw = _board()
    hw.attach(0, 0x76, chips.BME280())
    hw.levels[0] = 1  # BOOT button up
    hw.adc_values[34] = 16384
    saved = esp32.mcu_temperature
    esp32.mcu_temperature = None  # the original ESP32: only the raw (°F) sensor
    esp32.fahrenheit = 131
    try:
        d = Device()
        board.setup(d.c, on_board("esp32", "esp32"))
    finally:
        esp32.mcu_temperature = saved  # the fake module is shared with tests/test_drivers.py
    assert close(text(d, "/3303/0/5700"), (131 - 32) / 1.8)
    env = bme280.make({"i2c": 0, "addr": 0x76})
    assert close(text(d, "/3303/1/5700"), env.read("t"))
    assert close(text(d, "/3202/0/5600"), 16384 / 65535 * 3.3, 0.001)
    button_and_led(d, 0, 2)


def test_esp32_s3_profile_with_sht3x():
    hw = _board()
    hw.attach(0, 0x44, chips.SHT3x())
    hw.levels[0] = 1
    esp32.celsius = 41.5
    d = Device()
    board.setup(d.c, on_board("esp32_s3", "esp32"))
    assert close(text(d, "/3303/0/5700"), 41.5)
    env = sht3x.make({"i2c": 0, "addr": 0x44})
    assert close(text(d, "/3303/1/5700"), env.read("t"))
    assert close(text(d, "/3304/0/5700"), env.read("h"))
    button_and_led(d, 0, 2)


def test_a_sensor_missing_from_the_bus_leaves_its_objects_out():
    hw = _board()  # no BME280 attached: the I2C address does not answer
    hw.adc_values[4] = 14000
    hw.levels[15] = 1
    d = Device()
    insts = board.setup(d.c, on_board("pico_w", "rp2"))
    assert len(insts) == 5  # 3303/1, 3304/0 and 3315/0 (the BME280's) are left out
    assert any("part env (bme280) left out" in line for line in d.logs), d.logs
    for path in ("/3303/1/5700", "/3304/0/5700", "/3315"):
        assert d.ask(GET, path, accept=TEXT).code == NOT_FOUND, path
    assert text(d, "/3303/0/5701") == "Cel"
    button_and_led(d, 15, "LED")


def test_objects_added_after_registering_go_out_in_an_update():
    hw = _board()
    hw.attach(0, 0x76, chips.BME280())
    hw.levels[15] = 1
    d = Device()
    board.setup(d.c, on_board("pico_w", "rp2"))
    d.link.sent.clear()
    d.c.step(d.t + 10)
    update = [decode(x) for x in d.link.sent]
    assert update and b"</3303/1>" in bytes(update[0].payload()), [bytes(m.payload()) for m in update]


def test_config_json_to_client_arguments():
    ep, server, kw = board.client_args({"endpoint": "pico-1", "server": "coaps://192.168.1.10:5684",
                                        "psk_id": "pico-1", "psk_key": "0011ff", "lifetime": 120,
                                        "wifi": {"ssid": "home", "password": "x"}})
    assert (ep, server) == ("pico-1", "coaps://192.168.1.10:5684")
    assert kw == {"psk": (b"pico-1", b"\x00\x11\xff"), "lifetime": 120}
    for bad in ({"endpoint": "x"}, {"server": "coap://h", "lifetme": 60}):
        try:
            board.client_args(bad)
        except ValueError as e:
            assert "config.json" in str(e)
        else:
            raise AssertionError("accepted %r" % bad)


def test_every_profile_names_existing_drivers_and_tables():
    for name in ("unix", "blinka", "esp32", "esp32_s3", "pico_w", "pico2_w", "circuitpython_pico_w"):
        prof = board.profile(name)
        for mod in board.needs(prof):
            __import__("lwm2m_mpy." + mod)
        for oid, iid, part, cfg in prof.OBJECTS:
            assert part is None or part in prof.PARTS, (name, part)
    try:
        board.profile("no_such_board")
    except ValueError as e:
        assert "unknown board no_such_board" in str(e)
    else:
        raise AssertionError("no error")
    sys.modules.pop("boards.no_such_board", None)


def test_a_modem_profile_makes_its_cellular_transport():
    hw = _board()
    prof = board.profile("pico_sim7080")
    assert {"transport.at", "transport.modem", "transport.modem_sim7080"} <= set(board.needs(prof))
    link = board.modem(prof, {"apn": "iot.test"}, "coap://192.0.2.7:5683")
    uart = hw.uarts[0]
    assert (uart.baudrate, uart.tx, uart.rx) == (115200, 0, 1)
    assert type(link).__name__ == "Driver" and link.sock is None  # the UDP transport's interface
    for bad in ("coaps://192.0.2.7:5684", None):
        try:
            board.modem(prof, {}, bad)
        except ValueError as e:
            assert "coap://" in str(e)
        else:
            raise AssertionError("accepted %r" % bad)
