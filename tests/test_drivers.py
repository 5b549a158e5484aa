"""lwm2m_mpy/drivers/ against fake hardware (tests/fakes: a `machine` module, an `esp32` module and
fake I2C chips), under CPython and inside micropython. The BME280 expectations are the integer results
the datasheet's compensation gives for these register sets (checked once by hand against its worked
example, and on every run against Adafruit's library in tests/test_drivers_interop.py);
the other chips' conversions are the datasheet formulas on known raw words; NMEA sentences are the
classic published examples with their checksums."""
import sys

MPY = True
MPY_HEAP = "256k"

_FAKES = __file__.rsplit("/", 1)[0] + "/fakes"


def _load(name):
    """A module of tests/fakes. CPython: loaded from its file under a private name, so whatever the
    library's compat layer put into sys.modules["machine"] is not what we get. MicroPython: the
    folder goes on sys.path (the runner imports us with tests/ first; cwd is the repo root)."""
    try:
        from importlib.util import module_from_spec, spec_from_file_location
    except ImportError:  # MicroPython
        if _FAKES not in sys.path:
            sys.path.insert(0, _FAKES)
        return __import__(name)
    spec = spec_from_file_location("fakes_" + name, _FAKES + "/" + name + ".py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


import lwm2m_mpy  # noqa: E402,F401  (on CPython: the micropython.const shim the drivers import)

machine = _load("machine")
esp32 = _load("esp32")
chips = _load("chips")

from lwm2m_mpy.drivers import adc, aht20, bme280, mcu_temp, nmea, pin_in, pin_out, pwm_out, sht3x, sim  # noqa: E402

try:
    import pytest
except ImportError:  # inside micropython
    pytest = None

if pytest:
    @pytest.fixture(autouse=True)
    def _keep_sys_modules():
        """Put back whatever `machine` / `esp32` other tests see (e.g. the compat layer's shim)."""
        saved = {name: sys.modules.get(name) for name in ("machine", "esp32")}
        yield
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _board():
    """A clean fake board: the drivers' `import machine` / `import esp32` find the fakes."""
    sys.modules["machine"] = machine
    sys.modules["esp32"] = esp32
    machine.reset()
    return machine


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def _close(a, b, tol=1e-9):
    return abs(a - b) <= tol


# --- mcu_temp, adc, pins, pwm ----------------------------------------------------------------------

def test_mcu_temp_rp2_formula_on_adc_channel_4():
    hw = _board()
    hw.adc_values[4] = 14021  # about 0.706 V: 27 °C
    part = mcu_temp.make({"kind": "rp2"})
    assert _close(part.read(), 27 - (14021 * 3.3 / 65535 - 0.706) / 0.001721)
    assert 26.9 < part.read() < 27.1
    hw.adc_values[4] = 13000  # higher temperature, lower voltage
    assert _close(part.read(), 27 - (13000 * 3.3 / 65535 - 0.706) / 0.001721)
    assert part.read() > 40


def test_mcu_temp_esp32_celsius_or_raw_fahrenheit():
    _board()
    esp32.celsius = 41.5
    assert mcu_temp.make({"kind": "esp32"}).read() == 41.5
    saved = esp32.mcu_temperature
    esp32.mcu_temperature = None  # an original ESP32: raw_temperature() only, in °F
    try:
        esp32.fahrenheit = 122
        assert _close(mcu_temp.make({"kind": "esp32"}).read(), 50.0)
    finally:
        esp32.mcu_temperature = saved


def test_mcu_temp_no_sensor_is_oserror_so_the_loader_skips_it():
    _board()
    _raises(OSError, mcu_temp.make, {"kind": "linux"})
    if sys.implementation.name != "circuitpython":
        _raises(OSError, mcu_temp.make, {})  # the unix port, CPython


class _Cpu:
    temperature = 36.6


def test_mcu_temp_circuitpython_cpu():
    part = mcu_temp.McuTemp(_Cpu(), "cpu")
    assert part.read() == 36.6
    part = mcu_temp.McuTemp(type("NoReading", (), {"temperature": None})(), "cpu")
    _raises(OSError, part.read)


def test_adc_scale_and_offset():
    hw = _board()
    hw.adc_values[26] = 65535
    assert _close(adc.make({"pin": 26}).read(), 3.3)
    hw.adc_values[26] = 32768
    assert _close(adc.make({"pin": 26}).read(), 32768 * 3.3 / 65535)
    part = adc.make({"pin": 26, "scale": 100, "offset": -50})  # e.g. a -50..50 °C transmitter
    assert _close(part.read(), 32768 * 100 / 65535 - 50)
    hw.adc_values[26] = 0
    assert part.read() == -50


def test_pin_in_pull_and_invert():
    hw = _board()
    button = pin_in.make({"pin": 15, "pull": "up", "invert": True})
    assert hw.pins[15].mode == hw.Pin.IN and hw.pins[15].pull == hw.Pin.PULL_UP
    assert button.value() is False  # released: the pull-up reads 1
    hw.levels[15] = 0  # pressed: shorted to GND
    assert button.value() is True
    sensor = pin_in.make({"pin": 16, "pull": "down"})
    assert hw.pins[16].pull == hw.Pin.PULL_DOWN and sensor.value() is False
    hw.levels[16] = 1
    assert sensor.value() is True
    plain = pin_in.make({"pin": 17})
    assert hw.pins[17].pull == -1 and plain.value() is False  # no pull given: left alone
    _raises(ValueError, pin_in.make, {"pin": 18, "pull": "sideways"})


def test_pin_out_by_name_reads_back_and_inverts():
    hw = _board()
    led = pin_out.make({"pin": "LED"})
    assert hw.pins["LED"].mode == hw.Pin.OUT and hw.pins["LED"].out == 0  # starts off
    assert led.value(True) is True and hw.pins["LED"].out == 1
    assert led.value() is True
    assert led.value(0) is False and hw.pins["LED"].out == 0
    active_low = pin_out.make({"pin": 2, "invert": True})
    assert hw.pins[2].out == 1  # off = high
    assert active_low.value(True) is True and hw.pins[2].out == 0
    hw.pins[2].out = 1  # something else drove it: the read-back says so
    assert active_low.value() is False


def test_pwm_out_switch_keeps_the_dimmer():
    hw = _board()
    lamp = pwm_out.make({"pin": 25, "freq": 500})
    pwm = hw.pwms[25]
    assert pwm.freq() == 500 and pwm.duty_u16() == 0 and lamp.value() is False
    assert lamp.value(True) is True and pwm.duty_u16() == 65535
    assert lamp.duty(40) == 40
    assert pwm.duty_u16() == 26214  # 40 % of 65535, rounded
    assert lamp.value(False) is False and pwm.duty_u16() == 0
    assert lamp.duty(60) == 60 and pwm.duty_u16() == 0  # off stays off
    assert lamp.value(True) is True and pwm.duty_u16() == 39321  # back at the kept level
    assert lamp.duty(150) == 100 and lamp.duty(-5) == 0
    assert lamp.value() is True  # on at 0 %: still switched on
    inverted = pwm_out.make({"pin": 3, "invert": True})
    assert hw.pwms[3].duty_u16() == 65535
    inverted.duty(25)
    inverted.value(True)
    assert hw.pwms[3].duty_u16() == 65535 - 16384 and inverted.value() is True


# --- BME280 ------------------------------------------------------------------------------------------

# (register set, integer results of the datasheet's compensation: T 0.01 °C, P Pa*256, H %RH*1024)
# The BMP280 datasheet's figure prints 25767236 for P; its published 64-bit formula gives 25767233.
_BME_EXPECT = (
    ("datasheet", 2508, 25767233, 57164),
    ("chip_a", 2010, 23868825, 56078),
    ("chip_b", 2479, 25769253, 70317),
    ("signed", 2825, 28791728, 52613),
)


def _bme_chip(name, **kw):
    if name == "chip_a":
        return chips.BME280.from_data(chips.CHIP_A_88, chips.CHIP_A_E1, chips.CHIP_A_DATA, **kw)
    cal, raw = {"datasheet": chips.DATASHEET, "chip_b": chips.CHIP_B, "signed": chips.SIGNED}[name]
    return chips.BME280.from_words(cal, raw, **kw)


def test_bme280_calibration_words_decode():
    assert bme280.calibration(chips.CHIP_A_88, chips.CHIP_A_E1) == (
        28264, 25832, 50, 36691, -10837, 3024, 8867, 53, -7, 9900, -10230, 4285, 75, 364, 0, 314, 0, 30)
    for cal in (chips.DATASHEET[0], chips.CHIP_B[0], chips.SIGNED[0]):  # 12-bit H4/H5, signed H6
        assert bme280.calibration(*chips.bme280_blocks(cal)) == cal


def test_bme280_compensation_matches_the_datasheet_code():
    for name, t, p, h in _BME_EXPECT:
        hw = _board()
        hw.attach(0, 0x76, _bme_chip(name))
        part = bme280.make({"i2c": 0, "sda": 4, "scl": 5})
        assert part.read("t") == t / 100, name
        assert part.read() == t / 100
        assert part.read("h") == h / 1024, name
        assert part.read("p") == p / 25600, name
    assert _close(25767233 / 256, 100653.27, 0.05)  # the worked example, in Pa


def test_bme280_agrees_with_published_floating_point_results():
    # Pimoroni's bme280-python tests, same words and raw values, floating-point formulas; the
    # integer code rounds to 0.01 °C, 1/256 Pa, 1/1024 %RH and differs from double by less than this
    hw = _board()
    hw.attach(0, 0x76, _bme_chip("chip_b"))
    part = bme280.make({})
    assert _close(part.read("t"), 24.7894877676, 0.01)
    assert _close(part.read("p"), 1006.61517564, 0.006)
    assert _close(part.read("h"), 68.66996648709039, 0.01)


def test_bme280_one_measurement_serves_t_h_p():
    hw = _board()
    chip = hw.attach(1, 0x77, _bme_chip("datasheet", busy_reads=2))
    part = bme280.make({"i2c": 1, "addr": 0x77})
    assert chip.measurements == 0 and chip.resets == 1  # forced mode: nothing until asked
    assert hw.buses[1][0x77] is chip
    part.read("t")
    part.read("h")
    part.read("p")
    assert chip.measurements == 1
    assert chip.regs[0xF4] & 3 == 0  # back asleep
    eager = bme280.BME280(machine.I2C(1), 0x77, max_age_ms=0)
    before = chip.measurements
    eager.read("t")
    eager.read("p")
    assert chip.measurements == before + 2


def test_bme280_registers_follow_the_settings():
    hw = _board()
    chip = hw.attach(0, 0x76, _bme_chip("chip_b"))
    bme280.make({"oversample": 4, "iir": 16})
    assert chip.regs[0xF2] == 3  # ctrl_hum osrs_h x4
    assert chip.regs[0xF4] == (3 << 5) | (3 << 2)  # osrs_t, osrs_p x4, sleep
    assert chip.regs[0xF5] == (5 << 5) | (4 << 2)  # t_sb 1000 ms, filter 16
    _raises(ValueError, bme280.make, {"oversample": 3})
    _raises(ValueError, bme280.make, {"mode": "fast"})


def test_bme280_normal_mode_reads_the_running_conversion():
    hw = _board()
    chip = hw.attach(0, 0x76, _bme_chip("datasheet"))
    part = bme280.BME280(machine.I2C(0), mode="normal", max_age_ms=0)
    assert chip.regs[0xF4] & 3 == 3
    assert part.read("t") == 25.08
    count = chip.measurements
    chip.set_raw(*chips.CHIP_B[1])  # the chip converts by itself; we only read
    chip.regs[0x88:0x88 + 26] = bytes(26)  # calibration was read once, at start
    assert part.read("t") == bme280.compensate(chips.DATASHEET[0], *chips.CHIP_B[1])[0] / 100
    assert chip.measurements == count + 1


def test_bme280_absent_or_not_a_bme280_is_oserror():
    hw = _board()
    _raises(OSError, bme280.make, {"i2c": 0})
    hw.attach(0, 0x76, chips.BME280(chip_id=0x58))  # a BMP280: no humidity
    e = _raises(OSError, bme280.make, {"i2c": 0})
    assert "0x58" in str(e)
    _raises(OSError, bme280.make, {"i2c": 0, "addr": 0x77})


def test_bme280_unknown_quantity():
    hw = _board()
    hw.attach(0, 0x76, _bme_chip("chip_a"))
    _raises(ValueError, bme280.make({}).read, "lux")


# --- SHT3x, AHT20 ------------------------------------------------------------------------------------

def test_crc8_check_values():
    # CRC-8 with polynomial 0x31, init 0xFF: SHT3x datasheet §4.12 example 0xBEEF -> 0x92; the
    # catalogue check value over "123456789" (CRC-8/NRSC-5) is 0xF7
    assert sht3x.crc8(b"\xbe\xef", 0, 2) == 0x92
    assert sht3x.crc8(b"123456789", 0, 9) == 0xF7
    assert aht20.crc8(b"123456789", 9) == 0xF7
    assert chips.crc8(b"\xbe\xef") == 0x92


def test_sht3x_single_shot_high_repeatability():
    hw = _board()
    chip = hw.attach(0, 0x44, chips.SHT3x(raw_t=0x6666, raw_h=0x8000))
    part = sht3x.make({"i2c": 0, "sda": 8, "scl": 9})
    assert _close(part.read("t"), -45 + 175 * 0x6666 / 65535)  # 25.0 °C
    assert _close(part.read("h"), 100 * 0x8000 / 65535)
    assert chip.commands == [0xF32D, 0x2400]  # status (probe), then one measurement for both
    for raw_t, raw_h in ((0, 0), (65535, 65535), (0x4000, 0x1234)):
        chip.raw_t, chip.raw_h = raw_t, raw_h
        fresh = sht3x.SHT3x(machine.I2C(0), max_age_ms=0)
        assert _close(fresh.read("t"), -45 + 175 * raw_t / 65535)
        assert _close(fresh.read("h"), 100 * raw_h / 65535)
    chip.set(21.5, 40.0)
    assert _close(sht3x.SHT3x(machine.I2C(0)).read("t"), 21.5, 0.002)


def test_sht3x_crc_error_and_absence_are_oserror():
    hw = _board()
    chip = hw.attach(0, 0x44, chips.SHT3x())
    part = sht3x.SHT3x(machine.I2C(0), max_age_ms=0)
    chip.corrupt = True
    e = _raises(OSError, part.read, "t")
    assert "CRC" in str(e)
    part.read("t")  # the next one is fine
    _raises(OSError, sht3x.make, {"i2c": 0, "addr": 0x45})
    chip.corrupt = True  # a wrong CRC already on the status word: not an SHT3x
    _raises(OSError, sht3x.make, {"i2c": 0})


def test_aht20_conversion_crc_and_busy():
    hw = _board()
    chip = hw.attach(0, 0x38, chips.AHT20(raw_h=0x80000, raw_t=0x66666, busy_reads=3))
    part = aht20.make({"i2c": 0})
    assert _close(part.read("h"), 0x80000 * 100 / 0x100000)  # 50 %RH
    assert _close(part.read("t"), 0x66666 * 200 / 0x100000 - 50)  # 30.0 °C
    assert chip.measurements == 1
    fresh = aht20.AHT20(machine.I2C(0), max_age_ms=0)
    for raw_h, raw_t in ((0, 0), (0xFFFFF, 0xFFFFF), (0x12345, 0xABCDE)):
        chip.raw_h, chip.raw_t = raw_h, raw_t
        assert _close(fresh.read("h"), raw_h * 100 / 0x100000)
        assert _close(fresh.read("t"), raw_t * 200 / 0x100000 - 50)
    chip.corrupt = True
    assert "CRC" in str(_raises(OSError, fresh.read, "t"))
    chip.corrupt = True
    assert aht20.AHT20(machine.I2C(0), crc=False, max_age_ms=0).read("t") is not None  # AHT10: no CRC


def test_aht20_calibration_and_absence():
    hw = _board()
    chip = hw.attach(0, 0x38, chips.AHT20(calibrated=False))
    aht20.make({})
    assert chip.calibrated  # 0xBE 0x08 0x00 was sent
    hw.attach(0, 0x38, chips.AHT20(calibrated=False, stuck=True))
    _raises(OSError, aht20.make, {})
    hw.attach(0, 0x38, chips.AHT20(busy_reads=1000))
    _raises(OSError, aht20.make({}).read, "t")  # never finishes: OSError, not a hang
    _raises(OSError, aht20.make, {"i2c": 1})


# --- NMEA --------------------------------------------------------------------------------------------

GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
RMC = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"
_WHEN = 764426119  # 1994-03-23 12:35:19 UTC


def test_nmea_gga_and_rmc_give_a_fix():
    parser = nmea.NMEA()
    assert parser.fix() is None
    parser.feed(GGA)
    lat, lon, alt, speed, when = parser.fix()
    assert _close(lat, 48 + 7.038 / 60) and _close(lon, 11 + 31.0 / 60) and alt == 545.4
    assert speed is None and when is None  # no RMC yet
    parser.feed(RMC)
    lat, lon, alt, speed, when = parser.fix()
    assert _close(speed, 22.4 * 1852 / 3600) and when == _WHEN and alt == 545.4
    assert parser.good == 2 and parser.bad == 0


def test_nmea_checksum_and_format_rejection():
    parser = nmea.NMEA()
    parser.feed(GGA.replace(b"4807.038", b"4807.039"))  # one digit off: checksum no longer matches
    parser.feed(RMC.replace(b"*6A", b"*6B"))
    parser.feed(b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,\r\n")  # no checksum
    parser.feed(b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*ZZ\r\n")
    assert parser.bad == 4 and parser.good == 0 and parser.fix() is None
    parser.feed(b"$GPGGA,1,x*" + b"%02X" % _xor(b"GPGGA,1,x") + b"\r\n")  # good checksum, too short
    assert parser.bad == 5
    parser.feed(_nmea("GPGGA,123519,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"))  # bad number
    assert parser.bad == 6 and parser.fix() is None


def _xor(body):
    x = 0
    for c in body:
        x ^= c
    return x


def _nmea(body):
    return b"$" + body.encode() + b"*" + (b"%02X" % _xor(body.encode())) + b"\r\n"


def test_nmea_lines_in_pieces_noise_and_overlong_lines():
    parser = nmea.NMEA()
    stream = b"\x00\xffnoise" + b"$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74\r\n" + \
        b"$" + b"A" * 300 + b"\r\n" + GGA + b"garbage$GPRMC,12" + b"\n" + RMC
    for i in range(0, len(stream), 7):
        parser.feed(stream[i:i + 7])
    assert parser.fix()[4] == _WHEN
    assert parser.good == 2  # GSV is valid but not used: neither good nor bad
    assert parser.bad == 2  # the overlong line and the cut RMC


def test_nmea_lost_fix_other_talkers_and_hemispheres():
    parser = nmea.NMEA()
    parser.feed(_nmea("GNGGA,010203.00,3351.5000,S,15112.6000,W,2,10,0.8,-12.5,M,20.0,M,,"))
    lat, lon, alt = parser.fix()[:3]
    assert _close(lat, -(33 + 51.5 / 60)) and _close(lon, -(151 + 12.6 / 60)) and alt == -12.5
    parser.feed(_nmea("GNRMC,010203.00,A,3351.5000,S,15112.6000,W,0.00,,010100,,,D"))
    assert parser.fix()[4] == 946688523  # 2000-01-01 01:02:03
    parser.feed(_nmea("GNGGA,010204.00,,,,,0,00,99.9,,,,,,"))  # lost
    assert parser.fix() is None
    parser.feed(_nmea("GNGGA,010205.00,3351.5000,S,15112.6000,W,1,05,1.8,-12.0,M,20.0,M,,"))
    assert parser.fix() is not None
    parser.feed(_nmea("GNRMC,010205.00,V,,,,,,,010100,,,N"))  # RMC: void
    assert parser.fix() is None
    parser.feed(_nmea("GNRMC,010206.00,A,3351.5000,S,15112.6000,W,1.5,,291224,,,N"))  # mode N: not valid
    assert parser.fix() is None
    parser.feed(_nmea("GNRMC,235959.99,A,3351.5000,S,15112.6000,W,1.5,,291224,,,A"))
    assert parser.fix()[4] == 1735516799  # 2024-12-29 23:59:59 (fraction dropped)


def test_nmea_poll_reads_the_uart_without_blocking():
    hw = _board()
    part = nmea.make({"uart": 1, "tx": 4, "rx": 5, "baud": 9600})
    uart = hw.uarts[1]
    assert uart.baudrate == 9600 and uart.tx == 4 and uart.rx == 5
    part.poll()  # nothing there: returns at once
    assert part.fix() is None
    uart.receive(GGA + RMC[:20])
    part.poll()
    assert uart.any() == 0 and part.fix()[3] is None
    uart.receive(RMC[20:] + GGA * 3)  # more than one read's worth
    part.poll()
    assert part.fix()[4] == _WHEN and part.good == 5


# --- sim ---------------------------------------------------------------------------------------------

class _Clock:
    def __init__(self, ms=123456):
        self.ms = ms

    def __call__(self):
        return self.ms


def test_sim_sensors_change_every_second_within_their_range():
    for kind, lo, hi in (("t", 16, 26), ("h", 34, 66), ("p", 1004, 1022), ("lux", 0, 770)):
        clock = _Clock()
        part = sim.make({"kind": kind}, clock)
        seen = []
        for _ in range(400):  # more than the 300 s period
            seen.append(part.read())
            clock.ms += 1000
        assert min(seen) >= lo and max(seen) <= hi, (kind, min(seen), max(seen))
        for a, b in zip(seen, seen[1:]):
            assert a != b, kind
        assert max(seen) - min(seen) > (hi - lo) / 2  # the sine shows


def test_sim_sensor_settings_and_reproducibility():
    from lwm2m_mpy._compat import ticks_add

    period = ticks_add(0, -1) + 1  # the port's ticks period (2**30 on boards, larger on 64-bit unix)
    c1, c2 = _Clock(0), _Clock(period - 256)  # the second one wraps around during the test
    a = sim.make({"kind": "t", "mid": 5, "amp": 1, "period": 60, "jitter": 0}, c1)
    b = sim.make({"kind": "t", "mid": 5, "amp": 1, "period": 60, "jitter": 0}, c2)
    for _ in range(70):
        c1.ms += 1000
        c2.ms = ticks_add(c2.ms, 1000)
        assert a.read() == b.read()
    c1.ms += 15000 - 70000 % 60000  # quarter period after a whole one
    assert a.read() == 6.0


def test_sim_env_is_three_sensors_in_one_part():
    clock = _Clock(0)
    env = sim.make({"kind": "env"}, clock)
    samples = []
    for _ in range(5):
        clock.ms += 1000
        samples.append((env.read(), env.read("t"), env.read("h"), env.read("p")))
    for t0, t, h, p in samples:
        assert t0 == t and 16 < t < 26 and 34 < h < 66 and 1004 < p < 1022
    assert len(set(s[2] for s in samples)) == 5
    _raises(ValueError, env.read, "lux")


def test_sim_input_presses_now_and_then():
    clock = _Clock(0)
    button = sim.make({"kind": "in", "every": 3}, clock)
    pressed = []
    for _ in range(120):  # 6 s in 50 ms steps
        pressed.append(button.value())
        clock.ms += 50
    assert pressed[:4] == [True] * 4 and pressed[4] is False  # 0..150 ms pressed, 200 ms released
    assert pressed.count(True) == 8 and pressed[60] is True


def test_sim_output_keeps_state():
    led = sim.make({"kind": "out", "name": "led"})
    assert led.value() is False
    assert led.value(True) is True and led.value() is True
    assert led.duty(30) == 30 and led.value(False) is False and led.duty() == 30


def test_sim_gnss_goes_through_the_nmea_parser():
    clock = _Clock(5000)
    wall = [1735516799]
    gnss = sim.SimGnss(lat=-33.86, lon=151.21, radius=30, period=120, clock=clock, wall=lambda: wall[0])
    assert gnss.fix() is None
    gnss.poll()
    lat, lon, alt, speed, when = gnss.fix()
    assert when == 1735516799 and alt == 35.0
    assert _close(speed, 2 * 3.14159265 * 30 / 120, 0.01)
    assert _close(lat, -33.86 + 30 / 111320, 2e-6) and _close(lon, 151.21, 2e-6)
    gnss.poll()  # within the second: nothing new
    assert gnss.nmea.good == 2
    clock.ms += 30000  # a quarter round later
    wall[0] += 30
    gnss.poll()
    lat2, lon2 = gnss.fix()[:2]
    assert _close(lat2, -33.86, 2e-6) and lon2 > 151.21 + 25 / 111320 / 0.84
    assert gnss.fix()[4] == 1735516829 and gnss.nmea.good == 4 and gnss.nmea.bad == 0
    assert sim.make({"kind": "gnss", "lat": 1, "lon": 2}).fix() is None
