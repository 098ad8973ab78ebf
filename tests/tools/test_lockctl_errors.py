"""lockctl on bad input and in bad places: one line on stderr, the right exit
status (1 refused or failed, 2 usage, 130 interrupted), never a traceback, and
the site registry exactly as it was.

Most cases run in-process through tools.lockctl.main(argv), against a site whose
lock is only a registry row (nothing here needs a lock to answer); those that
depend on a real terminal, on signals or on file permissions run lockctl as a
subprocess.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pty
import select
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tools import device, flashing, keyfile, lockctl
from tools.lockctl import log_cmds
from tools.site import Site

LOCKCTL = str(Path(sys.executable).parent / "lockctl")
ZONE = ZoneInfo("Europe/Stockholm")
PIN = "246813"  # the personal code: at least 6 digits
# The cheapest sealing the format allows: these tests load and open keys
# hundreds of times, and the KDF's cost is not what they test (its parameters
# travel in the sealed key).
CHEAP = {"alg": "argon2id", "time_cost": 1, "memory_cost": 8, "parallelism": 1}
TRACEBACK = "Traceback (most recent call last)"
NOBODY = 65534  # an unprivileged uid and gid: permission bits bind it, unlike root


def local(dt: datetime) -> str:
    return dt.astimezone(ZONE).replace(tzinfo=None).isoformat(timespec="minutes")


def dump(site: Path) -> list[str]:
    db = sqlite3.connect(site / "registry.sqlite3")
    try:
        return list(db.iterdump())
    finally:
        db.close()


class World:
    """A site with one client, two staff members, one lock (a registry row);
    S1's enrolled device (anna-phone) with a grant for that lock loaded on it
    (anna.grant, which may be loaded again), and a device nobody enrolled yet
    (spare-phone), in `root`, which is also the working directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = root / "site"
        site = Site.init(self.site, "Testkommun", actor="test")
        site.add_staff("test", "S1", "Anna Berg", "Kommunen")
        site.add_staff("test", "S3", "Cecilia Ek", "Kommunen")
        site.add_client("test", "C1", "Astrid Lindqvist", providers=["Kommunen"])
        site.add_property("test", "P-1", "Storgatan 4", "Brf Storgatan")
        reg = site.registry
        reg.add_lock("NT-1", "apartment", "hmac", ["C1"], int(time.time()))
        now = int(time.time())
        self.device = root / "anna-phone"
        dev = device.Device.init(self.device)
        self.fingerprint = site.enrol_device("test", "S1", dev.public, dev.fingerprint)
        data, grants, _ = site.issue_shift("test", "S1", ["C1"], now - 600, now + 3600,
                                           "open log", False, now)
        self.token = grants[0].cti.hex()
        # Care operations: a unit, a booking, a night patrol of a provider
        # named for alarms with an enrolled device.
        site.add_unit("test", "U1", "Kommunen")
        site.add_unit("test", "U2", "Kommunen")
        self.booking = site.add_booking("test", "S3", "U2", now, now + 86400)
        site.update_provider("test", "Kommunen", alarms=True)
        site.add_staff("test", "S4", "Nils Holm", "Kommunen", role="night-patrol")
        patrol = device.Device.init(root / "patrol-phone")
        site.enrol_device("test", "S4", patrol.public, patrol.fingerprint)
        self.grant = root / "anna.grant"
        self.grant.write_bytes(data)
        dev.load_grant(self.grant, PIN, kdf=CHEAP)
        self.spare = device.Device.init(root / "spare-phone")
        reg.close()
        self.snapshot = (self.site / "registry.sqlite3").read_bytes()
        (root / "adir").mkdir()
        self.env = {"LOCKCTL_SITE": str(self.site), "LOCKCTL_PIN": PIN,
                    "LOCKCTL_ACTOR": "test-admin"}

    def dump(self) -> list[str]:
        return dump(self.site)

    def keys(self) -> dict[str, bytes]:
        """The sealed keys on S1's device."""
        return {p.name: p.read_bytes() for p in sorted((self.device / "keys").iterdir())}

    def shift_args(self, **change: str) -> list[str]:
        now = datetime.now(ZONE)
        opts = {"--staff": "S1", "--clients": "C1", "--start": local(now - timedelta(hours=1)),
                "--end": local(now + timedelta(hours=6)), "--out": "new.grant", **change}
        return ["shift", "issue", *[x for kv in opts.items() for x in kv]]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for k, v in CHEAP.items():  # what `key load` seals with, in-process
        monkeypatch.setitem(device.KDF, k, v)
    w = World(tmp_path)
    monkeypatch.chdir(tmp_path)
    for k, v in w.env.items():
        monkeypatch.setenv(k, v)
    return w


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = lockctl.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def refused(world: World, argv: list[str], capsys: pytest.CaptureFixture[str], status: int,
            words: str) -> str:
    """Run argv in-process; it must fail with `status`, one line containing `words`,
    and leave the registry as it was."""
    before = world.dump()
    got, out, err = run(argv, capsys)
    assert TRACEBACK not in err + out
    assert got == status, (argv, got, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lockctl: ") and words in lines[0], err
    assert world.dump() == before
    return lines[0]


def spawn(argv: list[str], env: dict[str, str], cwd: Path, as_user: list[str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(as_user or []), LOCKCTL, *argv], env={**os.environ, **env},
                          cwd=cwd, capture_output=True, text=True, timeout=60)


# --- at the personal-code prompt, in a real terminal -----------------------------------

def at_the_prompt(world: World, argv: list[str], answers: list[bytes]) -> tuple[int, str]:
    """Run lockctl on a pseudo-terminal (its controlling terminal, so getpass
    really prompts there) and type answers[i] at its i-th personal-code prompt
    ("Personal code: ", "Personal code again: "); its exit status and output."""
    env = {k: v for k, v in os.environ.items() if k != "LOCKCTL_PIN"}
    env.update(LOCKCTL_SITE=str(world.site), LOCKCTL_ACTOR="test-admin")
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        try:
            os.chdir(world.root)
            os.execve(LOCKCTL, [LOCKCTL, *argv], env)
        finally:
            os._exit(127)
    seen = b""
    deadline = time.monotonic() + 30
    typed = 0
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if typed < len(answers) and seen.count(b"Personal code") > typed:
            time.sleep(0.2)  # getpass switches echo off after writing the prompt
            os.write(fd, answers[typed])
            typed += 1
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert typed == len(answers), seen
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def prompting(world: World) -> list[tuple[list[str], list[bytes]]]:
    """Where lockctl asks for the personal code, and what is typed before the
    last answer: loading a grant asks twice, opening a door once."""
    load = ["key", "load", "--grant", "anna.grant", "--device", "anna-phone"]
    return [(load, []), (load, [PIN.encode() + b"\r"]),
            (["open", "--device", "anna-phone", "--lock-id", "NT-1", "--ble", "127.0.0.1:9"], [])]


def test_ctrl_d_at_the_personal_code_prompt(world: World) -> None:
    before, keys = world.dump(), world.keys()
    for argv, first in prompting(world):
        status, text = at_the_prompt(world, argv, [*first, b"\x04"])
        assert status == 1, (argv, text)
        assert TRACEBACK not in text and "EOFError" not in text
        assert "lockctl: no personal code entered: nothing was done" in text
        assert world.dump() == before and world.keys() == keys


def test_ctrl_c_exits_130(world: World) -> None:
    before, keys = world.dump(), world.keys()
    for argv, first in prompting(world):
        status, text = at_the_prompt(world, argv, [*first, b"\x03"])
        assert status == 130, (argv, text)
        assert TRACEBACK not in text and "KeyboardInterrupt" not in text
        assert "lockctl: interrupted" in text
        assert world.dump() == before and world.keys() == keys


# --- the listed faults, one by one ---------------------------------------------------

def test_a_shift_ending_more_than_24_hours_ahead(world: World, capsys) -> None:
    now = datetime.now(ZONE)
    args = world.shift_args(**{"--start": local(now + timedelta(hours=20)),
                               "--end": local(now + timedelta(hours=26))})
    refused(world, args, capsys, 2, "a key can be issued at most 24 hours before its shift ends")
    assert not (world.root / "new.grant").exists()


@pytest.mark.parametrize("out,words", [
    ("no-such-dir/x", "the directory no-such-dir does not exist"),
    ("adir", "is a directory"),
    ("/dev/null", "not a regular file"),
])
def test_out_that_cannot_be_written(world: World, capsys, out: str, words: str) -> None:
    refused(world, world.shift_args(**{"--out": out}), capsys, 1, words)
    refused(world, ["log", "report", "--lock-id", "NT-1", "--format", "csv", "--out", out],
            capsys, 1, words)
    # Written beside itself and renamed, the report would have replaced the device.
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not list(world.root.glob("**/*.new"))


def test_sim_state_naming_a_file(world: World, capsys) -> None:
    (world.root / "afile").write_text("")
    refused(world, ["sim", "--state", "afile"], capsys, 1, "afile is a file, not a directory")
    p = subprocess.run([sys.executable, "-m", "simulator", "--state", "afile"],
                       cwd=world.root, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(Path(lockctl.__file__).parents[2])})
    assert p.returncode == 2 and TRACEBACK not in p.stderr
    assert "afile is a file, not a directory" in p.stderr


def test_out_dir_that_is_not_a_directory(world: World, capsys) -> None:
    now = datetime.now(ZONE)
    (world.root / "status.jsonl").write_text('{"v": 1, "lock": "NT-1"}\n')  # not genuine
    (world.root / "roster.csv").write_text(
        f"staff,clients,start,end\nS1,C1,{local(now)},{local(now + timedelta(hours=2))}\n")
    (world.root / "afile").write_text("")
    for out_dir in ("afile", "/dev/null"):
        refused(world, ["shift", "issue", "--roster", "roster.csv", "--out-dir", out_dir],
                capsys, 2, f"--out-dir {out_dir}: not a directory")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_old_key_file_is_answered_as_such(world: World, capsys,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A key file of the old format (PIN-encrypted), whatever the file.
    monkeypatch.setitem(keyfile.KDF, "time_cost", 1)
    monkeypatch.setitem(keyfile.KDF, "memory_cost", 64)
    now = int(time.time())
    keyfile.write(world.root / "anna.key", keyfile.ShiftKey("S1", "Testkommun", now,
                                                            now + 3600, []), PIN)
    for key in ("anna.key", "adir", "/dev/null", "missing.key"):
        for argv in (["open", "--key", key, "--lock-id", "NT-1", "--ble", "127.0.0.1:9"],
                     ["open", "--key", key, "--device", "anna-phone", "--lock-id", "NT-1",
                      "--ble", "127.0.0.1:9"]):
            refused(world, argv, capsys, 1, "old key format: ask for a new key")


def copy_device(world: World, name: str) -> Path:
    copy = world.root / name
    shutil.copytree(world.device, copy)
    return copy


def test_device_that_is_missing_or_not_private(world: World, capsys) -> None:
    (world.root / "odd-phone").mkdir()
    (world.root / "odd-phone" / "device.key").mkdir()  # a directory where the key should be
    (world.root / "null-phone").mkdir()
    (world.root / "null-phone" / "device.key").symlink_to("/dev/null")
    shared = copy_device(world, "shared-phone")
    (shared / "device.key").chmod(0o640)
    keys, shared_keys = world.keys(), sorted((shared / "keys").iterdir())
    for dev, words in (
            ("missing-phone", "device key missing-phone/device.key: no such file"),
            ("adir", "device key adir/device.key: no such file"),
            ("/dev/null", "device key /dev/null/device.key: Not a directory"),
            ("odd-phone", "device key odd-phone/device.key: not a regular file"),
            ("null-phone", "device key null-phone/device.key: not a regular file"),
            ("shared-phone", "shared-phone/device.key is readable by others: fix with chmod 600 "
             "shared-phone/device.key")):
        for argv in (["key", "load", "--grant", "anna.grant", "--device", dev],
                     ["open", "--device", dev, "--lock-id", "NT-1", "--ble", "127.0.0.1:9"]):
            line = refused(world, argv, capsys, 1, words)
            assert "corrupted" not in line and "damaged" not in line
    assert world.keys() == keys and sorted((shared / "keys").iterdir()) == shared_keys


def test_grant_that_is_a_directory_a_device_or_missing(world: World, capsys) -> None:
    keys = world.keys()
    for grant, words in (("adir", "grant adir: not a regular file"),
                         ("/dev/null", "grant /dev/null: not a regular file"),
                         ("missing.grant", "grant missing.grant: no such file")):
        line = refused(world, ["key", "load", "--grant", grant, "--device", "anna-phone"],
                       capsys, 1, words)
        assert "damaged" not in line
    assert world.keys() == keys


def test_flash_unknown_board_lists_the_boards(world: World, capsys) -> None:
    # --board's choices are the board files (shown in --help); anything else,
    # a name that walks out of boards/ too, is argparse's usage error.
    for board in ("no-such-board", "../tools/demo"):
        before = world.dump()
        got, out, err = run(["flash", "--board", board, "--port", "/dev/ttyACM0"], capsys)
        assert got == 2 and TRACEBACK not in err + out
        known = ", ".join(f"'{b}'" for b in flashing.boards())
        assert "esp32c3_devkit" in known and "pico_w" in known
        assert err.strip().splitlines()[-1] == (
            f"lockctl flash: error: argument --board: invalid choice: '{board}' (choose from "
            f"{known})")
        assert world.dump() == before


@pytest.mark.parametrize("port,words", [
    ("/dev/ttyACM-no-such", "/dev/ttyACM-no-such: no such serial port: it does not exist"),
    ("/dev/null", "/dev/null is not a serial port"),
    ("adir", "adir is not a serial port"),
])
def test_flash_to_a_port_that_is_not_there(world: World, capsys, port: str, words: str) -> None:
    refused(world, ["flash", "--board", "sim", "--port", port], capsys, 1, words)


def test_unexpected_error_is_one_line_unless_debug(world: World, capsys,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: argparse.Namespace, out: lockctl.Output) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(log_cmds, "cmd_log_verify", broken)
    line = refused(world, ["log", "verify", "--lock-id", "NT-1"], capsys, 1,
                   "unexpected error (RuntimeError: boom)")
    assert "--debug" in line
    status, _, err = run(["--debug", "log", "verify", "--lock-id", "NT-1"], capsys)
    assert status == 1 and TRACEBACK in err and "RuntimeError: boom" in err
    assert err.strip().splitlines()[-1].startswith("lockctl: unexpected error")
    status, _, err = run(["log", "verify", "--lock-id", "NT-1", "--debug"], capsys)
    assert status == 1 and TRACEBACK in err  # after the command too, like --site


def test_interrupt_in_process_is_130(world: World, capsys,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace, out: lockctl.Output) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(log_cmds, "cmd_log_verify", interrupted)
    assert refused(world, ["log", "verify", "--lock-id", "NT-1"], capsys, 130, "interrupted")


def test_a_reader_that_goes_away(world: World) -> None:
    # `lockctl log report ... | head -0`: the pipe is closed before lockctl writes.
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([LOCKCTL, "log", "report", "--lock-id", "NT-1", "--format", "csv"],
                           stdout=w, stderr=subprocess.PIPE, text=True, timeout=60,
                           env={**os.environ, **world.env}, cwd=world.root)
    finally:
        os.close(w)
    assert p.returncode == 1 and p.stderr == "", p.stderr


# --- permissions bind only a user who is not root ----------------------------------------

@pytest.fixture
def unprivileged() -> Iterator[tuple[Path, list[str]]]:
    """A directory a subprocess can reach, and the command prefix that runs it
    where permission bits bind: nothing when not root; as root (which reads and
    writes whatever the bits say), setpriv to uid/gid 65534. setpriv drops root's
    capabilities only at the exec, so the interpreter is still found when it
    lives under a root-only home (pyenv in /root)."""
    base = Path(tempfile.mkdtemp(prefix="lockctl-perm-"))
    base.chmod(0o755)  # tmp_path's parents are root-only
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        reason = "setpriv is not installed"
        if setpriv:
            prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            probe = subprocess.run([*prefix, LOCKCTL, "--help"], cwd=base,
                                   capture_output=True, text=True, timeout=60)
            reason = probe.stderr.strip()[-300:]
        if not setpriv or probe.returncode != 0:
            shutil.rmtree(base)
            pytest.skip("running as root, where permission bits do not bind, and lockctl "
                        f"cannot be run as an unprivileged user here: {reason}")
    try:
        yield base, prefix
    finally:
        for p in [base, *base.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o700 if p.is_dir() else 0o600)
        shutil.rmtree(base)


def chown_tree(top: Path, prefix: list[str]) -> None:
    if prefix:  # running as root: hand the files to the unprivileged user
        for p in [top, *top.rglob("*")]:
            os.chown(p, NOBODY, NOBODY)


def test_read_only_site(world: World, unprivileged: tuple[Path, list[str]]) -> None:
    base, how = unprivileged
    site = base / "site"
    shutil.copytree(world.site, site)
    chown_tree(site, how)
    for p in site.iterdir():
        p.chmod(0o400)
    site.chmod(0o500)
    before = dump(site)
    # No personal code: issuing a grant asks for none (and there is no terminal).
    env = {"LOCKCTL_SITE": str(site), "LOCKCTL_ACTOR": "test-admin"}
    now = datetime.now(ZONE)
    out = base / "out"  # where the unprivileged user may write a grant
    out.mkdir()
    pub = base / "spare.pub"  # a device to enrol, where that user may read it
    shutil.copy(world.spare.dir / "device.pub", pub)
    chown_tree(out, how)
    roster = base / "roster.csv"
    roster.write_text(f"staff,clients,start,end\nS1,C1,{local(now)},"
                      f"{local(now + timedelta(hours=2))}\n")
    for argv in (["client", "add", "C2", "--name", "Karl Berg"],
                 ["staff", "add", "S2", "--name", "Bilal Haddad", "--provider", "Kommunen"],
                 ["revoke", "--staff", "S1"],
                 ["revoke", "--device", world.fingerprint],
                 ["device", "enrol", "--staff", "S3", "--public", str(pub), "--fingerprint",
                  world.spare.fingerprint],
                 ["shift", "issue", "--staff", "S1", "--clients", "C1", "--start",
                  local(now), "--end", local(now + timedelta(hours=2)), "--out",
                  str(out / "k.grant")],
                 ["shift", "issue", "--roster", str(roster), "--out-dir", str(out / "unit")],
                 ["log", "report", "--lock-id", "NT-1", "--format", "csv"],
                 ["client", "update", "C1", "--providers", "Kommunen", "--unit", "U1"],
                 ["client", "remove", "C1"],
                 ["provider", "add", "Omsorg AB"],
                 ["unit", "remove", "U1"],
                 ["staff", "deactivate", "S1"],
                 ["booking", "add", "--staff", "S1", "--unit", "U2", "--from",
                  now.date().isoformat(), "--to", now.date().isoformat()],
                 ["alarm", "issue", "--client", "C1", "--staff", "S4", "--reason", "fall",
                  "--alarm-id", "TL-1", "--out", str(out / "alarm.grant")]):
        p = spawn(argv, env, base, how)
        assert p.returncode == 1, (argv, p.stderr)
        assert TRACEBACK not in p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, p.stderr
        assert f"lockctl: the site registry in {site} is read-only" in lines[0], lines
    assert dump(site) == before and not list(out.iterdir())


def test_unreadable_device_key_and_grant(world: World,
                                        unprivileged: tuple[Path, list[str]]) -> None:
    base, how = unprivileged
    # A device whose key the user may not read (owned by the test's user, mode 0)...
    locked = base / "locked-phone"
    shutil.copytree(world.device, locked)
    locked.chmod(0o755)
    (locked / "device.key").chmod(0)
    # ...and the user's own device, with a grant it may not read.
    mine = base / "my-phone"
    shutil.copytree(world.device, mine)
    chown_tree(mine, how)
    grant = base / "anna.grant"
    shutil.copy(world.grant, grant)
    grant.chmod(0)
    for argv, line in (
            (["open", "--device", str(locked), "--lock-id", "NT-1", "--ble", "127.0.0.1:9"],
             f"lockctl: device key {locked}/device.key: Permission denied"),
            (["key", "load", "--grant", str(world.grant.name), "--device", str(locked)],
             f"lockctl: device key {locked}/device.key: Permission denied"),
            (["key", "load", "--grant", str(grant), "--device", str(mine)],
             f"lockctl: grant {grant}: Permission denied")):
        p = spawn(argv, {"LOCKCTL_PIN": PIN}, base, how)
        assert p.returncode == 1 and TRACEBACK not in p.stderr, (argv, p.stderr)
        assert p.stderr.strip() == line
    assert sorted((mine / "keys").iterdir()) == [mine / "keys" / k for k in world.keys()]


# --- every command, hostile arguments ------------------------------------------------------

def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                  ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from leaf_commands(sub, (*path, name))


def value_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._StoreTrueAction))]


def exclusive(parser: argparse.ArgumentParser) -> list[list[argparse.Action]]:
    return [g._group_actions for g in parser._mutually_exclusive_groups]


def hostile_values(root: Path, huge: int) -> list[str]:
    return ["", "A" * huge, "\x01\x02\x7f\x1b[2J\u202e\ufffd\udcff binary-ish", "-1",
            "-99999999999999999999", "/dev/null", str(root / "adir"),
            str(root / "missing" / "x"), "NO-SUCH-ID"]


# Commands that neither open the site nor record who acted: their --site and
# --actor are taken and not used.
OFF_SITE = {("device", "init"), ("key", "load"), ("ports",), ("completion",)}


def legit(command: tuple[str, ...], option: str, value: str, root: Path) -> bool:
    """Hostile-looking values that are nevertheless good input for that option."""
    plain = value in ("-1", "-99999999999999999999", "NO-SUCH-ID")
    paths = value in ("/dev/null", str(root / "adir"), str(root / "missing" / "x"))
    if command in OFF_SITE and option in ("--site", "--actor"):
        return True
    if option in ("--name", "--address", "--provider", "--actor", "provider", "--reason",
                  "--by", "--owner", "--what"):
        return plain or paths  # any short printable text is a name
    if command[-1] in ("list", "show") or command == ("audit",):
        return plain  # a filter that matches nothing, or an unknown id, is no error
    if option in ("--alarm-id", "unit") and command[-1] in ("issue", "add"):
        return value == "NO-SUCH-ID"  # a new id
    if option in ("client_id", "staff_id", "property_id") or (command == ("commission",)
                                               and option == "--lock-id"):
        return value == "NO-SUCH-ID"
    # A file or directory lockctl creates may have any name the system takes.
    odd_name = value.startswith("\x01")
    if option == "--out":
        return plain or odd_name
    # A directory lockctl creates (an existing empty one will do).
    if (command, option) in ((("site", "init"), "--site"), (("device", "init"), "--device"),
                             (("shift", "issue"), "--out-dir")):
        return plain or odd_name or value in (str(root / "adir"), str(root / "missing" / "x"))
    return False


# Valid arguments per command: one at a time is replaced by a hostile value, so
# that each reaches the code past the others' checks. A command used in more
# than one way has a set of arguments for each; the options of the other ways
# are left out (as for a mutually exclusive group).
def valid_arguments(world: World) -> dict[tuple[str, ...], list[dict[str, str]]]:
    now = datetime.now(ZONE)
    phone = str(world.device)
    shift = world.shift_args()
    (world.root / "status.jsonl").write_text('{"v": 1, "lock": "NT-1"}\n')  # not genuine
    (world.root / "roster.csv").write_text(
        f"staff,clients,start,end\nS1,C1,{local(now)},{local(now + timedelta(hours=2))}\n")
    return {
        ("site", "init"): [{"--site": "new-site", "--name": "S", "--zone": "Europe/Stockholm",
                            "--retention-days": "30"}],
        ("client", "add"): [{"client_id": "C9", "--name": "N", "--address": "A"}],
        ("staff", "add"): [{"staff_id": "S9", "--name": "N", "--provider": "P"}],
        ("sim",): [{"--state": "sim-state", "--serial-link": "sim.tty", "--ble": "127.0.0.1:0",
                    "--heap": "96K"}],
        ("commission",): [{"--port": "/dev/ttyACM-none", "--lock-id": "NT-2", "--client": "C1",
                           "--door": "apartment", "--suite": "hmac"}],
        ("lock", "info"): [{"--port": "/dev/ttyACM-none"}],
        ("lock", "sync"): [{"--port": "/dev/ttyACM-none"}],
        ("lock", "decommission"): [{"--port": "/dev/ttyACM-none"}],
        ("shift", "issue"): [dict(zip(shift[2::2], shift[3::2], strict=True)),
                             {"--roster": "roster.csv", "--out-dir": "grants"}],
        ("revoke",): [{"--staff": "S1"}, {"--device": world.fingerprint[:12]}],
        ("device", "init"): [{"--device": "new-phone"}],
        ("device", "enrol"): [{"--staff": "S3", "--public": "spare-phone/device.pub",
                               "--fingerprint": world.spare.fingerprint}],
        ("device", "list"): [{}],
        ("key", "load"): [{"--grant": str(world.grant), "--device": phone}],
        ("open",): [{"--device": phone, "--lock-id": "NT-1", "--ble": "127.0.0.1:9",
                     "--action": "open"}],
        ("log", "pull"): [{"--ble": "127.0.0.1:9", "--device": phone}],
        ("log", "verify"): [{"--lock-id": "NT-1"}],
        ("log", "report"): [{"--lock-id": "NT-1", "--from": now.date().isoformat(),
                             "--to": now.date().isoformat(), "--format": "csv",
                             "--lang": "sv", "--out": "report.csv"},
                            {"--client": "C1", "--format": "html"},
                            {"--staff": "S1", "--format": "json"}],
        ("flash",): [{"--board": "sim", "--port": "/dev/ttyACM-none"}],
        ("ports",): [{}],
        ("completion",): [{"shell": "bash"}],
        ("site", "set"): [{"--retention-days": "30", "--zone": "Europe/Stockholm"}],
        # care operations (issue #14)
        ("client", "update"): [{"client_id": "C1", "--name": "N", "--address": "A",
                                "--unit": "U1", "--providers": "Kommunen",
                                "--medicine-roles": "nurse,rehab"}],
        ("client", "remove"): [{"client_id": "C1"}],
        ("client", "list"): [{}],
        ("client", "show"): [{"client_id": "C1"}],
        ("staff", "list"): [{}],
        ("staff", "show"): [{"staff_id": "S1"}],
        ("staff", "update"): [{"staff_id": "S1", "--name": "N", "--unit": "U1",
                               "--role": "nurse"}],
        ("staff", "deactivate"): [{"staff_id": "S1"}],
        ("staff", "activate"): [{"staff_id": "S1"}],
        ("provider", "add"): [{"provider": "Omsorg AB", "--alarms": "no"}],
        ("provider", "update"): [{"provider": "Kommunen", "--alarms": "no"}],
        ("provider", "remove"): [{"provider": "Kommunen"}],
        ("provider", "list"): [{}],
        ("provider", "show"): [{"provider": "Kommunen"}],
        ("unit", "add"): [{"unit": "U9", "--provider": "Kommunen", "--name": "Norr"}],
        ("unit", "update"): [{"unit": "U1", "--provider": "Kommunen", "--name": "Norr"}],
        ("unit", "remove"): [{"unit": "U1"}],
        ("unit", "list"): [{}],
        ("unit", "show"): [{"unit": "U1"}],
        ("booking", "add"): [{"--staff": "S1", "--unit": "U2", "--from": now.date().isoformat(),
                              "--to": now.date().isoformat()}],
        ("booking", "list"): [{"--staff": "S3", "--unit": "U2"}],
        ("booking", "cancel"): [{"booking": str(world.booking)}],
        ("lock", "list"): [{}],
        ("lock", "show"): [{"lock_id": "NT-1"}],
        ("device", "show"): [{"fingerprint": world.fingerprint[:12]}],
        ("token", "list"): [{"--staff": "S1", "--lock": "NT-1"}],
        ("token", "show"): [{"token": world.token}],
        ("audit",): [{"--from": now.date().isoformat(), "--to": now.date().isoformat(),
                      "--actor": "test", "--lock": "NT-1", "--staff": "S1"}],
        ("alarm", "issue"): [{"--client": "C1", "--staff": "S4", "--reason": "fall alarm",
                              "--alarm-id": "TL-1", "--minutes": "30", "--out": "alarm.grant"}],
        ("alarm", "list"): [{"--from": now.date().isoformat(), "--to": now.date().isoformat()}],
        # receipts, properties, consent, lock removal and retirement, incidents
        ("handout", "add"): [{"--person": "S1", "--item": "fob:F1", "--by": "Eva"}],
        ("handout", "return"): [{"--person": "S1", "--item": f"device:{world.fingerprint}",
                                 "--by": "Eva"}],
        ("receipt", "list"): [{"--person": "S1"}],
        ("receipt", "show"): [{"receipt_id": "R-000001", "--format": "html",
                               "--out": "r.html"}],
        ("property", "add"): [{"property_id": "P-9", "--address": "A", "--owner": "O"}],
        ("property", "list"): [{}],
        ("consent", "add"): [{"--property": "P-1", "--by": "O", "--date": "2026-11-01"}],
        ("lock", "remove"): [{"--port": "/dev/ttyACM-none", "--by": "Ola", "--to": "C1"}],
        ("lock", "retire"): [{"lock_id": "NT-1", "--reason": "stolen"}],
        ("incident", "add"): [{"--lock": "NT-1", "--what": "x",
                               "--at": local(now - timedelta(hours=1)), "--window": "30"}],
        ("incident", "list"): [{"--lock": "NT-1"}],
        ("fleet", "ingest"): [{"file": str(world.root / "status.jsonl")}],
        ("fleet", "status"): [{}],
    }


def argv_of(command: tuple[str, ...], parser: argparse.ArgumentParser,
            values: dict[str, str]) -> list[str]:
    argv = list(command)
    for action in value_actions(parser):
        name = action.option_strings[0] if action.option_strings else action.dest
        if name not in values:
            continue
        argv += [values[name]] if not action.option_strings else [name, values[name]]
    return argv


class Exec(BaseException):
    """`lockctl sim` handed its arguments to the simulator."""


def no_exec(*args: object) -> None:
    raise Exec


def check_hostile(world: World, argv: list[str], capsys: pytest.CaptureFixture[str],
                  may_succeed: bool) -> None:
    before = world.dump()
    shown = " ".join(a[:40] for a in argv)
    try:
        status, out, err = run(argv, capsys)
    except Exec:
        # The simulator checks the rest itself (test_sim_arguments_from_a_shell);
        # lockctl must only have refused what it checks: an unusable --state.
        assert argv[0] == "sim" and world.dump() == before, shown
        capsys.readouterr()
        return
    assert TRACEBACK not in out + err, (shown, err[-2000:])
    if status == 0 and may_succeed:
        # It did something (added "NO-SUCH-ID", say): back to the starting
        # registry, or that id would be known to the runs after it.
        gc.collect()  # main() leaves closing the registry to the interpreter
        (world.site / "registry.sqlite3").write_bytes(world.snapshot)
        return
    assert status in (1, 2), (shown, status, err[-500:])
    assert err.strip().splitlines()[-1].startswith("lockctl"), (shown, err[-500:])
    if status == 1:
        assert len(err.strip().splitlines()) == 1, (shown, err[-500:])
    assert world.dump() == before, shown


def test_every_command_with_hostile_arguments(world: World, capsys,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # `lockctl sim` execs the simulator, which checks its own arguments (tested
    # by subprocess below); here it must not replace the test process.
    monkeypatch.setattr(os, "execv", no_exec)
    # A block waits for the next second before it returns (Site.revoke_staff):
    # not needed here, where the registry goes back to its snapshot after it.
    monkeypatch.setattr(time, "sleep", lambda s: None)
    parser = lockctl.build_parser()
    # One parser for the ~3,800 runs (argparse parsers are reusable): building
    # it is most of a run's time here, and what is tested is what main() does
    # with each argv.
    # (the module, not the function tools.lockctl re-exports under its name)
    monkeypatch.setattr(sys.modules["tools.lockctl.main"], "build_parser", lambda: parser)
    commands = dict(leaf_commands(parser))
    valid = valid_arguments(world)
    assert set(commands) == set(valid), "a new command needs valid arguments here"
    runs = 0
    # site init and device init last: a site or a device one creates under a
    # hostile --site or --device would be a good one for the commands after it.
    last = [("site", "init"), ("device", "init")]
    for command, sub in sorted(commands.items(),
                               key=lambda c: last.index(c[0]) if c[0] in last else -1):
        actions = {a.option_strings[0] if a.option_strings else a.dest: a
                   for a in value_actions(sub)}
        groups = [[a.option_strings[0] for a in g] for g in exclusive(sub)]
        for value in hostile_values(world.root, 200_000):
            # Every argument hostile at once (a valid one where only choices are
            # allowed, so that the run gets past the parser)...
            values = {n: (a.choices and sorted(a.choices)[0]) or value
                      for n, a in actions.items()}
            for g in groups:
                for other in g[1:]:
                    values.pop(other, None)
            for flags in ([], ["--json"]):
                check_hostile(world, argv_of(command, sub, values) + flags, capsys,
                              may_succeed=any(legit(command, n, value, world.root)
                                              for n in values))
                runs += 1
            # ...and one at a time among valid ones.
            for way in valid[command]:
                others = {n for w in valid[command] if w is not way for n in w} - set(way)
                for name in [n for n in actions if n not in others]:
                    values = dict(way)
                    for g in groups:
                        if name in g:
                            for other in g:
                                values.pop(other, None)
                    values[name] = value
                    check_hostile(world, argv_of(command, sub, values), capsys,
                                  may_succeed=legit(command, name, value, world.root))
                    runs += 1
    assert runs > 300


@pytest.mark.parametrize("argv", [
    [b"client", b"add", b"C\xff", b"--name", b"N"],
    [b"client", b"add", b"C7", b"--name", b"N\xff\xfe"],
    [b"--actor", b"\xff", b"revoke", b"--staff", b"S1"],
    [b"shift", b"issue", b"--staff", b"S1", b"--clients", b"C1\xff", b"--start", b"x",
     b"--end", b"y", b"--out", b"k"],
    [b"open", b"--key", b"\xff.key", b"--lock-id", b"NT-1", b"--ble", b"127.0.0.1:9"],
    [b"open", b"--device", b"\xff-phone", b"--lock-id", b"NT-1", b"--ble", b"127.0.0.1:9"],
    [b"key", b"load", b"--grant", b"\xff.grant", b"--device", b"anna-phone"],
    [b"device", b"enrol", b"--staff", b"S3", b"--public", b"\xff.pub", b"--fingerprint", b"0"],
    [b"revoke", b"--device", b"\xff"],
    [b"log", b"report", b"--lock-id", b"NT-1", b"--format", b"csv", b"--out", b"\xff/x"],
    [b"sim", b"--state", b"/dev/null"],
    [b"log", b"verify", b"--lock-id", b"A" * 100_000],
    [b"commission", b"--port", b"", b"--lock-id", b"NT-3", b"--client", b"C1"],
    [b"revoke", b"--token", b"-1"],
    [b"handout", b"add", b"--person", b"S1", b"--item", b"fob:\xff", b"--by", b"E"],
    [b"receipt", b"show", b"R-1", b"--out", b"\xff/x.html"],
    [b"incident", b"add", b"--lock", b"NT-1", b"--what", b"\xfe\xff"],
])
def test_hostile_arguments_from_a_shell(world: World, argv: list[bytes]) -> None:
    before = world.dump()
    p = subprocess.run([os.fsencode(LOCKCTL), *argv], capture_output=True, timeout=60,
                       env={**os.environ, **world.env}, cwd=world.root)
    err = p.stderr.decode(errors="replace")
    assert TRACEBACK not in err and p.returncode in (1, 2), (argv[:4], p.returncode, err)
    assert err.strip().splitlines()[-1].startswith("lockctl"), err
    assert world.dump() == before


@pytest.mark.parametrize("argv,words", [
    (["--ble", "nope"], "--ble needs HOST:PORT"),
    (["--heap", "zz", "--mpy"], "heap size must be"),
    (["--serial-link", "/nonexistent-dir/lock.tty"], "cannot create serial link"),
])
def test_sim_arguments_from_a_shell(world: World, argv: list[str], words: str) -> None:
    p = spawn(["sim", "--state", "sim-state", *argv], world.env, world.root)
    assert p.returncode in (1, 2) and TRACEBACK not in p.stderr, p.stderr
    assert words in p.stderr.strip().splitlines()[-1]


def test_json_output_survives_a_name_that_is_not_utf8(world: World) -> None:
    # A file name that is not UTF-8 is a valid --out (and --device for a new
    # device): the answer must still print. No personal code is asked for.
    env = {k: v for k, v in {**os.environ, **world.env}.items() if k != "LOCKCTL_PIN"}
    for argv, key, made in (
            (world.shift_args(**{"--out": "k\udcff.grant"}), "out", "k\udcff.grant"),
            (["device", "init", "--device", "p\udcff"], "device", "p\udcff/device.key")):
        p = subprocess.run([os.fsencode(LOCKCTL), b"--json", *map(os.fsencode, argv)],
                           capture_output=True, timeout=60, env=env, cwd=world.root,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)[key] == made.split("/")[0]
        assert (world.root / made).exists()
