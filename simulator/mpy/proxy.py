# The firmware's side of the simulator's HAL boundary (MicroPython code): the
# hardware of the unix-port board lives in the parent process
# (simulator/mpyport.py is the other side), reached over loopback TCP.
#
# Calls. One blocking connection, one line each way: "NAME ARGS" where ARGS
# is a JSON list, answered by a JSON value, or by "?" and a reason for a call
# the board refused (raised here as ValueError, as the board's model raised
# it). `bind(cls)` gives a HAL class a method for every name in
# firmware.hal.BOARD_CALLS that the class does not define itself: the HAL
# declares them once, and neither side repeats them. PORT_CALLS are the
# port's own calls (not HAL methods): the board's dispatcher takes the same
# names.
# Before an answer the board may send directive lines ("!cut N MODE SEED",
# "!timings {...}", "!heap", "!stop"), handed to `on_directive`; a call made
# with defer=True (from inside a flash operation) keeps them for the next call,
# so a directive never acts in the middle of a flash write.
#
# Events. A second connection, read with asyncio: one line per event from the
# hardware, "EVENT VALUE" (a sensor edge: "door 1", "button 0"), or "wake"
# (directives are waiting: a call fetches them, so a firmware that makes no
# call for a while still gets its "!stop" at once). `EventStream.next()`
# returns the next sensor event as (name, value).
import json
import socket
import sys
import time

from simulator.mpy.flash import PowerCut
from simulator.mpy.portcalls import PORT_CALLS  # noqa: F401  (the board's dispatcher takes them)

HOST = "127.0.0.1"


def connect(port, kind, token):
    s = socket.socket()
    s.connect(socket.getaddrinfo(HOST, port)[0][-1])
    s.write(("%s %s\n" % (kind, token)).encode())
    return s


class Control:
    """The blocking call line to the board around the interpreter."""

    def __init__(self, port, token, on_directive=None):
        self.sock = connect(port, "control", token)
        self.on_directive = on_directive
        self.dead = False
        self.held = []  # directives that came during a deferred call
        if self.sock.readline().strip() != b"ok":
            self.dead = True
            raise PowerCut("the board refused this boot")

    def call(self, name, args=(), defer=False):
        if self.dead:
            raise PowerCut("the board is off")
        try:
            self.sock.write((name + " " + json.dumps(args) + "\n").encode())
            answer = self.sock.readline()
            while answer.startswith(b"!"):
                self.held.append(answer[1:].strip().decode())
                answer = self.sock.readline()
        except OSError:
            answer = b""
        if not answer:
            # The board (the parent) has gone: so has the power.
            self.dead = True
            raise PowerCut("the board is off")
        if not defer:
            while self.held and self.on_directive is not None:
                self.on_directive(self.held.pop(0))
        answer = answer.strip().decode()
        if answer.startswith("?"):
            raise ValueError(answer[1:].strip() or name)
        return json.loads(answer)

    def last_words(self, name):
        """Tell the parent to end this process (reset, power cut) and wait for it."""
        try:
            self.call(name, (), defer=True)
            time.sleep(5)
        except PowerCut:
            pass
        self.dead = True
        sys.exit(3)


def _remote(name):
    def call(self, *args):
        return self.control.call(name, args)

    return call


def bind(cls):
    """Give `cls` a proxy method for each board call it does not define."""
    # Imported here: the virtual board's boot (vboard.py) uses this module
    # before any firmware is deployed.
    from firmware import hal as hal_mod

    for name in hal_mod.BOARD_CALLS:
        if getattr(cls, name) is getattr(hal_mod.HAL, name):
            setattr(cls, name, _remote(name))
    return cls


class EventStream:
    """The events the hardware sends (see the top of this file). `local`
    holds events of this side (a directive's: new timings), returned first;
    `after_poll` runs after each "wake" has fetched the directives."""

    def __init__(self, port, token, control, after_poll=None):
        self.port = port
        self.token = token
        self.control = control
        self.after_poll = after_poll
        self.local = []
        self.reader = None

    async def next(self):
        import asyncio

        if self.reader is None:
            reader, writer = await asyncio.open_connection(HOST, self.port)
            writer.write(("events %s\n" % self.token).encode())
            await writer.drain()
            self.reader = reader
        while True:
            if self.local:
                return self.local.pop(0)
            line = await self.reader.readline()
            if not line:
                # The board has gone: so has the power. Nothing more comes.
                self.control.dead = True
                raise PowerCut("the board is off")
            what, _, value = line.decode().strip().partition(" ")
            if what == "wake":
                self.control.call("poll")  # its answer brings the directives
                if self.after_poll is not None:
                    self.after_poll()
            elif what:
                return what, value == "1"
