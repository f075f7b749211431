"""Session IDs never reach an error message; ``purge`` never creates the file it purges.

Failures are real: a file another connection holds locked, a file that is not a
database, a closed storage, a path where no file exists.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path

import anyio
import pytest
import satchel
from satchel_sqlite import SQLiteStorage

pytestmark = pytest.mark.anyio

HANG = 10


def formatted(exc: BaseException) -> str:
    """What a log line with ``exc_info`` prints: messages and tracebacks of the whole chain."""
    return "".join(traceback.format_exception(exc))


@pytest.fixture
def id() -> str:
    return secrets.token_urlsafe(32)


async def test_a_locked_file_fails_every_write_without_the_id(tmp_path: Path, id: str) -> None:
    path = tmp_path / "locked.db"
    store = SQLiteStorage(path, timeout=0.2)
    await store.write("other", b"x", None)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for call in (
            store.write(id, b"x", 60),
            store.write_if(id, b"x", 60, expected=None),
            store.touch(id, 60),
            store.invalidate(id),
        ):
            with anyio.fail_after(HANG), pytest.raises(satchel.StorageError, match="locked") as caught:
                await call
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            assert id not in formatted(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await store.aclose()


async def test_a_file_that_is_not_a_database_fails_without_the_id(tmp_path: Path, id: str) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a SQLite file, " * 100)
    store = SQLiteStorage(path)
    try:
        with pytest.raises(satchel.StorageError, match="not a SQLite database") as caught:
            await store.read(id)
    finally:
        await store.aclose()
    assert id not in formatted(caught.value)


async def test_a_closed_storage_opens_again_on_the_next_call(tmp_path: Path, id: str) -> None:
    """aclose() is not final: each call after it opens the file again (no error to name the id)."""
    store = SQLiteStorage(tmp_path / "closed.db")
    await store.write(id, b"x", 60)
    await store.aclose()
    assert await store.read(id) == b"x"
    await store.aclose()
    await store.write(id, b"y", 60)
    await store.aclose()
    await store.invalidate(id)
    assert await store.read(id) is None
    await store.aclose()


# -- purge on a missing file ---------------------------------------------------------------


async def test_purge_of_a_missing_file_raises_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    store = SQLiteStorage.from_url(f"sqlite:///{path}")
    try:
        # an app's own purge task before the first session: nothing to purge, nothing created
        assert await store.purge() == 0
        assert not path.exists()
        # satchel purge asks for missing_ok=False: a missing file is then a mistake
        with pytest.raises(satchel.StorageError, match="no SQLite database at") as caught:
            await store.purge(missing_ok=False)
    finally:
        await store.aclose()
    assert repr(str(path)) in str(caught.value)
    assert not path.exists()
    assert not os.listdir(tmp_path)  # no -wal, no -shm either


async def test_purge_of_a_missing_relative_path_names_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStorage.from_url("sqlite:///var/sessions.db")
    try:
        with pytest.raises(satchel.StorageError) as caught:
            await store.purge(missing_ok=False)
    finally:
        await store.aclose()
    message = str(caught.value)
    assert repr(str(tmp_path / "var" / "sessions.db")) in message
    assert "working directory" in message
    assert f"sqlite:///{tmp_path}/var/sessions.db" in message  # the absolute URL to use instead
    assert not (tmp_path / "var").exists()


async def test_purge_after_this_storage_made_the_file_still_works(tmp_path: Path) -> None:
    path = tmp_path / "made.db"
    store = SQLiteStorage(path)
    try:
        await store.write("gone", b"x", 0.001)
        await anyio.sleep(0.01)
        assert await store.purge() == 1
    finally:
        await store.aclose()


async def test_purge_of_an_existing_file_opened_afresh_works(tmp_path: Path) -> None:
    path = tmp_path / "existing.db"
    writer = SQLiteStorage(path)
    await writer.write("gone", b"x", 0.001)
    await writer.aclose()
    await anyio.sleep(0.01)
    purger = SQLiteStorage(path)
    try:
        assert await purger.purge() == 1
    finally:
        await purger.aclose()


async def test_purge_in_memory_needs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStorage.from_url("sqlite://:memory:")
    try:
        assert await store.purge() == 0
    finally:
        await store.aclose()
    assert not os.listdir(tmp_path)


def test_purge_command_on_a_missing_file_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    satchel_cli = Path(sys.executable).with_name("satchel")
    done = subprocess.run(
        [str(satchel_cli), "purge", f"sqlite:///{path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("satchel: no SQLite database at"), done.stderr
    assert str(path) in done.stderr
    assert "removed" not in done.stdout
    assert not path.exists()
