"""Serial ports and the locks on them (`lockctl ports`, `--port auto`).

The ports come from pyserial's `serial.tools.list_ports`. A port is asked
whether a lock answers (one GET_HELLO frame, a short wait) only when its USB
VID:PID is one of our boards' (each `boards/NAME.py` names its `USB_IDS`), or
when the caller says so (`probe_all`): writing a frame to an unknown device
(a modem, a printer, another microcontroller) could make it do something.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from tools import flashing
from tools.client import Installer
from tools.transport import LinkTimeout, TransportError, link_for_url

PROBE_TIMEOUT = 1.5  # seconds for a lock's HELLO; a lock answers in milliseconds


@dataclass
class Port:
    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    board: str | None  # the board whose USB id this is
    probed: bool = False
    lock: bool = False
    lock_id: str | None = None  # "" for a lock not yet commissioned
    problem: str | None = None  # why a probe could not tell (busy, no permission)

    @property
    def usb_id(self) -> str | None:
        return f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None and self.pid is not None \
            else None

    def as_json(self) -> dict[str, Any]:
        return {"device": self.device, "description": self.description, "usb_id": self.usb_id,
                "serial_number": self.serial_number, "board": self.board,
                "probed": self.probed, "lock": self.lock, "lock_id": self.lock_id,
                "problem": self.problem}


def known_usb_ids() -> dict[tuple[int, int], str]:
    """(VID, PID) -> board name, from every board file's USB_IDS."""
    out: dict[tuple[int, int], str] = {}
    for name in flashing.boards():
        module = importlib.import_module(f"boards.{name}")
        for vid, pid in getattr(module, "USB_IDS", ()):
            out[(int(vid), int(pid))] = name
    return out


def comports() -> list[Any]:
    """pyserial's list (a function of its own so that tests can give another)."""
    from serial.tools import list_ports
    return list(list_ports.comports())


def probe(device: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str | None, str | None]:
    """(a lock answered, its lock id, a problem that kept us from knowing)."""
    try:
        with link_for_url(device, timeout=timeout) as link:
            hello = Installer(link, timeout=timeout).hello()
    except LinkTimeout:
        return False, None, None
    except TransportError as exc:
        return False, None, str(exc)
    except Exception:  # noqa: BLE001 - garbage from a device that is not a lock
        return False, None, None
    return True, hello.lock_id, None


def scan(probe_all: bool = False, listing: Callable[[], list[Any]] | None = None,
         prober: Callable[[str], tuple[bool, str | None, str | None]] | None = None
         ) -> list[Port]:
    """Every serial port, the known boards' probed (all of them with probe_all)."""
    ids = known_usb_ids()
    listing = listing or comports
    prober = prober or probe
    out = []
    for info in sorted(listing(), key=lambda i: str(i.device)):
        vid, pid = getattr(info, "vid", None), getattr(info, "pid", None)
        board = ids.get((vid, pid)) if vid is not None and pid is not None else None
        port = Port(str(info.device), str(getattr(info, "description", "") or ""), vid, pid,
                    getattr(info, "serial_number", None), board)
        if board is not None or probe_all:
            port.probed = True
            port.lock, port.lock_id, port.problem = prober(port.device)
        out.append(port)
    return out


class PortChoiceError(Exception):
    """--port auto found no lock, or more than one."""


def the_one_lock(ports: list[Port]) -> Port:
    """The single port where a lock answered, for `--port auto`."""
    locks = [p for p in ports if p.lock]
    if len(locks) == 1:
        return locks[0]
    if locks:
        names = ", ".join(f"{p.device} ({p.lock_id or 'not commissioned'})" for p in locks)
        raise PortChoiceError(f"--port auto: {len(locks)} locks are attached ({names}): "
                              "name one with --port DEV")
    busy = [p for p in ports if p.problem]
    if busy:
        raise PortChoiceError(f"--port auto: no lock answered; {busy[0].device}: "
                              f"{busy[0].problem}")
    unprobed = [p for p in ports if not p.probed]
    hint = (f" ({len(unprobed)} other serial port(s) not tried: see lockctl ports --probe)"
            if unprobed else "")
    raise PortChoiceError(f"--port auto: no lock is attached{hint}")


def the_one_board(ports: list[Port]) -> Port:
    """The single port with one of our boards' USB ids, for `flash --port auto`
    (a board being flashed may have no lock firmware to answer yet)."""
    boards = [p for p in ports if p.board]
    if len(boards) == 1:
        return boards[0]
    if boards:
        names = ", ".join(f"{p.device} ({p.board})" for p in boards)
        raise PortChoiceError(f"--port auto: {len(boards)} boards are attached ({names}): "
                              "name one with --port DEV")
    raise PortChoiceError("--port auto: no board with a known USB id is attached (see "
                          "lockctl ports); name its port with --port DEV")
