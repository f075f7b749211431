"""Regressions from a review of satchel-sqlite, each against a real SQLite file: the
timeout as a deadline, reads beside a blocked write, purge after a shortened expiry,
aclose during the first open, paths and timeouts refused up front."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import satchel
from satchel_sqlite import SQLiteStorage, _sql

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_purge_removes_a_session_whose_expiry_was_shortened(tmp_path: Path) -> None:
    # A "remember me" session (long TTL) rewritten with a short TTL, then expired.
    clock = Clock()
    store = SQLiteStorage(tmp_path / "s.db", clock=clock)
    try:
        await store.write("sid", b"v", 30 * 86400)
        await store.write("sid", b"v", 60)
        clock.now += 3600
        assert await store.read("sid") is None  # it is expired ...
        removed = await store.purge()  # ... and purge() promises "every expired session"
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
            rows = db.execute("SELECT count(*) FROM satchel_sessions").fetchone()[0]
        assert (removed, rows) == (1, 0)
    finally:
        await store.aclose()


async def test_infinite_timeout_is_a_config_error_not_an_overflow(tmp_path: Path) -> None:
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


async def test_a_read_does_not_wait_behind_a_write_blocked_on_the_lock(tmp_path: Path) -> None:
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


async def test_aclose_during_the_first_open_closes_the_storage(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    store = SQLiteStorage(tmp_path / "s.db")
    first = asyncio.ensure_future(store.read("x"))
    await asyncio.sleep(0.001)  # the first operation is opening the file
    await store.aclose()
    with contextlib.suppress(satchel.StorageError):
        await first
    # what the cut-short open made is closed: no connection thread is left behind
    await asyncio.sleep(0.2)
    left = [t for t in threading.enumerate() if t not in before and "connection_worker" in t.name]
    assert left == []
    # and aclose() is not final: the next call opens the file again
    assert await store.read("x") is None
    await store.aclose()


async def test_empty_path_is_refused_rather_than_a_private_temporary_database(tmp_path: Path) -> None:
    # sqlite3.connect("") opens a private temporary database, yet the storage declares
    # persistent=True: data written and "persisted" is gone on reopen.
    try:
        store = SQLiteStorage("")
    except satchel.ConfigError:
        return
    try:
        assert not store.capabilities.persistent, "'' declared persistent"
    finally:
        await store.aclose()


@pytest.mark.parametrize("timeout", ["inf", "-inf", "nan", "1e300", "2147484"])
def test_timeout_beyond_what_sqlite_can_count_is_a_config_error(tmp_path: Path, timeout: str) -> None:
    with pytest.raises(satchel.ConfigError, match="timeout"):
        SQLiteStorage.from_url(f"sqlite:///{tmp_path}/s.db?timeout={timeout}")
    with pytest.raises(satchel.ConfigError, match="timeout"):
        SQLiteStorage(tmp_path / "s.db", timeout=float(timeout))


@pytest.mark.parametrize("path", ["", "var/", "/tmp/"])
def test_a_path_that_names_no_file_is_a_config_error(path: str) -> None:
    with pytest.raises(satchel.ConfigError, match="names"):
        SQLiteStorage(path)


async def test_purge_walks_the_key_or_the_index_in_ranges_never_scanning_the_table(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "s.db")
    await store.write("id", b"v", None)
    try:
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
            for sql, params in [
                (_sql.PURGE_NEXT_START, ("", "", 1000)),
                (_sql.PURGE_RANGE, ("", "", "a", "b", 0.0)),
                (_sql.PURGE_REST, ("", "", 0.0)),
                (_sql.PURGE_CANDIDATES, (0.0, 1.0)),
                (_sql.PURGE_SOME, (0.0, 1000)),
                (_sql.PURGE_BAND_NEXT_START, (0.0, "", "", 1.0, 1000)),
                (_sql.PURGE_BAND, (0.0, "", "", 1.0, "a", "b", 1.0, 0.0)),
                (_sql.PURGE_BAND_REST, (0.0, "", "", 1.0, 0.0)),
            ]:
                plan = [row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                assert plan, sql
                assert not [step for step in plan if step.startswith("SCAN")], plan
                assert [step for step in plan if step.startswith("SEARCH")], plan
    finally:
        await store.aclose()


async def test_purge_over_several_batches_keeps_every_live_row(tmp_path: Path) -> None:
    clock = Clock()
    one = SQLiteStorage(tmp_path / "s.db", namespace="one", clock=clock)
    two = SQLiteStorage(tmp_path / "s.db", namespace="two", clock=clock)
    try:
        for i in range(2500):  # interleaved live and expired rows over three batches
            await (one if i % 2 else two).write(f"id{i:05}", b"v", 10 if i % 3 else None)
        await one.write("", b"empty id, expired", 10)
        clock.now += 11
        expected = sum(1 for i in range(2500) if i % 3) + 1
        assert await one.purge() == expected
        live = [f"id{i:05}" for i in range(2500) if not i % 3]
        with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
            kept = [row[0] for row in db.execute("SELECT id FROM satchel_sessions ORDER BY id")]
        assert kept == live
        assert await two.purge() == 0
    finally:
        await one.aclose()
        await two.aclose()


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
