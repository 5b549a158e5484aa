"""`make run`'s script (tools/run_demo.sh) as a hobbyist sees it: the bundled server and the unix-profile client
on the compiled tree; the device registers, /3/0 is read and printed by name, the simulated temperature and
button notify, Ctrl-C de-registers and stops both. Loopback only, bounded in time."""
import os
import re
import signal
import subprocess
import threading
import time

from e2e_helpers import ROOT, ensure_mpy_tree


def test_make_run_demo_registers_is_read_notifies_and_deregisters(free_udp_port):
    ensure_mpy_tree()
    env = dict(os.environ, PORT=str(free_udp_port()), ENDPOINT="demo-test")
    proc = subprocess.Popen(["bash", "tools/run_demo.sh"], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def seen(regex):
        return any(re.search(regex, line) for line in list(lines))

    wanted = (r"lwm2m: registered /rd/", r"^  /3/0/0 Manufacturer = lwm2m_mpy",
              r"notify ep=demo-test /3303/0/5700 Sensor Value = \d+\.\d+", r"notify ep=demo-test /3347/0/5501 ")
    try:
        deadline = time.monotonic() + 40
        while not all(seen(w) for w in wanted) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert all(seen(w) for w in wanted), "".join(lines)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: the whole group
        proc.wait(15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    reader.join(5)
    out = "".join(lines)
    assert "lwm2m: deregistered" in out and "Traceback" not in out, out
