# Fake `micropython` (CPython only; MicroPython has the real one).
kbd_intr_calls = []


def const(x):
    return x


def kbd_intr(chr):
    kbd_intr_calls.append(chr)
