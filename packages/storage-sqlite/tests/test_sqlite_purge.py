"""``purge()``: every expired row of every namespace goes, live rows stay, whichever way
it walks; shortened expiries; owned rows; transactions bounded by rows / batch; the
purge hint's bounds; the upgrade from version 2."""

from __future__ import annotations

import contextlib
import math
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from satchel.testing import Clock
from satchel_sqlite import SQLiteStorage, _sql, _storage

pytestmark = pytest.mark.anyio

NAMESPACES = ("", "shop", "admin")


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)


@pytest.fixture
async def stores(tmp_path: Path, clock: Clock) -> AsyncIterator[dict[str, SQLiteStorage]]:
    made = {ns: SQLiteStorage(tmp_path / "purge.db", namespace=ns, clock=clock) for ns in NAMESPACES}
    yield made
    for storage in made.values():
        await storage.aclose()


def raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql, params).fetchall()


def table(path: Path) -> dict[tuple[str, str], tuple[float | None, float | None, str | None]]:
    rows = raw(path, "SELECT namespace, id, expires_at, purge_after, owner FROM satchel_sessions")
    return {(ns, id): (expires, hint, owner) for ns, id, expires, hint, owner in rows}


class Walks:
    """Counts the batches each way of purging runs, and can force one way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {"purge_dead": 0, "purge_band": 0, "purge_range": 0}
        self.monkeypatch = monkeypatch
        for name in self.calls:
            monkeypatch.setattr(_sql, name, self._counted(name, getattr(_sql, name)))

    def _counted(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            self.calls[name] += 1
            return fn(*args)

        return counted

    def force(self, way: str) -> None:
        index = way == "index"
        self.monkeypatch.setattr(_storage, "_PURGE_DEAD_COST", 0 if index else 10**9)
        self.monkeypatch.setattr(_storage, "_PURGE_PAGE_COST", 10**9 if index else 0)

    @property
    def batches(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> Walks:
    return Walks(monkeypatch)


async def fill(stores: dict[str, SQLiteStorage], clock: Clock, count: int, seed: int) -> None:
    """Sessions of every kind, in every namespace: expiring over the next two hours,
    never expiring, written long then shortened, extended often, owned."""
    rng = random.Random(seed)
    for i in range(count):
        storage = stores[NAMESPACES[i % len(NAMESPACES)]]
        id = f"{rng.randrange(10**9):09d}-{i}"
        kind = rng.random()
        if kind < 0.1:
            await storage.write(id, b"forever", None)
        elif kind < 0.25:  # remember me, then not: the expiry shortened by a month
            await storage.write(id, b"long", 30 * 86400)
            await storage.write(id, b"short", rng.uniform(1, 7200))
        elif kind < 0.4:
            await storage.write_owned(id, b"owned", rng.uniform(1, 7200), owner=f"user{i % 7}", expected=None)
        elif kind < 0.5:  # extended on every request for a while
            await storage.write(id, b"active", 600)
            for _ in range(rng.randrange(1, 5)):
                clock.now += rng.uniform(0, 900)
                await storage.touch(id, 600)
        else:
            await storage.write(id, b"plain", rng.uniform(1, 7200))


def check_hints(path: Path) -> None:
    """Every row's hint is at or past its expiry, and at most PURGE_AHEAD past it."""
    for key, (expires, hint, _) in table(path).items():
        if expires is None:
            assert hint is None, key
        else:
            assert hint is not None, key
            assert expires <= hint <= expires + _sql.PURGE_AHEAD, (key, expires, hint)


@pytest.mark.parametrize("way", ["index", "key"])
@pytest.mark.parametrize("later", [0.0, 1800.0, 4000.0, 3 * 86400.0])
async def test_every_expired_row_goes_and_every_live_one_stays(
    tmp_path: Path, stores: dict[str, SQLiteStorage], clock: Clock, walks: Walks, way: str, later: float
) -> None:
    await fill(stores, clock, 3000, seed=int(later) + len(way))
    path = tmp_path / "purge.db"
    check_hints(path)
    clock.now += later
    before = table(path)
    alive = {key for key, (expires, _, _) in before.items() if expires is None or expires > clock.now}
    walks.force(way)
    removed = await stores[""].purge()  # one storage purges the whole file
    after = table(path)
    assert set(after) == alive
    assert {key: before[key] for key in alive} == after  # the live rows untouched
    assert removed == len(before) - len(alive)
    assert walks.calls["purge_range" if way == "index" else "purge_dead"] == 0
    assert await stores["shop"].purge() == 0
    for ns, storage in stores.items():  # what is left still reads
        for row_ns, id in list(alive)[:50]:
            if row_ns == ns:
                assert await storage.read(id) is not None


async def test_purge_chooses_by_the_counts(
    tmp_path: Path, stores: dict[str, SQLiteStorage], clock: Clock, walks: Walks
) -> None:
    storage = stores[""]
    for i in range(2000):
        await storage.write(f"live{i:05}", b"x" * 200, 86400)
    for i in range(20):
        await storage.write(f"dead{i:05}", b"x", 10)
    clock.now += 20
    assert await storage.purge() == 20
    assert walks.calls["purge_range"] == 0  # a few among many: through the index
    for i in range(2000):
        await storage.write(f"dead{i:05}", b"x", 10)
    clock.now += 20
    assert await storage.purge() == 2000
    assert walks.calls["purge_range"] > 0  # half the file: along the key


@pytest.mark.parametrize("way", ["index", "key"])
async def test_batches_are_bounded_by_rows_over_the_batch_size(
    tmp_path: Path, stores: dict[str, SQLiteStorage], clock: Clock, walks: Walks, way: str
) -> None:
    storage = stores["shop"]
    expired, live = 2500, 1200
    for i in range(expired):
        await storage.write(f"e{i:05}", b"x", 60)
    for i in range(live):
        await storage.write(f"l{i:05}", b"x", 86400)
    clock.now += 61  # expired a minute ago: all of them within the band past now
    walks.force(way)
    assert await storage.purge() == expired
    batch = _storage._PURGE_BATCH
    if way == "index":
        # each batch looks at `batch` index entries up to now + PURGE_AHEAD, where only
        # the expired rows are: no live one is passed over
        assert walks.batches <= math.ceil(expired / batch) + 2
    else:
        assert walks.batches <= math.ceil((expired + live) / batch) + 1


async def test_nothing_to_purge_writes_nothing(
    tmp_path: Path, stores: dict[str, SQLiteStorage], clock: Clock, walks: Walks
) -> None:
    storage = stores[""]
    for i in range(100):
        await storage.write(f"l{i}", b"x", 86400)
    await storage.write("forever", b"x", None)
    assert await storage.purge() == 0
    assert walks.batches == 0  # counted in the index on the read connection only


async def test_a_shortened_expiry_is_found_near_now(
    tmp_path: Path, stores: dict[str, SQLiteStorage], clock: Clock, walks: Walks
) -> None:
    storage = stores["shop"]
    await storage.write("sid", b"v", 30 * 86400)
    (hint,) = raw(tmp_path / "purge.db", "SELECT purge_after FROM satchel_sessions")[0]
    assert hint > clock.now + 30 * 86400
    await storage.write("sid", b"v", 60)  # the hint follows it down
    await storage.touch("sid", 30)  # a shortening within the slack leaves it
    check_hints(tmp_path / "purge.db")
    for i in range(3000):
        await storage.write(f"live{i}", b"v", 86400)
    clock.now += 3600
    assert await storage.read("sid") is None
    assert await storage.purge() == 1
    assert walks.calls["purge_range"] == 0  # found by the index walk, not a scan
    assert ("shop", "sid") not in table(tmp_path / "purge.db")


async def test_owned_rows_leave_the_owner_index_with_their_sessions(
    tmp_path: Path, stores: dict[str, SQLiteStorage], clock: Clock, walks: Walks
) -> None:
    storage = stores["shop"]
    for i in range(300):
        await storage.write_owned(f"s{i}", b"v", 10 if i % 3 else 86400, owner=f"u{i % 4}", expected=None)
    clock.now += 11
    assert await storage.purge() == 200
    path = tmp_path / "purge.db"
    in_index = raw(
        path,
        "SELECT count(*) FROM satchel_sessions INDEXED BY satchel_sessions_owner "
        "WHERE namespace = 'shop' AND owner IN ('u0', 'u1', 'u2', 'u3')",
    )
    assert in_index == [(100,)]
    assert raw(path, "PRAGMA integrity_check") == [("ok",)]
    listed = sum([len(await storage.list_owned(f"u{i}")) for i in range(4)])
    assert listed == 100


async def test_hints_stay_within_bounds_whatever_moves_the_expiry(
    tmp_path: Path, stores: dict[str, SQLiteStorage], clock: Clock
) -> None:
    rng = random.Random(7)
    storage = stores[""]
    ids = [f"id{i}" for i in range(40)]
    values: dict[str, bytes] = {}
    for _ in range(3000):
        id = rng.choice(ids)
        ttl = rng.choice([None, 1.0, 59.0, 300.0, 3600.0, 4000.0, 86400.0, 30 * 86400.0, rng.uniform(0, 1e5)])
        op = rng.randrange(4)
        if op == 0:
            await storage.write(id, b"w", ttl)
            values[id] = b"w"
        elif op == 1:
            new = bytes([rng.randrange(256)])
            if await storage.write_if(id, new, ttl, expected=values.get(id)):
                values[id] = new
        elif op == 2:
            await storage.touch(id, ttl)
        else:
            new = bytes([rng.randrange(256)])
            if await storage.write_owned(id, new, ttl, owner="o", expected=values.get(id)):
                values[id] = new
        if await storage.read(id) is None:
            values.pop(id, None)
        clock.now += rng.choice([0.0, 1.0, 100.0, 1000.0])
    check_hints(tmp_path / "purge.db")


async def test_the_hint_is_on_the_grid_and_never_below_the_expiry(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "grid.db"
    for now, ttl in [(1_700_000_000.0, 3600.0), (0.0, 1.0), (-5000.0, 100.0), (-3900.0, 0.0), (0.0, 1e300)]:
        # (-3900 + 0 + PURGE_SLACK is a multiple of the step below zero: the hint is itself)
        clock.now = now
        storage = SQLiteStorage(path, clock=clock)
        try:
            await storage.write("id", b"v", ttl)
            ((expires, hint),) = raw(path, "SELECT expires_at, purge_after FROM satchel_sessions")
            assert expires <= hint <= expires + _sql.PURGE_AHEAD
            if ttl < 1e300:
                assert hint % _sql.PURGE_STEP == 0
                assert expires + _sql.PURGE_SLACK <= hint <= expires + _sql.PURGE_SLACK + _sql.PURGE_STEP
            assert await storage.read("id") == (b"v" if ttl else None)
            await storage.invalidate("id")
        finally:
            await storage.aclose()


# -- the upgrade from version 2 -----------------------------------------------------------

V2_TRIGGER = (
    "CREATE TRIGGER satchel_sessions_purge_after "
    "AFTER UPDATE OF expires_at ON satchel_sessions "
    "WHEN (NEW.expires_at IS NULL AND OLD.purge_after IS NOT NULL) OR "
    "(NEW.expires_at IS NOT NULL AND (OLD.purge_after IS NULL "
    "OR NEW.expires_at > OLD.purge_after)) "
    "BEGIN UPDATE satchel_sessions SET purge_after = NEW.expires_at + 300.0 "
    "WHERE namespace = NEW.namespace AND id = NEW.id; END"
)


def triggers(path: Path) -> list[tuple[str, str]]:
    return raw(path, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")


async def test_a_version_2_file_gets_the_new_trigger_and_its_shortened_rows_fixed(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "v2.db"
    fresh = SQLiteStorage(tmp_path / "fresh.db")
    await fresh.read("-")
    await fresh.aclose()
    # a version 2 file as satchel-sqlite wrote it: the old trigger, hints not on the grid
    storage = SQLiteStorage(path, clock=clock)
    await storage.read("-")
    await storage.aclose()
    now = clock.now
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("DROP TRIGGER satchel_sessions_purge_after")
        db.execute(V2_TRIGGER)
        db.execute("UPDATE satchel_meta SET value = 2 WHERE key = 'schema_version'")
        db.executemany(
            "INSERT INTO satchel_sessions (namespace, id, data, expires_at, purge_after) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                ("", "live", b"l", now + 3600, now + 3900),
                ("", "forever", b"f", None, None),
                ("", "shortened", b"s", now + 60, now + 30 * 86400 + 300),
                ("", "expired", b"e", now - 10, now + 290),
            ],
        )
    storage = SQLiteStorage(path, clock=clock)
    try:
        assert await storage.read("live") == b"l"
        assert triggers(path) == triggers(tmp_path / "fresh.db")
        assert raw(path, "SELECT value FROM satchel_meta WHERE key = 'schema_version'") == [(3,)]
        rows = table(path)
        assert rows[("", "live")][1] == now + 3900  # left as it was, off the grid
        assert rows[("", "shortened")][1] <= now + 60 + _sql.PURGE_AHEAD  # brought back
        check_hints(path)
        clock.now += 120
        assert await storage.purge() == 2
        assert sorted(id for _, id in table(path)) == ["forever", "live"]
    finally:
        await storage.aclose()


async def test_purge_removes_a_session_whose_expiry_was_shortened(tmp_path: Path) -> None:
    """A session whose expiry was shortened (a long "remember me" TTL rewritten with a short one)
    is removed by purge() once expired: purge() removes every expired session, not only
    those whose first expiry has passed."""
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


async def test_purge_walks_the_key_or_the_index_in_ranges_never_scanning_the_table(tmp_path: Path) -> None:
    """Every statement purge() runs searches the primary key or an index by ranges and never scans
    the table, so a purge costs what it removes, not the size of the file."""
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
    """A purge over several batches of interleaved live and expired rows, in two namespaces and
    with an empty ID, removes exactly the expired rows and keeps every live one."""
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
