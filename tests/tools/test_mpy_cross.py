"""Every module that runs on the lock compiles with mpy-cross."""

from __future__ import annotations

from pathlib import Path

from mpybuild import compile_packages


def test_lock_code_compiles_with_mpy_cross(tmp_path: Path) -> None:
    rows, errors = compile_packages(tmp_path)
    assert not errors, "\n".join(errors)
    compiled = {r for r, _, _ in rows}
    assert "protocol/cbor.py" in compiled and "firmware/lock.py" in compiled
    for rel, _, size in rows:
        assert (tmp_path / rel).with_suffix(".mpy").stat().st_size == size > 0
