# Runs one test module inside MicroPython: `micropython mpy_runner.py path/to/test_x.py`.
# Calls every top-level test_* function (sorted by name: MicroPython dicts have no definition order),
# prints `ok NAME`, `FAIL NAME` + traceback, or `skip NAME` (names listed in the module's MPY_SKIP),
# and exits 1 if anything failed or the module did not import. tests/conftest.py drives this.
import gc
import sys


def _import(path):
    # Import by name from the file's folder; no os.path on MicroPython, so split by hand.
    slash = path.rfind("/")
    folder, name = (path[:slash] or "/", path[slash + 1:]) if slash >= 0 else (".", path)
    if name.endswith(".py"):
        name = name[:-3]
    sys.path.insert(0, folder)
    return __import__(name)


def main(path):
    try:
        module = _import(path)
    except Exception as e:  # an import error is a failure of the whole module, with its traceback
        print("FAIL <import %s>" % path)
        sys.print_exception(e)
        return 1
    skip = getattr(module, "MPY_SKIP", ())
    failed = passed = 0
    for name in sorted(dir(module)):
        test = getattr(module, name)
        if not name.startswith("test_") or not callable(test):
            continue
        if name in skip:
            print("skip", name)
            continue
        gc.collect()  # each test starts from a clean heap, so -X heapsize limits mean the same each time
        try:
            test()
        except Exception as e:
            failed += 1
            print("FAIL", name)
            sys.print_exception(e)
        else:
            passed += 1
            print("ok", name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: micropython mpy_runner.py TEST_FILE")
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
