"""The service layer: every administrative act on a site, each with its audit
record, in one transaction.

lockctl parses the command line and prints; this module does the acts (as
mpremote splits main.py from commands.py), so an HTTP API can later call the
same methods. tools/registry.py is the data access underneath.

An act is `with self.act(actor, action, detail): ...`: the act's changes and
the audit record of who did it are committed together or not at all, and an
act that raises changes nothing. Acts nest (Registry.tx() is savepoints), so
a larger act may be made of smaller ones and still be all or nothing.
"""

from __future__ import annotations

import re
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import token as tok
from tools.registry import DEFAULT_RETENTION_DAYS, DEFAULT_ZONE, Registry, RegistryError

# The same rule as lockctl's check_id: ids travel in tokens and file names.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class InvalidInput(RegistryError):
    """Input the act refuses before changing anything."""


@dataclass(frozen=True)
class Revocation:
    version: int  # the site's block-list version after this block
    until: int  # POSIX; a staff block covers tokens with iat < until, a token one its expiry


def _check_id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise InvalidInput(f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' "
                           "or '-'")
    return value


class Site:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __repr__(self) -> str:
        return f"<Site {self.registry.dir}>"

    @classmethod
    def open(cls, site_dir: Path) -> "Site":
        return cls(Registry(site_dir))

    def close(self) -> None:
        self.registry.close()

    # --- transactions and the audit record -----------------------------------------
    def tx(self) -> AbstractContextManager[Any]:
        """All or nothing, nestable (see Registry.tx)."""
        return self.registry.tx()

    @contextmanager
    def act(self, actor: str, action: str, detail: dict[str, Any]
            ) -> Iterator[dict[str, Any]]:
        """One administrative act and its audit record in one transaction.
        The body may add to `detail` (what it learnt doing the act, such as a
        version number) before the record is written."""
        with self.registry.tx():
            yield detail
            self.registry.audit(actor, action, detail)

    # --- the acts ----------------------------------------------------------------------
    @classmethod
    def init(cls, site_dir: Path, name: str, zone: str = DEFAULT_ZONE,
             retention_days: int = DEFAULT_RETENTION_DAYS, *, actor: str) -> "Site":
        """A new site: registry, secrets and settings; a failure leaves no site."""
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {zone!r}") from None
        if retention_days < 1:
            raise InvalidInput("the retention must be at least 1 day")
        if not name.strip() or len(name) > tok.MAX_TEXT:
            # The name is the issuer (iss) every token and every lock of the
            # site carries: the lock takes at most 64 characters.
            raise InvalidInput(f"the site name must be 1 to {tok.MAX_TEXT} characters "
                               "(it is the issuer name every lock checks)")
        reg = Registry.create(Path(site_dir))
        site = cls(reg)
        try:
            with site.act(actor, "site init", {"name": name, "zone": zone,
                                               "retention_days": retention_days}):
                reg.put_settings({"name": name, "zone": zone,
                                  "retention_days": str(retention_days),
                                  "revocation_version": "0"})
        except BaseException:
            reg.discard()
            raise
        return site

    def add_client(self, actor: str, client_id: str, name: str,
                   address: str | None = None) -> None:
        _check_id(client_id, "client id")
        with self.act(actor, "client add", {"client": client_id}):
            self.registry.add_client(client_id, name, address)

    def add_staff(self, actor: str, staff_id: str, name: str,
                  provider: str | None = None) -> None:
        _check_id(staff_id, "staff id")
        with self.act(actor, "staff add", {"staff": staff_id, "provider": provider}):
            self.registry.add_staff(staff_id, name, provider)

    def revoke_staff(self, actor: str, staff_id: str) -> Revocation:
        """Block every key issued to a staff member up to now ("spärr").

        The lock refuses a token when iat < T, and iat is whole seconds. With
        T = now a key issued earlier in this same second would escape the
        block, so T = now + 1: every key issued up to and including this
        second is covered. A key issued later in this second is covered too,
        and refused for its whole life: of the two ways to be wrong, refusing
        a fresh key is the safe one. So that the next key issued after this
        returns is valid, it returns only once the clock has passed T.
        """
        until = int(time.time()) + 1
        with self.act(actor, "revoke", {"staff": staff_id, "until": until}) as detail:
            self.registry.staff(staff_id)
            detail["version"] = self.registry.revoke("staff", staff_id, until)
        # Outside the transaction: the wait holds no lock on the registry.
        wait = until - time.time()
        if wait > 0:
            time.sleep(wait)
        return Revocation(detail["version"], until)

    def revoke_token(self, actor: str, cti: bytes) -> Revocation:
        """Block one token: the lock refuses its id until the token expires."""
        with self.act(actor, "revoke", {"token": cti.hex()}) as detail:
            row = self.registry.token(cti)
            until = int(row["end"])
            detail["version"] = self.registry.revoke("token", cti.hex(), until)
        return Revocation(detail["version"], until)
