"""The kit's second edition, as a backend author meets it: what it refuses, says and leaves."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio.lowlevel
import pytest
import satchel
from satchel_conformance import StorageContract, Timing

MODULE = """
import pytest
import satchel
from satchel_conformance import StorageContract

{head}


class TestMine(StorageContract):
    @pytest.fixture
    def storage(self):
        return {storage}
"""


def _run(tmp_path: Path, *extra: str, head: str = "", storage: str = "satchel.MemoryStorage()") -> str:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_mine.py").write_text(MODULE.format(head=head, storage=storage))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_mine.py", *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return f"exit {done.returncode}\n{done.stdout}"


@pytest.mark.parametrize(
    "mark",
    ['pytest.mark.skip(reason="flaky on CI")', 'pytest.mark.skipif(True, reason="no server")'],
)
def test_a_module_level_skip_fails_every_check_instead_of_skipping_it(tmp_path: Path, mark: str) -> None:
    out = _run(tmp_path, "-k", "round_trip or absent_id_reads", head=f"pytestmark = {mark}")
    assert out.startswith("exit 1"), out[-2000:]
    assert "module test_mine.py carries pytest.mark.skip" in out, out[-2000:]
    assert out.splitlines()[-1].startswith("52 deselected, 2 errors"), out[-2000:]


def test_importorskip_still_skips_a_module_whose_backend_is_missing(tmp_path: Path) -> None:
    """The way the docs give to skip a module where its driver is missing keeps working."""
    out = _run(tmp_path, head='pytest.importorskip("no_such_driver_for_the_kit")')
    assert out.startswith("exit 5") or "skipped" in out.splitlines()[-1], out[-2000:]


class _FailsInTasks(satchel.MemoryStorage):
    """Concurrent writes fail with the storage's own error, as an overloaded backend's do."""

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        await anyio.lowlevel.checkpoint()
        raise satchel.StorageError("the write queue is full; raise max_connections")


@pytest.mark.anyio
async def test_an_error_in_concurrent_calls_is_shown_as_itself() -> None:
    kit = StorageContract()
    with pytest.raises(satchel.StorageError, match="the write queue is full") as caught:
        await kit.test_concurrent_writers_on_distinct_ids(storage=_FailsInTasks())
    notes = getattr(caught.value, "__notes__", [])
    assert any("63 more errors in other tasks" in note for note in notes), notes


class _TouchIgnoresNone(satchel.MemoryStorage):
    """touch(id, None) keeps the old ttl: broken."""

    async def touch(self, id: str, ttl: float | None) -> None:
        if ttl is not None:
            await super().touch(id, ttl)


@pytest.mark.anyio
async def test_a_wrong_read_is_named_in_the_first_line() -> None:
    kit = StorageContract()
    with pytest.raises(pytest.fail.Exception) as caught:
        await kit.test_touch_sets_expiry_from_now(
            storage=_TouchIgnoresNone(), kit_timing=Timing(ttl=0.2, tolerance=0.05)
        )
    first = str(caught.value).splitlines()[0]
    assert first == (
        "after touch: 1 of 2 wrong: read(the value touch gave ttl=None) = None, expected b'loses its ttl'"
    ), first


def test_a_test_module_run_leaves_a_persistent_backend_as_it_found_it(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    storage = f"__import__('satchel_sqlite').SQLiteStorage({str(database)!r}, namespace='kit')"
    selection = "round_trip or ids_from_default or concurrent_writers_on_distinct or owner or overwrite"
    out = _run(tmp_path, "-k", selection, storage=storage)
    assert out.startswith("exit 0"), out[-2000:]
    with sqlite3.connect(database) as db:
        (left,) = db.execute("SELECT count(*) FROM satchel_sessions").fetchone()
    assert left == 0, f"the run left {left} sessions behind"
