"""`lockctl flash` onto the simulator's virtual board (an empty MicroPython
board behind a pty), then `lockctl commission` and `lockctl open` against the
firmware it deployed: the installer's whole path, without hardware."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_lockctl import Site, shift
from test_on_micropython import MPY, NOT_INSTALLED

from mpybuild import in_process_runner
from tools import flashing
from tools.simproc import SimulatedLock

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(MPY is None or not in_process_runner(), reason=NOT_INSTALLED),
]


def test_flash_then_commission_and_open(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.ok("site", "init", "--name", "Flash test")
    site.ok("staff", "add", "S1", "--name", "Anna Berg", "--provider", "Kommunen")
    site.ok("client", "add", "C1", "--name", "Astrid Lindqvist", "--providers", "Kommunen")
    board = SimulatedLock(tmp_path / "board", ["--virtual-board"]).start()
    try:
        # An empty board: nothing answers the lock protocol yet.
        empty = site.run("lock", "info", "--port", board.serial)
        assert empty.returncode == 1
        flashed = json.loads(site.ok("--json", "flash", "--board", "sim", "--port",
                                     board.serial))
        assert flashed == {"board": "sim", "port": board.serial}
        site.ok("commission", "--port", board.serial, "--lock-id", "VB-1", "--client", "C1")
        device = shift(site, "S1", "anna.grant", -0.5, 4)
        opened = site.run("open", "--device", device, "--lock-id", "VB-1", "--ble", board.ble)
        assert opened.returncode == 0, opened.stdout + opened.stderr
        assert "opened" in opened.stdout
        db_acts = site.dump()
        assert any("'flash'" in line for line in db_acts)
    finally:
        board.stop()


def test_flash_refuses_an_unknown_board(tmp_path: Path) -> None:
    site = Site(tmp_path)
    p = site.run("flash", "--board", "no-such-board", "--port", "/dev/null")
    assert p.returncode == 2
    # argparse's choices (shown in --help too), named from the board files.
    known = ", ".join(f"'{b}'" for b in flashing.boards())
    assert "'esp32c3_devkit'" in known and "'pico_w'" in known and "'sim'" in known
    assert p.stderr.strip().splitlines()[-1] == (
        "lockctl flash: error: argument --board: invalid choice: 'no-such-board' (choose "
        f"from {known})"), p.stderr
