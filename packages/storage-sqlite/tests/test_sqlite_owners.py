"""SQLiteStorage's owner index (`satchel.OwnerIndex`), the schema upgrade that adds it,
and the mode of the files it creates, each against a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path

import anyio
import pytest
import satchel
from satchel import OwnedEntry
from satchel.testing import Clock
from satchel_sqlite import SQLiteStorage, _sql

pytestmark = pytest.mark.anyio

WORKER = str(Path(__file__).with_name("_sqlite_worker.py"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
async def storage(path: Path, clock: Clock) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(path, namespace="app", clock=clock)
    yield storage
    await storage.aclose()


def by_id(entries: list[OwnedEntry]) -> dict[str, OwnedEntry]:
    found = {entry.id: entry for entry in entries}
    assert len(found) == len(entries), entries  # no id listed twice
    return found


async def listed(storage: SQLiteStorage, owner: str) -> dict[str, bytes]:
    return {id: entry.data for id, entry in by_id(await storage.list_owned(owner)).items()}


def raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql, params).fetchall()


def size(path: str) -> int:
    return os.stat(path).st_size


def owner_column(path: Path, id: str, namespace: str = "app") -> object:
    rows = raw(path, "SELECT owner FROM satchel_sessions WHERE namespace = ? AND id = ?", (namespace, id))
    assert len(rows) == 1, f"{id!r} has no row"
    return rows[0][0]


async def on_writer(storage: SQLiteStorage, fn: Callable[..., object], *args: object) -> None:
    """Run ``fn(*args)`` on the storage's writing connection's own thread."""
    assert storage._handle is not None, "the storage has not opened its file yet"
    conn, _ = storage._handle[0]
    await conn._execute(fn, *args)  # type: ignore[no-untyped-call]


class Statements:
    """The statements the storage's writing connection runs while it is watched."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, sql: str) -> None:
        # call() tightens the busy timeout when a call queued for long; that is not the work
        if sql.startswith("PRAGMA busy_timeout"):
            return
        # Python reports each step of a trigger (the purge hint's) with the text of the
        # statement that fired it: a repeat in a row is that, not a second statement
        if not self.seen or self.seen[-1] != sql:
            self.seen.append(sql)


async def watched(storage: SQLiteStorage, call: Callable[[], Awaitable[object]]) -> list[str]:
    """The statements ``await call()`` runs on the writing connection, in order."""
    statements = Statements()
    assert storage._handle is not None
    _, db = storage._handle[0]
    await on_writer(storage, db.set_trace_callback, statements)
    try:
        await call()
    finally:
        await on_writer(storage, db.set_trace_callback, None)
    return statements.seen


# -- the four methods ----------------------------------------------------------------------


async def test_it_is_an_owner_index_and_compare_and_set(storage: SQLiteStorage) -> None:
    assert isinstance(storage, satchel.OwnerIndex)
    assert isinstance(storage, satchel.CompareAndSet)


async def test_owned_sessions_are_listed_with_their_data_and_expiry(
    storage: SQLiteStorage, path: Path, clock: Clock
) -> None:
    assert await storage.write_owned("a", b"one", 60, owner="ada", expected=None) is True
    assert await storage.write_owned("b", b"two", None, owner="ada", expected=None) is True
    await storage.write("c", b"unowned", 60)

    entries = by_id(await storage.list_owned("ada"))
    assert entries == {
        "a": OwnedEntry("a", b"one", clock.now + 60),
        "b": OwnedEntry("b", b"two", None),
    }
    assert all(type(entry.data) is bytes for entry in entries.values())
    assert await storage.read("a") == b"one"
    assert await storage.read("b") == b"two"
    assert owner_column(path, "a") == "ada"
    assert owner_column(path, "c") is None
    assert await storage.list_owned("nobody") == []


async def test_another_owner_and_another_namespace_are_not_seen(
    storage: SQLiteStorage, path: Path, clock: Clock
) -> None:
    other_namespace = SQLiteStorage(path, namespace="other", clock=clock)
    try:
        await storage.write_owned("a", b"app-ada", 60, owner="ada", expected=None)
        await storage.write_owned("b", b"app-bob", 60, owner="bob", expected=None)
        await other_namespace.write_owned("a", b"other-ada", 60, owner="ada", expected=None)
        await other_namespace.write_owned("z", b"other-ada-z", 60, owner="ada", expected=None)

        assert await listed(storage, "ada") == {"a": b"app-ada"}
        assert await listed(storage, "bob") == {"b": b"app-bob"}
        assert await listed(other_namespace, "ada") == {"a": b"other-ada", "z": b"other-ada-z"}
        assert await listed(other_namespace, "bob") == {}

        assert await storage.invalidate_owned("ada") == 1
        assert await listed(other_namespace, "ada") == {"a": b"other-ada", "z": b"other-ada-z"}
        assert await other_namespace.read("a") == b"other-ada"
        assert await listed(storage, "bob") == {"b": b"app-bob"}
        assert await storage.read("a") is None
    finally:
        await other_namespace.aclose()


async def test_expected_is_compare_and_set_and_a_refused_write_changes_nothing(
    storage: SQLiteStorage, path: Path, clock: Clock
) -> None:
    # expected=None: only when absent
    assert await storage.write_owned("s", b"v1", 60, owner="ada", expected=None) is True
    assert await storage.write_owned("s", b"x", 60, owner="bob", expected=None) is False
    # a stale expected value
    assert await storage.write_owned("s", b"x", 60, owner="bob", expected=b"stale") is False
    assert await storage.read("s") == b"v1"
    assert await listed(storage, "ada") == {"s": b"v1"}
    assert await listed(storage, "bob") == {}

    # the current value: written, and the link moves to the new owner
    assert await storage.write_owned("s", b"v2", 60, owner="bob", expected=b"v1") is True
    assert await listed(storage, "ada") == {}
    assert await listed(storage, "bob") == {"s": b"v2"}

    # a refused write leaves an unowned session unowned
    await storage.write("plain", b"p", 60)
    assert await storage.write_owned("plain", b"x", 60, owner="ada", expected=None) is False
    assert await storage.write_owned("plain", b"x", 60, owner="ada", expected=b"other") is False
    assert owner_column(path, "plain") is None
    assert await storage.write_owned("plain", b"mine", 60, owner="ada", expected=b"p") is True
    assert await listed(storage, "ada") == {"plain": b"mine"}

    # an expired session reads as absent: expected=None takes it over, its old value does not
    await storage.write_owned("old", b"gone", 10, owner="bob", expected=None)
    clock.now += 11
    assert await storage.write_owned("old", b"x", 60, owner="ada", expected=b"gone") is False
    assert await storage.write_owned("old", b"new", 60, owner="ada", expected=None) is True
    assert await listed(storage, "ada") == {"plain": b"mine", "old": b"new"}
    assert await listed(storage, "bob") == {"s": b"v2"}


async def test_a_plain_write_stores_the_session_unowned(
    storage: SQLiteStorage, path: Path, clock: Clock
) -> None:
    await storage.write_owned("w", b"1", 60, owner="ada", expected=None)
    await storage.write("w", b"2", 60)
    await storage.write_owned("cas", b"1", 60, owner="ada", expected=None)
    assert await storage.write_if("cas", b"2", 60, expected=b"1") is True
    await storage.write_owned("expired", b"1", 10, owner="ada", expected=None)
    clock.now += 11
    assert await storage.write_if("expired", b"2", 60, expected=None) is True

    assert await listed(storage, "ada") == {}
    assert await storage.invalidate_owned("ada") == 0
    for id in ("w", "cas", "expired"):
        assert await storage.read(id) == b"2"
        assert owner_column(path, id) is None


async def test_touch_owned_moves_the_expiry_and_keeps_the_link(storage: SQLiteStorage, clock: Clock) -> None:
    await storage.write_owned("s", b"v", 10, owner="ada", expected=None)
    for _ in range(5):
        clock.now += 9
        await storage.touch_owned("s", 10, owner="ada")
    assert by_id(await storage.list_owned("ada")) == {"s": OwnedEntry("s", b"v", clock.now + 10)}
    # a plain touch keeps the link as well: it changes the expiry only
    await storage.touch("s", None)
    assert by_id(await storage.list_owned("ada")) == {"s": OwnedEntry("s", b"v", None)}
    await storage.touch_owned("s", 10, owner="ada")
    clock.now += 11
    await storage.touch_owned("s", 10, owner="ada")  # expired: a no-op, as touch is
    assert await storage.read("s") is None
    assert await storage.list_owned("ada") == []


async def test_invalidate_ends_the_link(storage: SQLiteStorage, path: Path) -> None:
    await storage.write_owned("a", b"1", 60, owner="ada", expected=None)
    await storage.write_owned("b", b"2", 60, owner="ada", expected=None)
    await storage.invalidate("a")
    assert await listed(storage, "ada") == {"b": b"2"}
    assert await storage.invalidate_owned("ada") == 1
    assert raw(path, "SELECT count(*) FROM satchel_sessions") == [(0,)]


async def test_expiry_ends_the_link_and_is_never_counted(
    storage: SQLiteStorage, path: Path, clock: Clock
) -> None:
    await storage.write_owned("short", b"1", 10, owner="ada", expected=None)
    await storage.write_owned("long", b"2", 100, owner="ada", expected=None)
    clock.now += 10  # expires_at == now: expired, as read sees it
    assert await storage.read("short") is None
    assert await listed(storage, "ada") == {"long": b"2"}
    assert await storage.invalidate_owned("ada") == 1
    # the expired row is left to the purge, and is not reported again
    assert raw(path, "SELECT id FROM satchel_sessions") == [("short",)]
    assert await storage.invalidate_owned("ada") == 0
    assert await storage.list_owned("ada") == []
    assert await storage.purge() == 1


@pytest.mark.parametrize("kind", [list, tuple, set, frozenset, lambda ids: dict.fromkeys(ids).keys()])
async def test_keep_spares_those_ids_and_only_those(
    storage: SQLiteStorage, kind: Callable[[list[str]], Collection[str]]
) -> None:
    for i in range(5):
        await storage.write_owned(f"s{i}", b"%d" % i, 60, owner="ada", expected=None)
    await storage.write_owned("bobs", b"b", 60, owner="bob", expected=None)
    await storage.write("plain", b"p", 60)

    keep = kind(["s1", "s3", "bobs", "plain", "nowhere", "s1"])
    assert await storage.invalidate_owned("ada", keep=keep) == 3
    assert await listed(storage, "ada") == {"s1": b"1", "s3": b"3"}
    assert await listed(storage, "bob") == {"bobs": b"b"}
    assert await storage.read("plain") == b"p"
    assert await storage.invalidate_owned("ada", keep=keep) == 0
    assert await storage.invalidate_owned("ada", keep=kind(["s3"])) == 1
    assert await listed(storage, "ada") == {"s3": b"3"}


async def test_keep_with_ids_that_json_and_sql_treat_specially(storage: SQLiteStorage) -> None:
    ids = ['quo"te', "back\\slash", "it's", "[1]", "ünïcødé 🙂", "new\nline", "%", "_", "nul\x00in"]
    for id in ids:
        await storage.write_owned(id, id.encode(), 60, owner="ada", expected=None)
    await storage.write_owned("doomed", b"d", 60, owner="ada", expected=None)
    assert await storage.invalidate_owned("ada", keep=ids) == 1
    assert await listed(storage, "ada") == {id: id.encode() for id in ids}
    assert await storage.invalidate_owned("ada", keep=ids[1:]) == 1
    assert await storage.read(ids[0]) is None


async def test_a_keep_of_more_than_500_ids_is_exact_too(storage: SQLiteStorage) -> None:
    """Beyond 500 kept IDs they travel as one JSON array; IDs with a NUL stay exact."""
    odd = ["nul\x00in", "nul", 'quo"te', "back\\slash", "ünïcødé 🙂", "[1]"]
    for id in [*odd, "doomed", "nul\x00other"]:
        await storage.write_owned(id, b"x", 60, owner="ada", expected=None)
    keep = [*odd, *(f"absent{i}" for i in range(600))]
    assert await storage.invalidate_owned("ada", keep=keep) == 2
    assert set(await listed(storage, "ada")) == set(odd)
    assert await storage.invalidate_owned("ada", keep=keep[1:]) == 1
    assert await storage.read("nul\x00in") is None
    assert await storage.read("nul") == b"x"


async def test_count_and_repeat(storage: SQLiteStorage) -> None:
    for i in range(7):
        await storage.write_owned(f"s{i}", b"x", 60, owner="ada", expected=None)
    assert await storage.invalidate_owned("ada") == 7
    assert await storage.invalidate_owned("ada") == 0
    assert await storage.invalidate_owned("ada", keep={"s1"}) == 0
    assert await storage.invalidate_owned("never-seen") == 0
    for i in range(7):
        assert await storage.read(f"s{i}") is None


ODD_OWNERS = [
    "%",
    "_",
    "a%",
    "a_c",
    "'",
    '"',
    "x'); DROP TABLE satchel_sessions; --",
    "\\",
    "ünïcødé 🙂 用户",
    " ",
    "tab\tand\nnewline",
    "nul\x00byte",
    "o" * 256,
    "o" * 255 + "p",
]


async def test_owners_with_odd_characters_are_kept_apart(storage: SQLiteStorage) -> None:
    # "abc" would match the LIKE patterns "a%" and "a_c"; an owner is compared exactly
    owners = [*ODD_OWNERS, "abc", "nul"]
    for n, owner in enumerate(owners):
        await storage.write_owned(f"s{n}", owner.encode(), 60, owner=owner, expected=None)
    for n, owner in enumerate(owners):
        assert await listed(storage, owner) == {f"s{n}": owner.encode()}, repr(owner)
    for n, owner in enumerate(owners):
        assert await storage.invalidate_owned(owner) == 1, repr(owner)
        assert await storage.read(f"s{n}") is None
        for m in range(n + 1, len(owners)):
            assert await storage.read(f"s{m}") is not None, (repr(owner), repr(owners[m]))


# -- the statements ---------------------------------------------------------------------


async def test_invalidate_owned_is_one_delete_statement(storage: SQLiteStorage) -> None:
    for i in range(20):
        await storage.write_owned(f"s{i}", b"x", 60, owner="ada", expected=None)
    for keep in ((), ("s3",)):
        seen = await watched(storage, partial(storage.invalidate_owned, "ada", keep=keep))
        assert len(seen) == 1, seen
        assert seen[0].startswith("DELETE FROM satchel_sessions "), seen


async def test_write_owned_is_one_statement(storage: SQLiteStorage) -> None:
    await storage.read("-")  # open the file
    seen = await watched(storage, lambda: storage.write_owned("s", b"1", 60, owner="ada", expected=None))
    assert len(seen) == 1, seen
    assert seen[0].startswith("INSERT INTO"), seen
    seen = await watched(storage, lambda: storage.write_owned("s", b"2", 60, owner="ada", expected=b"1"))
    assert len(seen) == 1, seen
    assert seen[0].startswith("UPDATE"), seen
    seen = await watched(storage, lambda: storage.touch_owned("s", 60, owner="ada"))
    assert len(seen) == 1, seen
    assert seen[0].startswith("UPDATE"), seen


def plan(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def walks_the_owner_index(steps: list[str]) -> bool:
    # json_each is a scan of the kept IDs bound as one JSON array, not of the table
    scans = [step for step in steps if step.startswith("SCAN") and "json_each" not in step]
    return not scans and any(f"INDEX {_sql.OWNER_INDEX} " in step for step in steps)


@pytest.mark.parametrize("statement", ["LIST_OWNED", "INVALIDATE_OWNED"])
async def test_list_and_invalidate_walk_the_owner_index(
    storage: SQLiteStorage, path: Path, statement: str
) -> None:
    """Without statistics, SQLite would walk the whole namespace by the primary key."""
    await storage.write_owned("s", b"x", None, owner="ada", expected=None)
    steps = plan(path, getattr(_sql, statement), ("app", "ada", 0))
    assert walks_the_owner_index(steps), steps


@pytest.mark.parametrize("kept", [1, 3, 600])
async def test_invalidate_owned_with_keep_walks_the_owner_index(
    storage: SQLiteStorage, path: Path, kept: int
) -> None:
    for i in range(5):
        await storage.write_owned(f"s{i}", b"x", None, owner="ada", expected=None)
    keep = [f"s{i}" for i in range(kept)]
    seen = await watched(storage, lambda: storage.invalidate_owned("ada", keep=keep))
    assert len(seen) == 1, seen
    if kept > 500:
        assert "json_each" in seen[0]
    steps = plan(path, seen[0])  # the statement as it ran, its parameters spelled out
    assert walks_the_owner_index(steps), steps


@pytest.mark.parametrize("statement", ["INSERT_OWNED_IF_ABSENT", "REPLACE_OWNED_IF"])
async def test_owned_writes_never_scan_the_table(storage: SQLiteStorage, path: Path, statement: str) -> None:
    await storage.write_owned("s", b"x", None, owner="ada", expected=None)
    sql = getattr(_sql, statement)
    count = max([int(n) for n in re.findall(r"\?(\d)", sql)] or [sql.count("?")])
    steps = plan(path, sql, (0,) * count)
    assert not [step for step in steps if step.startswith("SCAN")], steps


async def test_unowned_writes_and_touches_leave_the_owner_index_alone(
    storage: SQLiteStorage, path: Path
) -> None:
    """A plain write of an existing session dirties one page, as before the owner column."""
    for i in range(500):
        await storage.write_owned(f"owned{i:03d}", b"x" * 100, 3600, owner=f"user{i % 50}", expected=None)
        await storage.write(f"plain{i:03d}", b"x" * 100, 3600)
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size: int = db.execute("PRAGMA page_size").fetchone()[0]
    wal = f"{path}-wal"

    async def frames(call: Callable[[], Awaitable[object]]) -> int:
        before = size(wal)
        await call()
        return (size(wal) - before) // (page_size + 24)

    assert await frames(lambda: storage.write("plain250", b"y" * 100, 3600)) == 1
    assert await frames(lambda: storage.write_if("plain251", b"y" * 100, 3600, expected=b"x" * 100)) == 1
    # a new ttl each (a row rewritten with what it holds writes no page), within the
    # purge hint's slack (further, the purge index moves too, as it did before)
    assert await frames(lambda: storage.touch("plain252", 3700)) == 1
    assert await frames(lambda: storage.touch_owned("owned253", 3701, owner="user3")) == 1
    assert await frames(lambda: storage.touch("owned254", 3702)) == 1


async def test_one_owner_of_a_hundred_among_a_hundred_thousand(storage: SQLiteStorage, path: Path) -> None:
    await storage.read("-")  # the schema, for the rows written straight into the file below
    with closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO satchel_sessions (namespace, id, data, expires_at, purge_after, owner) "
            "VALUES ('app', ?, x'00', NULL, NULL, ?)",
            ((f"bulk{i:06d}", None if i % 3 else f"user{i % 997}") for i in range(99_900)),
        )
    for i in range(100):
        assert await storage.write_owned(f"ada{i:03d}", b"a", 3600, owner="ada", expected=None)
    assert raw(path, "SELECT count(*) FROM satchel_sessions") == [(100_000,)]
    assert len(await storage.list_owned("ada")) == 100

    seen = await watched(storage, lambda: storage.invalidate_owned("ada", keep={"ada007"}))
    assert len(seen) == 1, seen
    assert seen[0].startswith("DELETE"), seen
    assert await storage.list_owned("ada") == [OwnedEntry("ada007", b"a", storage._clock() + 3600)]
    assert await storage.invalidate_owned("ada") == 1
    assert raw(path, "SELECT count(*) FROM satchel_sessions") == [(99_900,)]
    assert raw(path, "SELECT count(*) FROM satchel_sessions WHERE id LIKE 'ada%'") == [(0,)]
    assert len(await storage.list_owned("user1")) == len([i for i in range(0, 99_900, 3) if i % 997 == 1])


async def test_invalidate_owned_counts_what_it_deleted(storage: SQLiteStorage) -> None:
    for i in range(100):
        await storage.write_owned(f"s{i}", b"x", 3600, owner="ada", expected=None)
    assert await storage.invalidate_owned("ada", keep=[f"s{i}" for i in range(0, 100, 2)]) == 50
    assert len(await storage.list_owned("ada")) == 50


async def test_in_memory_storage_keeps_owners_too() -> None:
    storage = SQLiteStorage(":memory:")
    try:
        assert await storage.write_owned("s", b"x", 60, owner="ada", expected=None)
        assert [entry.id for entry in await storage.list_owned("ada")] == ["s"]
        assert await storage.invalidate_owned("ada") == 1
    finally:
        await storage.aclose()


async def test_a_locked_file_fails_the_owner_calls_without_the_id(path: Path) -> None:
    id = "secret-session-id-0123456789"
    storage = SQLiteStorage(path, timeout=0.2)
    await storage.write_owned(id, b"x", 60, owner="ada", expected=None)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for call in (
            storage.write_owned(id, b"y", 60, owner="ada", expected=None),
            storage.write_owned(id, b"y", 60, owner="ada", expected=b"x"),
            storage.touch_owned(id, 60, owner="ada"),
            storage.invalidate_owned("ada", keep=[id]),
        ):
            with anyio.fail_after(10), pytest.raises(satchel.StorageError, match="locked") as caught:
                await call
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            assert id not in str(caught.value)
            assert id not in str(caught.value.__cause__)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await storage.aclose()


# -- concurrent writes -------------------------------------------------------------------


async def test_sessions_written_before_invalidate_owned_are_gone_after_it(path: Path) -> None:
    """Tasks on two storages (two connections to the file) write an owner's sessions
    while a third invalidates them: whatever was acknowledged before a call started is
    gone when it returns, and each session is either listed and readable, or neither."""
    writers = [SQLiteStorage(path, namespace="app") for _ in range(2)]
    revoker = SQLiteStorage(path, namespace="app")
    acknowledged: list[str] = []
    done = asyncio.Event()

    async def write(storage: SQLiteStorage, name: str) -> None:
        for i in range(150):
            id = f"{name}-{i}"
            assert await storage.write_owned(id, b"1", 3600, owner="ada", expected=None)
            acknowledged.append(id)
            await storage.write_owned(id, b"2", 3600, owner="ada", expected=b"1")
            await storage.touch_owned(id, 3600, owner="ada")

    async def revoke() -> int:
        deleted = 0
        while not done.is_set():
            before = list(acknowledged)
            deleted += await revoker.invalidate_owned("ada")
            for id in before:
                assert await revoker.read(id) is None, (
                    f"{id} was written before invalidate_owned, yet survived it"
                )
            await asyncio.sleep(0)
        return deleted

    try:
        revoking = asyncio.ensure_future(revoke())
        try:
            await asyncio.gather(*(write(w, f"w{n}t{t}") for n, w in enumerate(writers) for t in range(3)))
        finally:
            done.set()
        deleted = await revoking
        listed_now = by_id(await revoker.list_owned("ada"))
        for id in acknowledged:
            data = await revoker.read(id)
            assert (id in listed_now) == (data is not None), id
            if data is not None:
                assert listed_now[id].data == data
        assert deleted + len(listed_now) == len(acknowledged) == 2 * 3 * 150
    finally:
        for storage in (*writers, revoker):
            await storage.aclose()


def test_processes_write_owned_while_another_invalidates(path: Path) -> None:
    """Two processes insert, rewrite and touch one owner's sessions while this one keeps
    invalidating them: every insert is either deleted once or still listed and readable."""
    processes, tasks, writes = 2, 4, 60
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, "owned", str(path), str(tasks), str(writes)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]

    async def revoke() -> tuple[int, dict[str, OwnedEntry], dict[str, bytes | None]]:
        storage = SQLiteStorage(path, namespace="owners", timeout=30)
        try:
            deleted = 0
            while any(worker.poll() is None for worker in workers):
                deleted += await storage.invalidate_owned("ada")
                await asyncio.sleep(0.005)
            remaining = by_id(await storage.list_owned("ada"))
            ids = [row[0] for row in raw(path, "SELECT id FROM satchel_sessions WHERE namespace = 'owners'")]
            readable = {str(id): await storage.read(str(id)) for id in ids}
            return deleted, remaining, readable
        finally:
            await storage.aclose()

    deleted, remaining, readable = asyncio.run(revoke())
    inserted = 0
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        inserted += int(out)
    assert inserted == processes * tasks * writes
    for id, data in readable.items():
        assert (id in remaining) == (data is not None), id
        if data is not None:
            assert remaining[id].data == data
    assert set(remaining) <= set(readable)
    assert deleted + len(remaining) == inserted


# -- the schema upgrade ----------------------------------------------------------------------

# The schema satchel-sqlite 0.1 wrote (SCHEMA_VERSION 1), verbatim.
V1_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS satchel_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS satchel_sessions (namespace TEXT NOT NULL, id TEXT NOT NULL, "
    "data BLOB NOT NULL, expires_at REAL, purge_after REAL, "
    "PRIMARY KEY (namespace, id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS satchel_sessions_purge ON satchel_sessions (purge_after) "
    "WHERE purge_after IS NOT NULL",
    "CREATE TRIGGER IF NOT EXISTS satchel_sessions_purge_after "
    "AFTER UPDATE OF expires_at ON satchel_sessions "
    "WHEN (NEW.expires_at IS NULL AND OLD.purge_after IS NOT NULL) OR "
    "(NEW.expires_at IS NOT NULL AND (OLD.purge_after IS NULL "
    "OR NEW.expires_at > OLD.purge_after)) "
    "BEGIN UPDATE satchel_sessions SET purge_after = NEW.expires_at + 300.0 "
    "WHERE namespace = NEW.namespace AND id = NEW.id; END",
    "INSERT OR IGNORE INTO satchel_meta (key, value) VALUES ('schema_version', 1)",
)


def write_v1_file(path: Path, now: float) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN")
        for statement in V1_SCHEMA:
            db.execute(statement)
        db.executemany(
            "INSERT INTO satchel_sessions (namespace, id, data, expires_at, purge_after) "
            "VALUES (?, ?, ?, ?, ? + 300.0)",
            [
                ("app", "kept", b"k", now + 3600, now + 3600),
                ("app", "forever", b"f", None, None),
                ("other", "kept", b"o", now + 3600, now + 3600),
                ("app", "expired", b"e", now - 1, now - 1),
            ],
        )
        db.execute("COMMIT")


def schema_of(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[str, str]], object]:
    with closing(sqlite3.connect(path)) as db:
        columns = db.execute("PRAGMA table_info(satchel_sessions)").fetchall()
        objects = db.execute(
            "SELECT type, name FROM sqlite_master WHERE tbl_name LIKE 'satchel%' ORDER BY type, name"
        ).fetchall()
        (version,) = db.execute("SELECT value FROM satchel_meta WHERE key = 'schema_version'").fetchone()
    return columns, objects, version


async def test_a_version_1_file_is_upgraded_in_place_and_keeps_its_sessions(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "v1.db"
    write_v1_file(path, clock.now)
    storage = SQLiteStorage(path, namespace="app", clock=clock)
    try:
        assert await storage.read("kept") == b"k"
        assert await storage.read("forever") == b"f"
        assert await storage.read("expired") is None
        assert await storage.list_owned("ada") == []  # the old sessions belong to nobody

        assert await storage.write_owned("kept", b"mine", 60, owner="ada", expected=b"k")
        assert await storage.write_owned("new", b"n", 60, owner="ada", expected=None)
        assert await listed(storage, "ada") == {"kept": b"mine", "new": b"n"}
        assert await storage.invalidate_owned("ada") == 2
        assert await storage.read("forever") == b"f"
        assert await storage.purge() == 1  # the purge index and trigger still work
    finally:
        await storage.aclose()
    assert raw(path, "SELECT data FROM satchel_sessions WHERE namespace = 'other'") == [(b"o",)]

    fresh = tmp_path / "fresh.db"
    made = SQLiteStorage(fresh)
    await made.read("-")
    await made.aclose()
    assert schema_of(path) == schema_of(fresh)
    columns, objects, version = schema_of(path)
    assert version == _sql.SCHEMA_VERSION == 3
    assert ("index", "satchel_sessions_owner") in objects
    assert [column[1] for column in columns] == [
        "namespace",
        "id",
        "data",
        "expires_at",
        "purge_after",
        "owner",
    ]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def test_processes_opening_a_version_1_file_at_once_upgrade_it_once(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "v1.db"
    write_v1_file(path, clock.now)
    storages = [SQLiteStorage(path, namespace="app", clock=clock) for _ in range(4)]
    try:
        found = await asyncio.gather(*(storage.read("kept") for storage in storages))
        assert found == [b"k"] * 4
        assert await storages[0].write_owned("s", b"x", 60, owner="ada", expected=None)
        assert [entry.id for entry in await storages[3].list_owned("ada")] == ["s"]
    finally:
        for storage in storages:
            await storage.aclose()
    assert schema_of(path)[2] == 3


async def test_a_file_newer_than_version_3_is_still_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    write_v1_file(path, 0)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE satchel_meta SET value = 4 WHERE key = 'schema_version'")
    storage = SQLiteStorage(path)
    with pytest.raises(satchel.StorageError, match="schema version 4, newer"):
        await storage.read("kept")
    await storage.aclose()
    columns, objects, version = schema_of(path)
    assert version == 4
    assert "owner" not in [column[1] for column in columns]
    assert ("index", "satchel_sessions_owner") not in objects


# -- the file's mode -------------------------------------------------------------------------


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@posix_only
async def test_a_file_it_creates_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "private" / "sessions.db"
    storage = SQLiteStorage(path)
    try:
        with umask(0o022):  # the usual umask, under which SQLite alone creates 0644
            await storage.write("s", b"x", 60)
            assert await storage.read("s") == b"x"
        # checked while the storage holds the file open: -wal and -shm exist then
        assert {name: mode(f"{path}{name}") for name in ("", "-wal", "-shm")} == {
            "": 0o600,
            "-wal": 0o600,
            "-shm": 0o600,
        }
    finally:
        await storage.aclose()
    assert mode(path) == 0o600


@posix_only
@pytest.mark.parametrize("empty", [True, False], ids=["empty", "database"])
async def test_an_existing_file_keeps_its_mode(tmp_path: Path, empty: bool) -> None:
    path = tmp_path / "sessions.db"
    if empty:
        path.touch()
    else:
        with closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE app (x)")
    os.chmod(path, 0o644)
    storage = SQLiteStorage(path)
    try:
        await storage.write("s", b"x", 60)
        assert {name: mode(f"{path}{name}") for name in ("", "-wal", "-shm")} == {
            "": 0o644,
            "-wal": 0o644,
            "-shm": 0o644,
        }
    finally:
        await storage.aclose()
    assert mode(path) == 0o644


@posix_only
async def test_purge_still_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    storage = SQLiteStorage(path)
    try:
        assert await storage.purge() == 0
    finally:
        await storage.aclose()
    assert not path.exists()


# -- owners it cannot keep ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "message"),
    [
        (None, "not NoneType"),
        (b"ada", "not bytes"),
        ("", "not 0"),
        ("o" * 257, "not 257"),
        ("ada\ud800", "lone surrogate"),
    ],
)
async def test_an_owner_it_cannot_keep_is_a_value_error_that_does_not_name_it(
    storage: SQLiteStorage, path: Path, owner: object, message: str
) -> None:
    await storage.write("plain", b"p", 60)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.write_owned("s", b"x", 60, owner=owner, expected=None),  # type: ignore[arg-type]
        lambda: storage.write_owned("plain", b"x", 60, owner=owner, expected=b"p"),  # type: ignore[arg-type]
        lambda: storage.touch_owned("plain", 60, owner=owner),  # type: ignore[arg-type]
        lambda: storage.list_owned(owner),  # type: ignore[arg-type]
        lambda: storage.invalidate_owned(owner),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message) as caught:
            await call()
        if isinstance(owner, str) and owner:
            assert owner not in str(caught.value)
    assert raw(path, "SELECT id, data, owner FROM satchel_sessions") == [("plain", b"p", None)]
