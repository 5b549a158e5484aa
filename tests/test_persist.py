"""Stored configuration (core/persist.py): objects 0 and 1 saved atomically and read back; a corrupt,
truncated or foreign file leaves the factory configuration with a log line, never an exception.
Runs under CPython and inside micropython."""
import os

from lwm2m_mpy import Client

MPY = True


class Link:
    def send(self, buf, n):
        pass

    def close(self):
        pass


def _path():
    return "/tmp/lwm2m_mpy_state_%s.json" % "".join("%02x" % b for b in os.urandom(6))


def _client(state, logs=None):
    return Client("ep", "coaps://127.0.0.1:5684", transport=Link(), log=(logs.append if logs is not None else None),
                  psk=(b"dev-1", b"\x00\x01secret"), state=state)


def _gone(path):
    for p in (path, path + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass


def test_a_change_to_the_server_object_is_kept_and_read_back():
    path = _path()
    try:
        c = _client(path)
        c.set("/1/0/1", 120)  # set() is the app's: not saved by itself
        c._changed(1, 0, 1)  # what a server's Write does after storing the value
        assert "lwm2m_mpy_state" in path and os.stat(path)[6] > 0
        try:
            os.stat(path + ".tmp")
            assert False, "the temporary file is left behind"
        except OSError:
            pass
        logs = []
        d = _client(path, logs)
        assert d.objs[1].inst[0][1] == 120
        assert d.objs[0].inst[0][3] == b"dev-1" and d.objs[0].inst[0][5] == b"\x00\x01secret"
        assert d.objs[0].inst[0][2] == 0 and d.objs[0].inst[0][0] == "coaps://127.0.0.1:5684"
        assert logs[0] == "configuration from %s" % path
    finally:
        _gone(path)


def test_created_server_instance_survives():
    path = _path()
    try:
        c = _client(path)
        c.add(c.objs[1].t, 1, {0: 2, 1: 60, 7: "U", 6: False})  # a second server account
        d = _client(path)
        assert d.objs[1].inst[1] == {0: 2, 1: 60, 7: "U", 6: False}
    finally:
        _gone(path)


def test_bad_files_fall_back_to_the_factory_configuration():
    path = _path()
    try:
        _client(path)._changed(1, 0, 1)
        with open(path) as f:
            good = f.read()
        for bad in (good[: len(good) // 2], "", "[]", '{"lwm2m_mpy": 2, "objects": {}}',
                    good.replace('"1": {"0": {', '"7": {"0": {'), good.replace('"lwm2m_mpy": 1', '"other": 1'),
                    '{"lwm2m_mpy": 1, "objects": {"0": {}, "1": {}}}', "\xff\xfe garbage"):
            with open(path, "w") as f:
                f.write(bad)
            logs = []
            c = _client(path, logs)
            assert c.objs[1].inst[0][1] == 300, bad  # the factory lifetime
            assert logs and "unreadable" in logs[0] and "factory configuration" in logs[0], (bad, logs)
    finally:
        _gone(path)


def test_no_file_is_the_first_start():
    path = _path()
    logs = []
    c = _client(path, logs)
    assert c.objs[1].inst[0][1] == 300 and not any("unreadable" in line for line in logs)
    _gone(path)
