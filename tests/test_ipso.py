"""IPSO objects with behaviour (lwm2m_mpy/objects/ipso.py) on the sans-IO client over real CoAP messages,
with fake parts (docs/boards.md interfaces) and a fake clock: sensor reads in TLV and text, min/max and
their reset, notifications after a poll, a failing sensor answered 5.00 while the client keeps serving,
input debouncing and counting, outputs driven by Writes and read back, refused Writes that change nothing.
Runs under CPython and inside micropython."""
import struct

from lwm2m_mpy.objects import ipso
from test_access import send
from test_observe import CHANGED, CONTENT, CONTENT_FORMAT, GET, POST, PUT, TEXT, TLV, Device, opt

MPY = True
MPY_HEAP = "256k"

NOT_FOUND, BAD_REQUEST, SERVER_ERROR = 132, 128, 160


class FakeSensor:
    """A sensor part: read(q) returns `v`, or raises OSError while `fail` is set."""

    def __init__(self, v):
        self.v = v
        self.fail = False
        self.qs = []

    def read(self, q=None):
        self.qs.append(q)
        if self.fail:
            raise OSError(5)  # EIO: what an I2C read of a device that went away raises
        return self.v


class FakePin:
    """An input or output part: value() reads, value(v) sets; `duty` only on FakePwm."""

    def __init__(self, v=False):
        self.v = v
        self.sets = []

    def value(self, v=None):
        if v is not None:
            self.v = bool(v)
            self.sets.append(self.v)
        return self.v


class FakePwm(FakePin):
    """A dimmable output as drivers/pwm_out.py is: duty(pct) sets the level used while on, value() switches."""

    def __init__(self, v=False):
        FakePin.__init__(self, v)
        self.duties = []

    def duty(self, pct):
        self.duties.append(pct)


def text(d, path):
    r = d.ask(GET, path, accept=TEXT)
    assert r.code == CONTENT, (path, r.code)
    return bytes(r.payload()).decode()


def write(d, path, payload, cf=TEXT):
    """A Write (PUT) from the server; returns the decoded response."""
    return send(d, PUT, path, cf, payload)


def sensor(oid=3303, v=21.5, **cfg):
    d = Device()
    part = FakeSensor(v)
    return d, part, ipso.make(d.c, oid, 0, part, cfg)


# --- sensors ---------------------------------------------------------------------------------------

def test_sensor_value_reads_live_in_tlv_and_text():
    d, part, _ = sensor(q="t")
    r = d.ask(GET, "/3303/0/5700", accept=TLV)
    assert r.code == CONTENT and int.from_bytes(opt(r, CONTENT_FORMAT), "big") == TLV
    # TLV resource 5700 = 0x1644: type 0b11 (resource) | 0x20 (16-bit id) | length 4 = 0xE4; 21.5 as float32
    assert bytes(r.payload()) == b"\xe4\x16\x44" + struct.pack(">f", 21.5) == b"\xe4\x16\x44\x41\xac\x00\x00"
    part.v = 22.25
    assert text(d, "/3303/0/5700") == "22.25"  # read from the part at the request, not a stale sample
    assert text(d, "/3303/0/5701") == "Cel"
    assert part.qs and all(q == "t" for q in part.qs)


def test_units_default_per_object_and_from_cfg_and_analog_input_uses_5600():
    for oid, units in ((3304, "%RH"), (3315, "hPa"), (3301, "lx")):
        d, _, _ = sensor(oid)
        assert text(d, "/%d/0/5701" % oid) == units
    d, _, _ = sensor(3303, units="K", app="outside")
    assert text(d, "/3303/0/5701") == "K" and text(d, "/3303/0/5750") == "outside"
    d, part, inst = sensor(3202, v=1.5)
    assert text(d, "/3202/0/5600") == "1.5"
    assert d.ask(GET, "/3202/0/5701").code == NOT_FOUND  # Analog Input has no units resource
    inst.poll(0)
    assert text(d, "/3202/0/5601") == "1.5"


def test_range_only_when_given():
    d, _, _ = sensor()
    assert d.ask(GET, "/3303/0/5603").code == NOT_FOUND
    d, _, _ = sensor(lo=-40, hi=85)
    assert text(d, "/3303/0/5603") == "-40.0" and text(d, "/3303/0/5604") == "85.0"


def test_min_max_follow_samples_and_reads_and_5605_resets_them_to_the_current_value():
    d, part, inst = sensor(v=20.0)
    t = 0
    for v in (20.0, 25.0, 18.0, 19.0):
        part.v = v
        inst.poll(t)
        t += 5000
    assert text(d, "/3303/0/5601") == "18.0" and text(d, "/3303/0/5602") == "25.0"
    part.v = 30.0
    assert text(d, "/3303/0/5700") == "30.0"  # a server read is a measurement too
    assert text(d, "/3303/0/5602") == "30.0"
    assert d.ask(POST, "/3303/0/5605").code == CHANGED
    assert text(d, "/3303/0/5601") == "30.0" and text(d, "/3303/0/5602") == "30.0"
    r = d.ask(GET, "/3303/0", accept=TLV)  # the instance in TLV: every present resource, min/max included
    assert r.code == CONTENT and b"\xe4\x15\xe2" + struct.pack(">f", 30.0) in bytes(r.payload())


def test_sampling_period_from_every():
    d, part, inst = sensor(every=2)
    assert inst.poll(1000) == 2000  # the first poll samples at once
    assert inst.poll(1500) == 1500
    part.v = 23.0
    assert inst.poll(3000) == 2000
    assert text(d, "/3303/0/5602") == "23.0"


def test_observe_notifies_a_changed_sample_after_poll_only_when_it_changed():
    d, part, inst = sensor(v=20.0)
    inst.poll(d.t)
    first = d.observe("/3303/0/5700")
    assert bytes(first.payload()) == b"20.0"
    d.observe("/3303/0/5602", token=b"\x02")
    assert d.run(1000) == []
    inst.poll(d.t + 5000)
    assert d.run(6000) == []  # the same value: nothing to say
    part.v = 22.0
    inst.poll(d.t + 5000)
    got = d.run(11000)
    assert sorted((m.token(), bytes(m.payload())) for _, m in got) == [(2, b"22.0"), (0xAA, b"22.0")]


def test_failing_sensor_answers_5_00_logs_once_per_streak_and_the_client_keeps_serving():
    d, part, inst = sensor()
    part.fail = True
    r = d.ask(GET, "/3303/0/5700")
    assert r.code == SERVER_ERROR and b"not answering" in bytes(r.payload())
    n = len(d.logs)
    for t in range(0, 30000, 5000):
        inst.poll(t)
    assert len([m for m in d.logs[n:] if "not answering" in m]) == 1
    assert d.ask(GET, "/3/0/0").code == CONTENT  # the rest of the device answers
    assert d.ask(GET, "/3303/0/5701").code == CONTENT
    part.fail = False
    inst.poll(30000)
    assert any("answers again" in m for m in d.logs[n:])
    assert text(d, "/3303/0/5700") == "21.5"
    part.fail = True
    inst.poll(35000)
    assert len([m for m in d.logs[n:] if "not answering" in m]) == 2  # a new streak is logged again


# --- inputs ----------------------------------------------------------------------------------------

def test_input_debounce_counter_and_counter_reset():
    d = Device()
    pin = FakePin(False)
    inst = ipso.make(d.c, 3200, 0, pin, {"debounce": 30})
    assert text(d, "/3200/0/5500") == "0" and text(d, "/3200/0/5501") == "0"
    d.observe("/3200/0/5500")
    assert inst.poll(0) == 50
    pin.v = True
    assert inst.poll(100) == 30  # changed: look again when it has been stable for 30 ms
    pin.v = False  # a bounce shorter than the debounce period
    inst.poll(120)
    inst.poll(170)
    assert text(d, "/3200/0/5500") == "0" and text(d, "/3200/0/5501") == "0"
    assert d.run(200) == []
    pin.v = True
    inst.poll(200)
    assert inst.poll(220) == 10
    assert text(d, "/3200/0/5500") == "0"
    inst.poll(230)  # stable for 30 ms: accepted, a rising edge counted
    assert text(d, "/3200/0/5500") == "1" and text(d, "/3200/0/5501") == "1"
    assert d.values(d.run(300)) == [(300, "1")]
    for t, v in ((400, False), (500, True), (600, False)):  # falling edges are not counted by default
        pin.v = v
        inst.poll(t)
        inst.poll(t + 50)
    assert text(d, "/3200/0/5501") == "2"
    assert d.ask(POST, "/3200/0/5505").code == CHANGED
    assert text(d, "/3200/0/5501") == "0"


def test_digital_input_settings_polarity_debounce_and_edges():
    d = Device()
    pin = FakePin(False)
    inst = ipso.make(d.c, 3200, 0, pin, {})
    assert text(d, "/3200/0/5503") == "30" and text(d, "/3200/0/5504") == "2"
    assert write(d, "/3200/0/5504", b"4").code == BAD_REQUEST  # range 1..3
    assert text(d, "/3200/0/5504") == "2"
    assert write(d, "/3200/0/5504", b"3").code == CHANGED  # both edges
    assert write(d, "/3200/0/5503", b"0").code == CHANGED  # no debouncing
    assert write(d, "/3200/0/5502", b"1").code == CHANGED  # reversed: a low pin is active
    inst.poll(0)
    assert text(d, "/3200/0/5500") == "1" and text(d, "/3200/0/5501") == "1"
    pin.v = True
    inst.poll(10)
    assert text(d, "/3200/0/5500") == "0" and text(d, "/3200/0/5501") == "2"


def test_push_button_counts_presses():
    d = Device()
    pin = FakePin(False)
    inst = ipso.make(d.c, 3347, 0, pin, {"app": "doorbell"})
    t = 0
    for _ in range(3):
        pin.v = True
        inst.poll(t)
        inst.poll(t + 50)
        pin.v = False
        inst.poll(t + 100)
        inst.poll(t + 150)
        t += 1000
    assert text(d, "/3347/0/5501") == "3" and text(d, "/3347/0/5750") == "doorbell"
    assert d.ask(GET, "/3347/0/5502").code == NOT_FOUND  # not a resource of the push button


def test_switch_on_and_off_time_and_writing_them():
    d = Device()
    pin = FakePin(False)
    inst = ipso.make(d.c, 3342, 0, pin, {})
    inst.poll(10)  # made at 10 ms, the client's clock then (the registration answer came at 10)
    inst.poll(4010)
    assert text(d, "/3342/0/5854") == "4" and text(d, "/3342/0/5852") == "0"
    pin.v = True
    inst.poll(5000)
    inst.poll(5050)
    inst.poll(12050)
    assert text(d, "/3342/0/5852") == "7" and text(d, "/3342/0/5854") == "0"
    assert write(d, "/3342/0/5852", b"0").code == CHANGED  # "Writing a value of 0 resets the counter"
    assert text(d, "/3342/0/5852") == "0"
    inst.poll(15050)
    assert text(d, "/3342/0/5852") == "3"
    assert write(d, "/3342/0/5852", b"-1").code == BAD_REQUEST
    assert text(d, "/3342/0/5852") == "3"


# --- outputs ---------------------------------------------------------------------------------------

def test_digital_output_write_drives_the_pin_and_reads_back():
    d = Device()
    pin = FakePin(False)
    ipso.make(d.c, 3201, 0, pin, {"app": "LED"})
    assert text(d, "/3201/0/5550") == "0"
    assert write(d, "/3201/0/5550", b"1").code == CHANGED
    assert pin.v is True and text(d, "/3201/0/5550") == "1"
    pin.v = False  # something else turned the pin off: the resource says so
    assert text(d, "/3201/0/5550") == "0"
    tlv = b"\xc1\x00\xe1\x15\xae\x01"  # hand-built TLV: 5550 (0x15AE) = true, one-byte Boolean
    assert write(d, "/3201/0/5550", tlv[2:], cf=TLV).code == CHANGED and pin.v is True
    assert write(d, "/3201/0/5551", b"1").code == CHANGED  # reversed polarity: the pin flips, the state stays
    assert pin.v is False and text(d, "/3201/0/5550") == "1"
    r = d.ask(GET, "/3201/0", accept=TLV)
    assert r.code == CONTENT and b"\xe1\x15\xae\x01" in bytes(r.payload())


def test_out_of_range_writes_answer_4_00_and_change_nothing():
    d = Device()
    pwm = FakePwm(False)
    ipso.make(d.c, 3311, 0, pwm, {"dim": 40})
    assert pwm.duties == [40] and pwm.v is False  # the level from the start, still off
    assert write(d, "/3311/0/5850", b"1").code == CHANGED
    assert pwm.v is True and pwm.duties[-1] == 40
    calls = (len(pwm.duties), len(pwm.sets))
    for path, payload in (("/3311/0/5851", b"150"), ("/3311/0/5851", b"-1"), ("/3311/0/5852", b"-5")):
        r = write(d, path, payload)
        assert r.code == BAD_REQUEST and b"out of range" in bytes(r.payload()), (path, payload)
    assert text(d, "/3311/0/5851") == "40" and text(d, "/3311/0/5852") == "0"
    assert (len(pwm.duties), len(pwm.sets)) == calls  # the part was not touched
    assert write(d, "/3311/0/5851", b"75").code == CHANGED
    assert pwm.duties[-1] == 75 and pwm.v is True and text(d, "/3311/0/5851") == "75"


def test_light_on_time_and_energy_from_watts_and_dimmer():
    d = Device()
    pwm = FakePwm(False)
    inst = ipso.make(d.c, 3311, 0, pwm, {"watts": 10, "dim": 50, "colour": "warm white", "pf": 0.9})
    assert text(d, "/3311/0/5701") == "Wh" and text(d, "/3311/0/5706") == "warm white"
    assert text(d, "/3311/0/5820") == "0.9"
    write(d, "/3311/0/5850", b"1")
    d.t += 3600000  # one hour at 50 % of 10 W: 5 Wh
    inst.poll(d.t)
    assert text(d, "/3311/0/5852") == "3600" and text(d, "/3311/0/5805") == "5.0"
    write(d, "/3311/0/5851", b"100")
    d.t += 1800000  # half an hour at 10 W: 5 Wh more
    write(d, "/3311/0/5850", b"0")
    assert pwm.v is False and pwm.sets[-1] is False
    d.t += 600000  # off: nothing counts
    assert text(d, "/3311/0/5852") == "5400" and text(d, "/3311/0/5805") == "10.0"
    assert text(d, "/3311/0/5850") == "0"
    assert write(d, "/3311/0/5852", b"0").code == CHANGED
    assert text(d, "/3311/0/5852") == "0"


def test_actuation_on_off_dimmer_and_multi_state_output():
    d = Device()
    pin = FakePin(False)  # no duty(): on/off only
    ipso.make(d.c, 3306, 0, pin, {"app": "heater"})
    assert write(d, "/3306/0/5850", b"1").code == CHANGED and pin.v is True
    assert write(d, "/3306/0/5853", b"comfort").code == CHANGED
    assert text(d, "/3306/0/5853") == "comfort" and text(d, "/3306/0/5750") == "heater"
    d.t += 2500
    assert text(d, "/3306/0/5852") == "2"
    assert write(d, "/3306/0/5851", b"101").code == BAD_REQUEST and text(d, "/3306/0/5851") == "100"
    assert d.ask(GET, "/3306/0/5805").code == 132  # energy is a Light Control resource only


def test_unknown_object_is_refused():
    d = Device()
    try:
        ipso.make(d.c, 3, 1, None, {})
    except ValueError:
        return
    raise AssertionError("object 3 has no IPSO behaviour")
