"""Files the host tools write: grants, sealed keys, reports, receipts. They
hold what is not for others, and a cut or a crash must never leave half of
one in place of the old."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path | str, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` atomically (a file beside it, flushed to disk,
    renamed over it), owner-only unless `mode` says otherwise. The renamed
    file replaces a link or device at `path` rather than writing through it.
    On an error the file beside it is removed and the OSError raised."""
    path = Path(path)
    tmp = path.with_name(path.name + ".new")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
