# Loads test-vector files shared by the CPython and MicroPython test runs.
# Vectors live in tests/vectors/NAME.json; byte strings are written as hex.
import binascii
import json


def _dirname(path):
    i = path.rfind("/")
    return path[:i] if i > 0 else "."


VECTOR_DIR = _dirname(_dirname(__file__)) + "/vectors"


def load(name):
    with open(VECTOR_DIR + "/" + name + ".json") as f:
        return json.load(f)


def unhex(s):
    return binascii.unhexlify(s)


def raises(exc_type, fn, *args):
    """True if fn(*args) raises exc_type; any other exception propagates."""
    try:
        fn(*args)
    except exc_type:
        return True
    return False
