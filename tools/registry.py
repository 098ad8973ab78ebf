"""The site registry: locks, doors, clients, providers, staff, issued tokens,
revocations, collected events and the record of every administrative act.

This is data access only; the acts themselves (each with its audit record, in
one transaction) are tools/site.py. One SQLite file in the site directory,
with numbered schema migrations. The site secret (from which every lock's
secret derives) and the site's Ed25519 signing key live beside it in
owner-only files; they are never printed, logged or put in an exception, and
their repr hides them. The registry holds personal data, so the directory and
every file SQLite keeps in it are owner-only too, and a site that others can
read is refused.

Registry itself is the site's files and secrets, the connection and its
nestable transactions, the schema's migration, the settings and the audit
record; each kind of record is a mixin of its own: registry_locks.py,
registry_people.py, registry_keys.py, registry_log.py, registry_care.py.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tools.migrations import MIGRATIONS  # noqa: F401 (tests and tools read it here)
from tools.migrations import statements as _statements
from tools.registry_care import CareRecords
from tools.registry_errors import RegistryError
from tools.registry_keys import KeyRecords
from tools.registry_locks import LockRecords, LockRow  # noqa: F401 (tools read it here)
from tools.registry_log import PREVIOUS_END, LogRecords  # noqa: F401
from tools.registry_people import ROLES, PeopleRecords  # noqa: F401 (tools read it here)

DB_NAME = "registry.sqlite3"
SECRET_NAME = "site-secret.key"
SIGNING_NAME = "site-signing.key"
DEFAULT_ZONE = "Europe/Stockholm"
DEFAULT_RETENTION_DAYS = 365


class SiteMissing(RegistryError):
    pass


# Files SQLite keeps beside the registry while it works (rollback journal, or
# WAL and its index): they hold the same personal data.
SIDE_FILES = ("-journal", "-wal", "-shm")


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RegistryError(f"{path} already exists: move it away first") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@contextmanager
def owner_only() -> Iterator[None]:
    """Files and directories made meanwhile are owner-only, whatever mode the
    code making them asks for (SQLite's own journal and WAL files included).
    The umask is process-wide: hold this only around creation."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def check_private(path: Path) -> None:
    """Refuse a site file or directory that other users can reach, naming
    the command that fixes it."""
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        what = "the site directory" if stat.S_ISDIR(st.st_mode) else "the site file"
        raise RegistryError(f"{what} {path} is open to other users (mode {mode:03o}): "
                            f"run chmod {want:o} {shlex.quote(str(path))}")


class Registry(LockRecords, PeopleRecords, KeyRecords, LogRecords, CareRecords):
    def __init__(self, site_dir: Path) -> None:
        self.dir = Path(site_dir)
        db = self.dir / DB_NAME
        if not db.exists():
            raise SiteMissing(f"no site at {self.dir} (run: lockctl site init)")
        for path in (self.dir, db, *(self.dir / (DB_NAME + s) for s in SIDE_FILES)):
            if path.exists():
                check_private(path)
        # isolation_level=None: this class opens and ends every transaction
        # itself (tx()); the module's implicit ones cannot nest.
        with owner_only():
            self.db = sqlite3.connect(db, timeout=10, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        self._depth = 0
        self._aborted = False
        self._made: list[Path] = []
        try:
            self.migrate()
        except BaseException:
            self.db.close()
            raise

    def __repr__(self) -> str:
        return f"<Registry {self.dir}>"

    # --- creation and schema ---------------------------------------------------
    @classmethod
    def create(cls, site_dir: Path) -> "Registry":
        """A new, empty site: the directory, the secrets and the schema, all
        owner-only. The settings are the act of tools/site.py's Site.init,
        which calls discard() if that act fails."""
        site_dir = Path(site_dir)
        if (site_dir / DB_NAME).exists():
            raise RegistryError(f"a site already exists at {site_dir}")
        made: list[Path] = []
        try:
            with owner_only():
                if not site_dir.exists():
                    site_dir.mkdir(parents=True, mode=0o700)
                    made.append(site_dir)
                os.chmod(site_dir, 0o700)
                for name, data in ((SECRET_NAME, os.urandom(32)),
                                   (SIGNING_NAME, Ed25519PrivateKey.generate().private_bytes(
                                       Encoding.Raw, PrivateFormat.Raw, NoEncryption()))):
                    _write_private(site_dir / name, data)
                    made.append(site_dir / name)
                made.append(site_dir / DB_NAME)
                sqlite3.connect(site_dir / DB_NAME).close()
            reg = cls(site_dir)
        except BaseException:
            _remove(made)
            raise
        reg._made = made
        return reg

    def discard(self) -> None:
        """Undo create(): close and remove what it made (a failed site init)."""
        self.close()
        _remove(self._made + [self.dir / (DB_NAME + s) for s in SIDE_FILES])
        self._made = []

    def put_settings(self, settings: dict[str, str]) -> None:
        with self.tx():
            for k, v in settings.items():
                self.db.execute("INSERT INTO settings VALUES (?, ?)", (k, v))

    def change_setting(self, key: str, value: str) -> None:
        with self.tx():
            self.db.execute("UPDATE settings SET value = ? WHERE key = ?", (value, key))

    def migrate(self) -> None:
        """Bring the schema up to date, one migration per transaction: one
        that fails leaves the registry at the version before it."""
        while True:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RegistryError("this site was written by a newer lockctl")
            if version == len(MIGRATIONS):
                return
            with self.tx():
                # Read again under the write lock: another lockctl may have
                # migrated meanwhile.
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                if version >= len(MIGRATIONS):
                    continue
                try:
                    for statement in _statements(MIGRATIONS[version]):
                        self.db.execute(statement)
                    self.db.execute(f"PRAGMA user_version = {version + 1}")
                except sqlite3.Error as exc:
                    raise RegistryError(
                        f"the registry could not be upgraded to schema version {version + 1} "
                        f"({exc}); it is unchanged, at version {version}") from None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """All or nothing, and nestable. The outermost block is the
        transaction: nothing is kept unless it ends normally. An inner block
        is a savepoint: if it raises, only its own changes are undone (the
        outer block may catch that and go on); if it ends normally, its
        changes still go with the outer block's fate."""
        if self._depth == 0:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise RegistryError("the site registry is busy (another lockctl?)") from None
                raise
            self._depth, self._aborted = 1, False
            try:
                yield self.db
            except BaseException:
                self._depth = 0
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self._depth = 0
            if self._aborted:
                self.db.execute("ROLLBACK")
                raise RegistryError("the registry undid this act after an error inside it: "
                                    "nothing was changed")
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise RegistryError("the site registry could not save this act "
                                    "(busy or disk full?): nothing was changed") from None
            return
        name = f"tx{self._depth}"
        self.db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield self.db
        except BaseException:
            self._depth -= 1
            if self.db.in_transaction:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
            elif not self._aborted:
                # SQLite itself undid the whole transaction (an I/O error, a
                # full disk): the outer blocks must neither go on writing in
                # autocommit mode nor report success.
                self._aborted = True
                self.db.execute("BEGIN")
            raise
        self._depth -= 1
        self.db.execute(f"RELEASE {name}")

    def close(self) -> None:
        self.db.close()

    # --- secrets (never shown) ---------------------------------------------------
    def _private(self, name: str) -> bytes:
        path = self.dir / name
        check_private(path)
        return path.read_bytes()

    def site_secret(self) -> bytes:
        return self._private(SECRET_NAME)

    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._private(SIGNING_NAME))

    def signing_public(self) -> bytes:
        return self.signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    # --- settings and audit ------------------------------------------------------
    def setting(self, key: str) -> str:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise RegistryError(f"setting {key} missing")
        return str(row[0])

    @property
    def name(self) -> str:
        return self.setting("name")

    @property
    def zone(self) -> str:
        return self.setting("zone")

    def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Record an act. Called inside the act's own transaction (Site.act),
        the record and the act are kept together or not at all."""
        with self.tx():
            self.db.execute("INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                            (int(time.time()), actor or "unknown", action,
                             json.dumps(detail, sort_keys=True)))

    def audit_log(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM audit ORDER BY id"))


def _remove(paths: list[Path]) -> None:
    for path in reversed(paths):
        try:
            if path.is_dir():
                path.rmdir()  # only if empty: a directory that held more stays
            else:
                path.unlink()
        except OSError:
            pass
