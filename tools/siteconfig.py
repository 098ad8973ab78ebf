"""lockctl's defaults for one site, from `SITE/site.toml` (optional):

    language = "sv"          # reports: "sv" or "en"
    provider = "Kommunen"    # the care provider new staff get when none is given
    port = "/dev/ttyACM0"    # the installer's serial port, or "auto"

These are conveniences of the command line only. Settings that change what the
site does (its time zone, the retention of visit logs) live in the registry
and change through audited acts (`lockctl site set`), never in this file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (pyproject.toml)
    import tomli as tomllib

FILE = "site.toml"
LANGS = ("sv", "en")
KEYS = {"language": "reports' language, \"sv\" or \"en\"",
        "provider": "default care provider for `staff add`",
        "port": "default serial port (a device path or \"auto\")"}
# What belongs in the registry: naming them here is a mistake worth a clear word.
REGISTRY_SETTINGS = {"zone": "lockctl site set --zone", "retention_days":
                     "lockctl site set --retention-days", "retention-days":
                     "lockctl site set --retention-days", "name": "the registry (site init)"}


class ConfigError(Exception):
    """site.toml cannot be used: exit status 1, nothing done."""


@dataclass(frozen=True)
class SiteConfig:
    language: str | None = None
    provider: str | None = None
    port: str | None = None


def _text(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ConfigError(f"{where}: {key} must be a text of 1-200 characters")
    if any(ord(c) < 32 for c in value):
        raise ConfigError(f"{where}: {key} must not hold control characters")
    return value


def load(site_dir: Path) -> SiteConfig:
    """The site's CLI defaults; no file is no defaults."""
    path = Path(site_dir) / FILE
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return SiteConfig()
    except IsADirectoryError:
        raise ConfigError(f"{where} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    for key in data:
        if key in REGISTRY_SETTINGS:
            raise ConfigError(f"{where}: {key} is a setting of the site, not of lockctl: "
                              f"change it with {REGISTRY_SETTINGS[key]}")
        if key not in KEYS:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: "
                              f"{', '.join(sorted(KEYS))})")
    lang = _text(data, "language", where)
    if lang is not None and lang not in LANGS:
        raise ConfigError(f"{where}: language must be one of {', '.join(LANGS)}, not {lang!r}")
    return SiteConfig(language=lang, provider=_text(data, "provider", where),
                      port=_text(data, "port", where))
