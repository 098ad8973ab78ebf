"""The service layer's acts on the organisation and whom it cares for:
clients, providers and units (part of tools/site.py's Site, kept here to
keep each module readable; the acts on staff and bookings are
site_staff.py). Every act is one transaction with its audit record. The
checks an act makes of ids and names before it changes anything
(InvalidInput, ID_RE, check_id, check_name) are here for both.

Nothing is deleted: `remove` deactivates (the log and the audit record refer
to what was removed). A change that may take a right away (a client's
providers or care plan, a removal) takes effect at once: Site.enforce()
blocks the outstanding keys the rule (tools/access.py) no longer allows,
inside the same act.
"""

from __future__ import annotations

import re
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from tools import access
from tools.registry import Registry, RegistryError

# Ids travel in tokens and file names; lockctl checks its arguments with this
# rule too (tools/site.py's ID_RE). \Z, not $: "$" would let a newline end an id.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


class InvalidInput(RegistryError):
    """Input the act refuses before changing anything."""


def check_id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise InvalidInput(f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return value


def check_name(value: str, what: str) -> str:
    if not value.strip() or len(value) > 200:
        raise InvalidInput(f"the {what} must be 1 to 200 characters")
    if what == "provider name" and "," in value:
        # --providers P1,P2 separates them with commas.
        raise InvalidInput("a provider name cannot hold a comma")
    return value


class PeopleActs:
    registry: Registry

    if TYPE_CHECKING:
        def act(self, actor: str, action: str, detail: dict[str, Any]
                ) -> AbstractContextManager[dict[str, Any]]: ...

        def enforce(self, now: int | None = None) -> list[str]: ...

        def set_client_care(self, client_id: str, property_id: str | None = None,
                            informed_on: str | None = None) -> None: ...

    # --- lookups that refuse ---------------------------------------------------------
    def _provider(self, name: str) -> Any:
        row = access.provider_row(self.registry, name)
        if row is None:
            raise InvalidInput(f"no provider {name!r} (lockctl provider add)")
        return row

    def _unit(self, unit_id: str, active: bool = False) -> Any:
        row = access.unit_row(self.registry, unit_id)
        if row is None:
            raise InvalidInput(f"no unit {unit_id} (lockctl unit add)")
        if active and not row["active"]:
            raise InvalidInput(f"unit {unit_id} is removed")
        return row

    def _providers(self, names: list[str]) -> list[str]:
        out: list[str] = []
        for n in names:
            row = self._provider(n)
            if not row["active"]:
                raise InvalidInput(f"provider {n!r} is removed")
            if n not in out:
                out.append(n)
        return out

    def _set_providers(self, client_id: str, providers: list[str], now: int) -> list[str]:
        db = self.registry.db
        old = access.chosen_providers(self.registry, client_id)
        for p in old:
            if p not in providers:
                db.execute("DELETE FROM client_providers WHERE client_id = ? AND provider = ?",
                           (client_id, p))
        for p in providers:
            db.execute("INSERT OR IGNORE INTO client_providers VALUES (?, ?, ?)",
                       (client_id, p, now))
        return [p for p in old if p not in providers]

    # --- clients -----------------------------------------------------------------------
    def add_client(self, actor: str, client_id: str, name: str, address: str | None = None,
                   unit: str | None = None, providers: list[str] | None = None,
                   medicine_roles: list[str] | None = None, property_id: str | None = None,
                   informed_on: str | None = None) -> None:
        check_id(client_id, "client id")
        check_name(name, "name")
        now = int(time.time())
        detail: dict[str, Any] = {"client": client_id, "unit": unit, "providers": providers}
        if property_id is not None:
            detail["property"] = property_id
        if informed_on is not None:
            detail["informed"] = informed_on
        with self.act(actor, "client add", detail):
            if unit is not None:
                self._unit(unit, active=True)
            chosen = self._providers(providers or [])
            roles = access.check_roles(",".join(medicine_roles)) if medicine_roles else None
            self.registry.add_client(client_id, name, address)
            self.registry.db.execute(
                "UPDATE clients SET unit = ?, medicine_roles = coalesce(?, medicine_roles) "
                "WHERE client_id = ?", (unit, ",".join(roles) if roles else None, client_id))
            self._set_providers(client_id, chosen, now)
            self.set_client_care(client_id, property_id, informed_on)

    def update_client(self, actor: str, client_id: str, name: str | None = None,
                      address: str | None = None, unit: str | None = None,
                      providers: list[str] | None = None,
                      medicine_roles: list[str] | None = None,
                      property_id: str | None = None,
                      informed_on: str | None = None) -> list[str]:
        """Change what is given; returns the token ids the change blocked."""
        now = int(time.time())
        changes = {k: v for k, v in (("name", name), ("address", address), ("unit", unit),
                                     ("providers", providers),
                                     ("medicine_roles", medicine_roles),
                                     ("property", property_id),
                                     ("informed", informed_on)) if v is not None}
        if not changes:
            raise InvalidInput("nothing to change: give --name, --address, --unit, --providers, "
                               "--medicine-roles, --property or --informed")
        with self.act(actor, "client update", {"client": client_id, **changes}) as detail:
            reg = self.registry
            row = reg.client(client_id)
            if not row["active"]:
                raise InvalidInput(f"client {client_id} is removed")
            if name is not None:
                reg.db.execute("UPDATE clients SET name = ? WHERE client_id = ?",
                               (check_name(name, "name"), client_id))
            if address is not None:
                reg.db.execute("UPDATE clients SET address = ? WHERE client_id = ?",
                               (address, client_id))
            if unit is not None:
                self._unit(unit, active=True)
                reg.db.execute("UPDATE clients SET unit = ? WHERE client_id = ?",
                               (unit, client_id))
            if providers is not None:
                detail["dropped"] = self._set_providers(client_id, self._providers(providers),
                                                        now)
            if medicine_roles is not None:
                roles = access.check_roles(",".join(medicine_roles))
                reg.db.execute("UPDATE clients SET medicine_roles = ? WHERE client_id = ?",
                               (",".join(roles), client_id))
            self.set_client_care(client_id, property_id, informed_on)
            reg.db.execute("UPDATE clients SET changed_at = ? WHERE client_id = ?",
                           (now, client_id))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])

    def remove_client(self, actor: str, client_id: str) -> list[str]:
        """Deactivate: no key is issued for the client's doors any more, and
        the outstanding ones no other client of the door needs are blocked."""
        now = int(time.time())
        with self.act(actor, "client remove", {"client": client_id}) as detail:
            if not self.registry.client(client_id)["active"]:
                raise InvalidInput(f"client {client_id} is already removed")
            self.registry.db.execute(
                "UPDATE clients SET active = 0, changed_at = ? WHERE client_id = ?",
                (now, client_id))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])

    # --- providers and units -------------------------------------------------------------
    def add_provider(self, actor: str, name: str, alarms: bool = False) -> None:
        check_name(name, "provider name")
        with self.act(actor, "provider add", {"provider": name, "alarms": alarms}):
            if access.provider_row(self.registry, name) is not None:
                raise InvalidInput(f"provider {name!r} already exists")
            self.registry.db.execute("INSERT INTO providers (name, alarms) VALUES (?, ?)",
                                     (name, int(alarms)))

    def update_provider(self, actor: str, name: str, alarms: bool | None = None) -> list[str]:
        if alarms is None:
            raise InvalidInput("nothing to change: give --alarms yes|no")
        now = int(time.time())
        with self.act(actor, "provider update", {"provider": name, "alarms": alarms}) as detail:
            if not self._provider(name)["active"]:
                raise InvalidInput(f"provider {name!r} is removed")
            self.registry.db.execute(
                "UPDATE providers SET alarms = ?, changed_at = ? WHERE name = ?",
                (int(alarms), now, name))
            detail["blocked"] = self.enforce(now)  # alarm keys, when named no more
        return list(detail["blocked"])

    def remove_provider(self, actor: str, name: str) -> list[str]:
        """Deactivate: its staff get no key any more; their outstanding keys are
        blocked (per token, so each entry travels to its own lock only)."""
        now = int(time.time())
        with self.act(actor, "provider remove", {"provider": name}) as detail:
            if not self._provider(name)["active"]:
                raise InvalidInput(f"provider {name!r} is already removed")
            self.registry.db.execute(
                "UPDATE providers SET active = 0, changed_at = ? WHERE name = ?", (now, name))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])

    def add_unit(self, actor: str, unit_id: str, provider: str, name: str | None = None) -> None:
        check_id(unit_id, "unit id")
        with self.act(actor, "unit add", {"unit": unit_id, "provider": provider}):
            if access.unit_row(self.registry, unit_id) is not None:
                raise InvalidInput(f"unit {unit_id} already exists")
            self._providers([provider])
            self.registry.db.execute(
                "INSERT INTO units (unit_id, provider, name, created_at) VALUES (?, ?, ?, ?)",
                (unit_id, provider, name, int(time.time())))

    def update_unit(self, actor: str, unit_id: str, provider: str | None = None,
                    name: str | None = None) -> None:
        if provider is None and name is None:
            raise InvalidInput("nothing to change: give --provider or --name")
        with self.act(actor, "unit update", {"unit": unit_id, "provider": provider,
                                             "name": name}):
            if not self._unit(unit_id)["active"]:
                raise InvalidInput(f"unit {unit_id} is removed")
            if provider is not None:
                self._providers([provider])
                other = self.registry.db.execute(
                    "SELECT staff_id FROM staff WHERE unit = ? AND provider != ? LIMIT 1",
                    (unit_id, provider)).fetchone()
                if other is not None:
                    raise InvalidInput(f"unit {unit_id} has staff of another provider "
                                       f"({other[0]}): a unit's staff are its provider's")
            self.registry.db.execute(
                "UPDATE units SET provider = coalesce(?, provider), name = coalesce(?, name), "
                "changed_at = ? WHERE unit_id = ?", (provider, name, int(time.time()), unit_id))

    def remove_unit(self, actor: str, unit_id: str) -> list[str]:
        """Deactivate: its staff's and its clients' keys stop (blocked per token)
        until they are moved to another unit."""
        now = int(time.time())
        with self.act(actor, "unit remove", {"unit": unit_id}) as detail:
            if not self._unit(unit_id)["active"]:
                raise InvalidInput(f"unit {unit_id} is already removed")
            self.registry.db.execute(
                "UPDATE units SET active = 0, changed_at = ? WHERE unit_id = ?", (now, unit_id))
            detail["blocked"] = self.enforce(now)
        return list(detail["blocked"])
