"""``satchel conformance URL`` checks the owner index of every built-in storage, and it holds.

Only the owner-index checks run here (``-k``): each backend's own test module runs the whole
kit against it already; this proves the capability is found and passes from a bare URL, as a
user runs it, on SQLite, Redis (standalone and cluster) and the Mongo-compatible server.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
OWNER_CHECKS = 12


def namespaced(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}namespace=kit-owners"


@pytest.fixture
def url(builtin_url: str) -> str:
    return namespaced(builtin_url)


def test_the_owner_index_contract_holds_from_a_url(url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "satchel"), "conformance", url, "-k", "owner or owned"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    found = re.search(r"TestStorageURL: (\d+) checks: (\d+) passed", done.stdout)
    assert found is not None, done.stdout[-3000:]
    # every owner check ran and passed: none skipped for want of the capability
    assert (int(found[1]), int(found[2])) == (OWNER_CHECKS, OWNER_CHECKS), done.stdout[-3000:]
