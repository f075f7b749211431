"""The timeout of a SQLiteStorage is a deadline for each call, against a real SQLite file.

A call fails with StorageError within its own timeout, however many calls queue behind a
write lock another connection holds and however long the first open took; reads never wait
behind a blocked write (WAL readers do not wait for writers); a timeout SQLite cannot count
is a ConfigError up front.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
import satchel
from satchel_sqlite import SQLiteStorage

pytestmark = pytest.mark.anyio


async def test_infinite_timeout_is_a_config_error_not_an_overflow(tmp_path: Path) -> None:
    """timeout=inf in a URL is refused up front, or at least fails the first call as a
    StorageError: it never overflows inside the driver."""
    url = f"sqlite:///{tmp_path}/s.db?timeout=inf"
    try:
        store = SQLiteStorage.from_url(url)
    except satchel.ConfigError:
        return  # acceptable: refused up front
    try:
        # otherwise the first operation must at least fail as a StorageError
        with pytest.raises(satchel.StorageError):
            await store.read("x")
    finally:
        await store.aclose()


@pytest.mark.parametrize("timeout", ["inf", "-inf", "nan", "1e300", "2147484"])
def test_timeout_beyond_what_sqlite_can_count_is_a_config_error(tmp_path: Path, timeout: str) -> None:
    """A timeout SQLite cannot count (infinite, not a number, or past its millisecond counter) is a
    ConfigError naming the timeout, in a URL and as an argument alike."""
    with pytest.raises(satchel.ConfigError, match="timeout"):
        SQLiteStorage.from_url(f"sqlite:///{tmp_path}/s.db?timeout={timeout}")
    with pytest.raises(satchel.ConfigError, match="timeout"):
        SQLiteStorage(tmp_path / "s.db", timeout=float(timeout))


async def test_a_read_does_not_wait_behind_a_write_blocked_on_the_lock(tmp_path: Path) -> None:
    """A read answers at once while a write of the same storage waits for a lock another connection
    holds: WAL readers never wait for a writer, so a read must not queue behind the blocked
    write."""
    path = tmp_path / "s.db"
    store = SQLiteStorage(path, timeout=1.0)
    await store.write("r", b"v", None)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    try:
        writer = asyncio.ensure_future(store.write("w", b"1", 60))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        assert await store.read("r") == b"v"
        waited = time.monotonic() - started
        # WAL readers never wait for a writer; this read queued behind the blocked write
        assert waited < 0.5, f"a read waited {waited:.2f}s behind a blocked write"
        with pytest.raises(satchel.StorageError):
            await writer
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.aclose()


async def test_queued_writes_fail_within_the_timeout_not_a_multiple_of_it(tmp_path: Path) -> None:
    """Writes queued behind a lock another connection holds each fail within the timeout, as
    documented: the last of four does not wait four timeouts."""
    path = tmp_path / "s.db"
    store = SQLiteStorage(path, timeout=0.5)
    await store.write("warm", b"v", None)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:

        async def timed(i: int) -> float:
            started = time.monotonic()
            with pytest.raises(satchel.StorageError):
                await store.write(f"id{i}", b"v", 60)
            return time.monotonic() - started

        waits = await asyncio.gather(*(timed(i) for i in range(4)))
        # timeout=0.5 is documented as how long a write waits; the 4th waited ~2 s
        assert max(waits) < 0.5 * 1.8, f"waits: {[round(w, 2) for w in waits]}"
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.aclose()


async def test_a_call_queued_behind_the_open_fails_by_its_own_deadline(tmp_path: Path) -> None:
    """The first call opens the file while another connection holds the write lock: the
    open may use the whole timeout, and the call must not then wait a second one."""
    path = tmp_path / "s.db"
    first = SQLiteStorage(path)
    await first.read("create the schema")
    await first.aclose()
    store = SQLiteStorage(path, timeout=0.5)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(satchel.StorageError, match="raise the timeout"):
            await store.write("w", b"1", 60)
        assert time.monotonic() - started < 0.5 * 1.8
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.aclose()
