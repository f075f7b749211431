"""``satchel conformance URL`` reads the expiry each built-in storage holds, and purges.

Through the storages' own ``satchel_stored_expiry`` (no fixture exists in a URL run): the
stored-expiry checks and, where the storage is a `satchel.Purgeable`, the purge check run
and pass from a bare URL, as a user runs them, on SQLite, Redis (standalone and cluster)
and the Mongo-compatible server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CHECKS = ("test_stored_expiry_of_writes", "test_stored_expiry_after_touch", "test_purge_removes_only_expired")


@pytest.fixture
def url(builtin_url: str) -> str:
    return builtin_url


def test_stored_expiry_and_purge_hold_from_a_url(url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "satchel"), "conformance", url, "-k", "stored_expiry or purge"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for check in CHECKS[:2]:
        assert f"passed   {check}" in done.stdout, done.stdout[-3000:]
    purgeable = not url.startswith("redis")  # Redis expires keys by itself: no purge
    purge = "passed   test_purge" if purgeable else "the storage has no purge (satchel.Purgeable)"
    assert purge in done.stdout, done.stdout[-3000:]
