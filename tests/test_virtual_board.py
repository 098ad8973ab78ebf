"""The virtual board: flashed with mpremote (simulator.virtualboard.deploy, the
code path of `lockctl flash`), then commissioned and opened through its serial
pty and BLE socket; deploys cut half-way, by killing mpremote or the board,
leave a board that boots (its old firmware, or an empty REPL before the first
deploy) and can be flashed again.

The tests share one board (one state directory) and run in order.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_on_micropython import MPY, NOT_INSTALLED

from simlock import SimulatedLock, Site, open_with
from simulator.mpyhost import in_process_runner
from simulator.virtualboard import DeployError, deploy, mpremote_command
from tools.client import ClientError, read_hello
from tools.transport import TransportError

LOCK = "lock-vb01"

pytestmark = [
    pytest.mark.micropython,
    pytest.mark.skipif(MPY is None or not in_process_runner(), reason=NOT_INSTALLED),
]


class Board:
    """One virtual board process on a state directory; restartable."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.sim: SimulatedLock | None = None

    def start(self) -> SimulatedLock:
        self.sim = SimulatedLock(self.state, extra_args=["--virtual-board"]).start()
        return self.sim

    def kill(self) -> None:
        """Pull the plug: the board process dies at once (SIGKILL)."""
        assert self.sim is not None and self.sim.proc is not None
        self.sim.proc.kill()

    def stop(self) -> None:
        if self.sim is not None:
            if self.sim.proc is not None and self.sim.proc.poll() is not None:
                self.sim.proc.wait()
                self.sim.proc = None
            self.sim.stop()
            self.sim = None

    def restart(self) -> SimulatedLock:
        self.stop()
        return self.start()


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    b = Board(tmp_path_factory.mktemp("vboard") / "state")
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def site() -> Site:
    return Site()


def repl(port: str, code: str) -> str:
    """Run code on the board through mpremote (its REPL)."""
    proc = subprocess.run(mpremote_command() + ["connect", port, "exec", code],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def lock_answers_on_ble(sim: SimulatedLock) -> str | None:
    """The lock id a BLE central is greeted with; None if no lock runs."""
    try:
        with sim.ble_link() as link:
            return read_hello(link, timeout=2.0).lock_id
    except (TransportError, ClientError):
        return None


def cut_deploy(board: Board, how: str) -> None:
    """Start a deploy and cut it once half the files are on the board."""
    sim = board.sim
    assert sim is not None

    class Cut(Exception):
        pass

    def progress(done: int, total: int, path: str) -> None:
        if done == total // 2:
            if how == "board":
                board.kill()
            else:
                raise Cut  # deploy() kills mpremote on the way out

    with pytest.raises((DeployError, Cut)):
        deploy(sim.serial, "sim", progress=progress)


def test_an_empty_board_has_a_repl_and_no_lock(board: Board) -> None:
    sim = board.sim
    assert sim is not None
    assert "hello from the board" in repl(sim.serial, "print('hello from the board')")
    assert lock_answers_on_ble(sim) is None


def test_first_deploy_cut_leaves_an_empty_board_that_flashes_and_opens(
        board: Board, site: Site) -> None:
    cut_deploy(board, "board")
    sim = board.restart()
    # Nothing was committed: the board boots into its REPL, no lock runs.
    assert lock_answers_on_ble(sim) is None
    assert "None" in repl(sim.serial, "import os\ntry:\n os.stat('/boot.sel')\n"
                          "except OSError:\n print(None)")
    seen: list[int] = []
    result = deploy(sim.serial, "sim", progress=lambda d, t, p: seen.append(d))
    assert seen == list(range(1, result["files"] + 1))
    assert result["hello"] is not None and result["hello"][1] == ""  # uncommissioned
    site.commission(sim, LOCK)
    out = open_with(sim, site.grant(LOCK, "staff-vb"))
    assert out.opened, out.reason_name


@pytest.mark.parametrize("how", ["mpremote", "board"])
def test_deploy_cut_half_way_keeps_the_old_firmware_and_flashes_again(
        board: Board, site: Site, how: str) -> None:
    cut_deploy(board, how)
    sim = board.restart()  # a power cycle (a board left mid-transfer needs one too)
    assert lock_answers_on_ble(sim) == LOCK  # the old firmware, still commissioned
    assert open_with(sim, site.grant(LOCK, f"staff-{how}")).opened
    result = deploy(sim.serial, "sim")  # mpremote gets the REPL back from the lock
    assert result["hello"] is not None and result["hello"][1] == LOCK
    out = open_with(sim, site.grant(LOCK, f"staff-{how}-2"))
    assert out.opened, out.reason_name
    slots = repl(sim.serial, "import os\nprint(sorted(n for n in os.listdir('/')"
                             " if n.startswith('lockfw.')))")
    assert "lockfw.new" not in slots  # the cut deploy's leftovers are gone
