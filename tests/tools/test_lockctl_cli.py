"""lockctl meets its users' habits (issue #15 §3), as mpremote, esptool and gh
users expect: help with an example on every command and help on every option
(checked by walking the parser, so every command added later is held to it),
--version, serial ports listed and the one lock found (a fake port list over
the simulator's real pty), shell completion that bash and zsh load, one JSON
object for an error under --json, colour only where it belongs, and the
site's settings: CLI defaults in site.toml, behaviour through an audited
`site set`."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools import flashing, ports, siteconfig
from tools.lockctl import cli, main
from tools.lockctl.main import build_parser
from tools.simproc import SimulatedLock

LOCKCTL = str(Path(sys.executable).parent / "lockctl")


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
           ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaves(sub, (*path, name))


def test_every_command_has_an_example_and_every_option_help() -> None:
    missing = []
    for path, sub in leaves(build_parser()):
        name = " ".join(path)
        if not (sub.epilog or "").startswith("example:\n  lockctl "):
            missing.append(f"{name}: no example")
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name}: {'/'.join(action.option_strings) or action.dest} "
                               "has no help")
    assert not missing, "\n".join(missing)


def test_choices_are_shown_in_help() -> None:
    p = build_parser()
    commission = dict(leaves(p))[("commission",)].format_help()
    assert "{" + ",".join(cli.DOORS) + "}" in commission and "laundry-room" in cli.DOORS
    assert "{hmac,ed25519}" in commission
    flash = dict(leaves(p))[("flash",)].format_help()
    assert "{" + ",".join(flashing.boards()) + "}" in flash and "pico_w" in flashing.boards()


def test_version_is_the_package_version(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lockctl {metadata.version('nyckelfri-lock')}"


# --- ports ---------------------------------------------------------------------------

@dataclass
class FakePort:
    device: str
    vid: int | None = None
    pid: int | None = None
    description: str = "fake"
    serial_number: str | None = None


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatedLock, Path]]:
    root = tmp_path_factory.mktemp("ports")
    lock = SimulatedLock(root / "lock", ["--serial-link", str(root / "lock.tty")]).start()
    try:
        yield lock, root
    finally:
        lock.stop()


def run(argv: list[str], capsys: Any, monkeypatch: pytest.MonkeyPatch,
        listing: list[FakePort] | None = None) -> tuple[int, str, str]:
    if listing is not None:
        monkeypatch.setattr(ports, "comports", lambda: listing)
    status = main(argv)
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def test_known_board_ids_come_from_the_board_files() -> None:
    assert ports.known_usb_ids() == {(0x303A, 0x1001): "esp32c3_devkit",
                                     (0x2E8A, 0x0005): "pico_w"}


def test_ports_probes_only_known_ids_unless_asked(sim, capsys, monkeypatch) -> None:
    lock, root = sim
    # A pty nobody answers on stands for a device that is not a lock.
    master, slave = os.openpty()
    try:
        other = os.ttyname(slave)
        listing = [FakePort(lock.serial, 0x303A, 0x1001, "USB JTAG/serial debug unit"),
                   FakePort(other, 0x0403, 0x6001, "FT232R USB UART"),
                   FakePort(str(root / "gone"), 0x2E8A, 0x0005, "Board in FS mode")]
        status, out, err = run(["--json", "ports"], capsys, monkeypatch, listing)
        assert status == 0, err
        got = {p["device"]: p for p in json.loads(out)["ports"]}
        assert got[lock.serial]["lock"] is True and got[lock.serial]["board"] == "esp32c3_devkit"
        # (not commissioned, unless the --port auto test below ran first)
        assert got[lock.serial]["lock_id"] in ("", "NT-AUTO")
        assert got[lock.serial]["usb_id"] == "303a:1001"
        assert got[other]["probed"] is False and got[other]["lock"] is False
        assert not _readable(master)  # nothing was written to it...
        assert got[str(root / "gone")]["problem"].endswith("no such serial port")
        status, out, _ = run(["--json", "ports", "--probe"], capsys, monkeypatch, listing)
        got = {p["device"]: p for p in json.loads(out)["ports"]}
        assert got[other]["probed"] is True and got[other]["lock"] is False
        assert _readable(master)  # ...until --probe asked it
        status, out, _ = run(["ports"], capsys, monkeypatch, listing)
        lines = {ln.split()[0]: ln for ln in out.splitlines()[1:] if ln.startswith("/")}
        assert lines[lock.serial].split()[3] == "lock"
        assert "not probed" in lines[other] and "no such serial port" in lines[str(root / "gone")]
        assert "1 port(s) with an unknown USB id were not probed" in out
    finally:
        os.close(master)
        os.close(slave)


def _readable(fd: int) -> bool:
    import select
    return bool(select.select([fd], [], [], 0.05)[0])


def test_port_auto_finds_the_one_lock_and_refuses_otherwise(sim, capsys, monkeypatch,
                                                            tmp_path: Path) -> None:
    lock, root = sim
    monkeypatch.setenv("LOCKCTL_SITE", str(tmp_path / "site"))
    assert main(["site", "init"]) == 0 and main(["client", "add", "C1", "--name", "A"]) == 0
    one = [FakePort(lock.serial, 0x303A, 0x1001), FakePort("/dev/ttyS0")]
    status, out, err = run(["commission", "--port", "auto", "--lock-id", "NT-AUTO", "--client",
                            "C1"], capsys, monkeypatch, one)
    assert status == 0, err
    assert f"--port auto: {lock.serial} (lock not commissioned)" in err
    status, out, err = run(["--json", "lock", "info", "--port", "auto"], capsys, monkeypatch,
                           one)
    assert status == 0, err
    assert json.loads(out)["lock"] == "NT-AUTO"
    assert f"--port auto: {lock.serial} (lock NT-AUTO)" in err
    # The same lock through its link too: two ports with a lock on each.
    two = [FakePort(lock.serial, 0x303A, 0x1001), FakePort(str(root / "lock.tty"), 0x2E8A, 5)]
    status, out, err = run(["--json", "lock", "info", "--port", "auto"], capsys, monkeypatch,
                           two)
    assert status == 1 and "2 locks are attached" in err and "name one with --port" in err
    assert json.loads(out) == {"error": err.strip()[len("lockctl: "):], "exit": 1}
    status, out, err = run(["lock", "info", "--port", "auto"], capsys, monkeypatch,
                           [FakePort("/dev/ttyS0")])
    assert status == 1 and "no lock is attached" in err and "ports --probe" in err


# --- completion ----------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes_commands_options_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "lockctl.bash"
    script.write_text(subprocess.run([LOCKCTL, "completion", "bash"], capture_output=True,
                                     text=True, check=True).stdout)
    probe = (f"source {script}\n"
             "ask() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); "
             "_shtab_lockctl; echo \"${COMPREPLY[*]}\"; }\n"
             "ask lockctl lo\nask lockctl log report --f\nask lockctl commission --door ''\n"
             "ask lockctl completion ''\n")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].split() == ["lock", "log"]
    assert out[1].split() == ["--from", "--format"]
    assert out[2].split() == list(cli.DOORS)
    assert out[3].split() == ["bash", "zsh"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_loads(tmp_path: Path) -> None:
    (tmp_path / "_lockctl").write_text(subprocess.run(
        [LOCKCTL, "completion", "zsh"], capture_output=True, text=True, check=True).stdout)
    p = subprocess.run(["zsh", "-c", f"fpath=({tmp_path} $fpath); autoload -U compinit; "
                        "compinit -u -d " + str(tmp_path / "zcd") + "; print -r -- "
                        "${_comps[lockctl]}"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "_lockctl", p.stderr


def test_completion_needs_a_known_shell(capsys, monkeypatch) -> None:
    status, out, err = run(["completion", "fish"], capsys, monkeypatch)
    assert status == 2 and "invalid choice: 'fish'" in err and out == ""


# --- errors under --json, colour -------------------------------------------------------

def test_json_errors_are_one_object_on_stdout(tmp_path: Path) -> None:
    env = dict(os.environ, LOCKCTL_SITE=str(tmp_path / "nosite"))
    for argv, status in ((["--json", "log", "report", "--client", "C1"], 2),
                         (["log", "verify", "--lock-id", "NT-1", "--json"], 1),
                         (["--json", "site", "set", "--retention-days", "0"], 2)):
        p = subprocess.run([LOCKCTL, *argv], capture_output=True, text=True, env=env)
        assert p.returncode == status, p.stderr
        data = json.loads(p.stdout)  # exactly one JSON document, nothing else
        assert set(data) == {"error", "exit"} and data["exit"] == status
        assert data["error"] and data["error"] in p.stderr
    p = subprocess.run([LOCKCTL, "log", "verify", "--lock-id", "NT-1"], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 1 and p.stdout == ""  # without --json: stderr only


class Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert cli.colour("ok", "green", Tty(True)) == "\x1b[32mok\x1b[0m"
    assert cli.colour("ok", "green", Tty(False)) == "ok"
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli.colour("ok", "green", Tty(True)) == "ok"
    monkeypatch.setenv("NO_COLOR", "")  # empty is unset (no-color.org)
    assert cli.colour("ok", "green", Tty(True)) != "ok"


def test_progress_only_on_a_terminal(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    cli.Output(False).progress("pulling")(1, 2)
    assert capsys.readouterr().err == ""


# --- site.toml and site set --------------------------------------------------------------

@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOCKCTL_SITE", str(tmp_path / "site"))
    monkeypatch.setenv("LOCKCTL_ACTOR", "admin")
    assert main(["site", "init", "--name", "Kommunen"]) == 0
    return tmp_path / "site"


def dump(site: Path) -> list[str]:
    db = sqlite3.connect(site / "registry.sqlite3")
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_site_set_retention_is_an_audited_act(site: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["--json", "site", "set", "--retention-days", "180"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["changed"] == {"retention_days": {"from": 365, "to": 180}}
    db = sqlite3.connect(site / "registry.sqlite3")
    try:
        assert db.execute("SELECT value FROM settings WHERE key = 'retention_days'"
                          ).fetchone()[0] == "180"
        actor, detail = db.execute("SELECT actor, detail FROM audit WHERE action = 'site set'"
                                   ).fetchone()
    finally:
        db.close()
    assert actor == "admin" and json.loads(detail) == {"retention_days": {"from": "365",
                                                                          "to": "180"}}
    before = dump(site)
    assert main(["site", "set", "--retention-days", "180"]) == 0  # the same: no new record
    assert "Nothing changed" in capsys.readouterr().out and dump(site) == before
    for argv in (["--retention-days", "0"], ["--retention-days", "36501"],
                 ["--retention-days", "x"], ["--zone", "Mars/Olympus"], []):
        assert main(["site", "set", *argv]) == 2, argv
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("lockctl")
    assert dump(site) == before


def test_site_toml_bad_files_are_clear_one_line_errors(site: Path, capsys) -> None:
    before = dump(site)
    for text, words in (("language = 'sv'\nlanguage = 'en'\n", "not valid TOML"),
                        ("lang = 'sv'\n", "unknown setting 'lang'"),
                        ("retention_days = 30\n", "change it with lockctl site set "
                                                  "--retention-days"),
                        ("zone = 'Europe/Oslo'\n", "lockctl site set --zone"),
                        ("language = 'fi'\n", "language must be one of sv, en"),
                        ("port = 5\n", "port must be a text"),
                        (b"\xff\xfe".decode("latin-1"), "not")):
        (site / "site.toml").write_text(text, encoding="latin-1")
        status = main(["log", "report", "--client", "C1", "--format", "csv"])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 1 and len(err) == 1 and words in err[0], (text, err)
    assert dump(site) == before


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_site_toml_never_fails_but_with_its_own_error(tmp_path_factory, raw: bytes) -> None:
    d = tmp_path_factory.mktemp("toml")
    (d / "site.toml").write_bytes(raw)
    try:
        cfg = siteconfig.load(d)
    except siteconfig.ConfigError as exc:
        assert str(exc).startswith(str(d / "site.toml"))
    else:
        assert cfg.language in (None, "sv", "en")


def test_site_toml_gives_the_port_and_the_provider(sim, capsys, monkeypatch,
                                                   tmp_path: Path) -> None:
    lock, _ = sim
    site = tmp_path / "site"
    monkeypatch.setenv("LOCKCTL_SITE", str(site))
    assert main(["site", "init"]) == 0
    capsys.readouterr()
    assert main(["lock", "info"]) == 2
    assert "--port: give the lock's serial port" in capsys.readouterr().err
    assert main(["staff", "add", "S1", "--name", "Anna"]) == 2
    assert "or provider in SITE/site.toml" in capsys.readouterr().err
    (site / "site.toml").write_text(f'port = "{lock.serial}"\nprovider = "Kommunen"\n')
    # The lock on that port answered (it belongs to the --port auto test's site, or
    # to none when this test runs alone): the port came from site.toml.
    main(["lock", "info"])
    err = capsys.readouterr().err
    assert "NT-AUTO is not registered in this site" in err or "not commissioned" in err, err
    assert main(["--json", "staff", "add", "S1", "--name", "Anna"]) == 0
    capsys.readouterr()
    assert main(["--json", "staff", "show", "S1"]) == 0
    assert "Kommunen" in capsys.readouterr().out
    # An explicit option wins over the file.
    assert main(["lock", "info", "--port", str(tmp_path / "none")]) == 1
    assert "no such serial port" in capsys.readouterr().err


def test_log_verify_colours_its_verdict_on_a_terminal_only(tmp_path: Path) -> None:
    import report_world
    report_world.build(tmp_path)[0].close()

    def on_a_tty(no_color: str | None) -> bytes:
        env = dict(os.environ, LOCKCTL_SITE=str(tmp_path / "site"), TERM="xterm")
        env.pop("NO_COLOR", None)
        if no_color is not None:
            env["NO_COLOR"] = no_color
        master, slave = os.openpty()
        try:
            p = subprocess.run([LOCKCTL, "log", "verify", "--lock-id", "NT-1"], env=env,
                               stdout=slave, stderr=subprocess.PIPE, timeout=60)
            assert p.returncode == 0, p.stderr
            return os.read(master, 4096)
        finally:
            os.close(master)
            os.close(slave)
    assert b"\x1b[32mComplete from commissioning" in on_a_tty(None)
    assert b"\x1b[" not in on_a_tty("1")
    piped = subprocess.run([LOCKCTL, "log", "verify", "--lock-id", "NT-1"], capture_output=True,
                           env=dict(os.environ, LOCKCTL_SITE=str(tmp_path / "site")))
    assert b"\x1b[" not in piped.stdout and b"Complete from commissioning" in piped.stdout


def test_flash_port_auto_takes_the_one_known_board_without_writing_to_it(
        capsys, monkeypatch, tmp_path: Path) -> None:
    written: list[str] = []
    monkeypatch.setattr(ports, "probe", lambda device: written.append(device) or (
        False, None, None))
    monkeypatch.setenv("LOCKCTL_SITE", str(tmp_path / "site"))
    status, out, err = run(["flash", "--board", "sim", "--port", "auto"], capsys, monkeypatch,
                           [FakePort(str(tmp_path / "gone"), 0x303A, 0x1001),
                            FakePort("/dev/ttyS0")])
    # It chose the board's port (then found it gone), and asked nothing of any port.
    assert status == 1 and f"--port auto: {tmp_path / 'gone'}" in err and written == []
    status, out, err = run(["flash", "--board", "sim", "--port", "auto"], capsys, monkeypatch,
                           [FakePort("/dev/ttyS0")])
    assert status == 1 and "no board with a known USB id is attached" in err
    status, out, err = run(["flash", "--board", "sim", "--port", "auto"], capsys, monkeypatch,
                           [FakePort("/dev/a", 0x303A, 0x1001), FakePort("/dev/b", 0x2E8A, 5)])
    assert status == 1 and "2 boards are attached" in err
