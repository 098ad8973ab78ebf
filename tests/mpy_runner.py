# A small test runner for the MicroPython unix port (pytest does not run there).
# Usage: micropython -X heapsize=96K tests/mpy_runner.py tests/portable/test_x.py
# Runs every function named test_* in the module and ends with the plain line
# "N passed, M failed". Exit status 1 if anything failed.
import gc
import sys

# The lock's collection policy (firmware/main.py tune_gc), so the tests meet
# the heap as the lock does; not imported from there, to keep the firmware
# package out of the protocol tests' heap.
gc.threshold((gc.mem_free() + gc.mem_alloc()) // 16)


def _dirname(path):
    i = path.rfind("/")
    return path[:i] if i > 0 else "."


def main():
    here = _dirname(__file__)
    root = _dirname(here)
    sys.path.insert(0, root)
    sys.path.insert(0, here + "/portable")
    if len(sys.argv) < 2:
        print("usage: mpy_runner.py tests/portable/test_x.py [test_name ...]")
        sys.exit(2)
    name = sys.argv[1].rsplit("/", 1)[-1]
    if name.endswith(".py"):
        name = name[:-3]
    only = sys.argv[2:]
    module = __import__(name)
    passed = failed = 0
    for attr in sorted(dir(module)):
        if not attr.startswith("test_"):
            continue
        if only and attr not in only:
            continue
        fn = getattr(module, attr)
        if not callable(fn):
            continue
        gc.collect()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print("FAIL", name + "." + attr)
            sys.print_exception(exc)
        else:
            passed += 1
            print("ok  ", name + "." + attr)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()
