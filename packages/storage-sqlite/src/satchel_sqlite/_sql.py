"""The schema and the statements, and the functions that run on the connection's thread.

Every function here is synchronous and runs whole on the connection's own thread, so one
request costs one hop to that thread however many statements it runs, and no other task's
statement can land inside a transaction opened here.
"""

# The SQL below is built from module constants only; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "SCHEMA_VERSION",
    "Connection",
    "DeadlinePassed",
    "SchemaTooNew",
    "band_start",
    "call",
    "change",
    "connect",
    "invalidate_owned",
    "is_busy",
    "list_owned",
    "purge_band",
    "purge_dead",
    "purge_plan",
    "purge_range",
    "read",
    "write_if",
]

log = logging.getLogger("satchel.sqlite")

T = TypeVar("T")

# 1: the sessions table, its purge index and trigger. 2: the owner column and its index.
# 3: purge_after on a grid (PURGE_STEP), and brought back when an expiry is shortened.
SCHEMA_VERSION = 3
MIN_SQLITE = (3, 24, 0)
TABLE = "satchel_sessions"
# How far purge_after runs ahead of expires_at; see the trigger below.
PURGE_SLACK = 300.0
PURGE_STEP = 3600.0
# The furthest purge_after is ever ahead of expires_at: PURGE_SLACK + PURGE_STEP, and a
# minute for rounding. A row that expired by `now` has purge_after <= now + PURGE_AHEAD.
PURGE_AHEAD = PURGE_SLACK + PURGE_STEP + 60.0

# A meta table rather than PRAGMA user_version: the file may be an application's own
# database, and user_version belongs to the application's migrations.
#
# expires_at (unix seconds, shared by every process on the machine; NULL: never) decides
# whether a row is alive. The purge walks an index on purge_after instead, which is
# never below expires_at and moves only when expires_at passes it, then jumps ahead to
# the first multiple of PURGE_STEP past expires_at + PURGE_SLACK: rewriting a session's
# expiry on every request then leaves the index alone almost every time. An index on
# expires_at itself would move one entry at a random place per write, and that page
# write doubled the cost of a write. Since version 3 it also moves when an expiry is
# shortened so far that purge_after would be more than PURGE_AHEAD ahead of it, so a
# dead row always sits within PURGE_AHEAD of `now` in the index, where `purge()` looks.
#
# Why a grid: the index orders rows by (purge_after, namespace, id), so the rows that
# share a hint sit in key order, as they do in the table. `purge()` deletes the dead rows
# of one key range per transaction; with a hint of its own per row, their index entries
# were scattered over the whole index, one page written per row deleted (20 to 30 s for
# 500,000 rows among 10^6 on the bench machine); on the grid they are a few short runs,
# one per hour of expiries.
#
# owner (NULL: the session belongs to no owner) links a session to its owner in the row
# itself, so the link is written, expired and deleted with the session, atomically. Its
# index is partial: a row without an owner has no entry, so the writes of unowned
# sessions never touch it, and an owned session's entry moves only when its row is
# rewritten (not on touch, which leaves the owner alone).


def _hint(expiry: str) -> str:
    """SQL for the purge hint of ``expiry`` (NULL for NULL): a multiple of PURGE_STEP at
    most PURGE_STEP past ``expiry + PURGE_SLACK`` and not before it (for times after 1970,
    the first one past it). CAST truncates toward zero, so below zero the ``>= 0`` term
    adds nothing and the truncation rounds up; ``max`` keeps the hint at or past the
    expiry where the integer part would overflow."""
    ahead = f"({expiry} + {PURGE_SLACK})"
    return f"max({ahead}, (CAST({ahead} / {PURGE_STEP} AS INTEGER) + ({ahead} >= 0)) * {PURGE_STEP})"


_TRIGGER = (
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_purge_after AFTER UPDATE OF expires_at ON {TABLE} "
    "WHEN (NEW.expires_at IS NULL AND OLD.purge_after IS NOT NULL) OR "
    "(NEW.expires_at IS NOT NULL AND (OLD.purge_after IS NULL "
    f"OR NEW.expires_at > OLD.purge_after OR NEW.expires_at + {PURGE_AHEAD} < OLD.purge_after)) "
    f"BEGIN UPDATE {TABLE} SET purge_after = {_hint('NEW.expires_at')} "
    "WHERE namespace = NEW.namespace AND id = NEW.id; END"
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS satchel_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    # owner is last, where ALTER TABLE puts it in a file migrated from version 1.
    f"CREATE TABLE IF NOT EXISTS {TABLE} (namespace TEXT NOT NULL, id TEXT NOT NULL, "
    "data BLOB NOT NULL, expires_at REAL, purge_after REAL, owner TEXT, "
    "PRIMARY KEY (namespace, id)) WITHOUT ROWID",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_purge ON {TABLE} (purge_after) WHERE purge_after IS NOT NULL",
    _TRIGGER,
    f"INSERT OR IGNORE INTO satchel_meta (key, value) VALUES ('schema_version', {SCHEMA_VERSION})",
)
# What takes a file from the version of the key to the next one, in the transaction
# that opened it; the meta row is updated after each step.
_UPGRADES = {
    1: (f"ALTER TABLE {TABLE} ADD COLUMN owner TEXT",),
    # The trigger is replaced; the rows whose expiry was shortened under the old one get
    # their hint back within PURGE_AHEAD (reading the table once). The other rows keep
    # theirs, off the grid, until their expiry next overtakes it.
    2: (
        f"DROP TRIGGER IF EXISTS {TABLE}_purge_after",
        _TRIGGER,
        f"UPDATE {TABLE} SET purge_after = {_hint('expires_at')} "
        f"WHERE purge_after > expires_at + {PURGE_AHEAD}",
    ),
}
# Created once the file is at SCHEMA_VERSION, whether it was new or upgraded: the
# column it covers does not exist in a version 1 file before the upgrade.
OWNER_INDEX = f"{TABLE}_owner"
_INDEXES = (
    f"CREATE INDEX IF NOT EXISTS {OWNER_INDEX} ON {TABLE} (namespace, owner) WHERE owner IS NOT NULL",
)

_ALIVE = "(expires_at IS NULL OR expires_at > ?)"
# Every write sets owner, to NULL or to a bound parameter: a plain write stores an
# unowned value, dropping any link the row had. Setting NULL over NULL leaves the
# partial owner index alone (SQLite skips a partial index's entry when the row is
# outside it before and after), so an unowned write costs what it did before.
_NO_OWNER = "NULL"
_OWNER = "?6"  # after the five parameters the other insert statements take


def _insert(owner: str) -> str:
    return (
        f"INSERT INTO {TABLE} (namespace, id, data, expires_at, purge_after, owner) "
        f"VALUES (?1, ?2, ?3, ?4, {_hint('?4')}, {owner}) "
        "ON CONFLICT (namespace, id) DO UPDATE SET data = excluded.data, "
        "expires_at = excluded.expires_at, owner = excluded.owner"
    )


READ = f"SELECT data FROM {TABLE} WHERE namespace = ? AND id = ? AND {_ALIVE}"
UPSERT = _insert(_NO_OWNER)
# expected=None: insert, or take over a row that has expired (it reads as absent).
_IF_EXPIRED = f" WHERE {TABLE}.expires_at <= ?5"
INSERT_IF_ABSENT = _insert(_NO_OWNER) + _IF_EXPIRED
INSERT_OWNED_IF_ABSENT = _insert(_OWNER) + _IF_EXPIRED


def _replace_if(owner: str) -> str:
    return (
        f"UPDATE {TABLE} SET data = ?, expires_at = ?, owner = {owner} "
        f"WHERE namespace = ? AND id = ? AND data = ? AND {_ALIVE}"
    )


REPLACE_IF = _replace_if(_NO_OWNER)
REPLACE_OWNED_IF = _replace_if("?")
# The usual owned update: the owner it already has. Leaving owner out of SET leaves the
# owner index alone; assigning it, even the same value, rewrites the entry (67 against
# 50 us a write, measured in bench_revocation's reading).
REPLACE_SAME_OWNER_IF = (
    f"UPDATE {TABLE} SET data = ?, expires_at = ? "
    f"WHERE namespace = ? AND id = ? AND data = ? AND {_ALIVE} AND owner = ?"
)
# Leaves owner alone: the link stays, and moves with the row's expiry.
TOUCH = f"UPDATE {TABLE} SET expires_at = ? WHERE namespace = ? AND id = ? AND {_ALIVE}"
# Both name the owner index. Without statistics (ANALYZE) SQLite's planner prefers the
# primary key's namespace prefix, which walks every session of the namespace, over an
# index it would also have to look rows up from; INDEXED BY fixes the plan (and fails
# loudly rather than scan, should the index ever be missing). `owner = ?` implies the
# partial index's `owner IS NOT NULL`. The clauses invalidate_owned appends use plain
# `?`, which SQLite numbers on from ?3.
_OWNED = (
    f"{TABLE} INDEXED BY {OWNER_INDEX} WHERE namespace = ?1 AND owner = ?2 "
    "AND (expires_at IS NULL OR expires_at > ?3)"
)
LIST_OWNED = f"SELECT id, data, expires_at FROM {_OWNED}"
# An expired row is not counted and not deleted here: it is already gone for every
# reader, and the purge removes it. `keep` appends its clauses (see invalidate_owned).
INVALIDATE_OWNED = f"DELETE FROM {_OWNED}"
# Up to this many kept IDs are bound one parameter each: exact for any text, and well
# under SQLite's lowest limit on parameters (999).
_KEEP_BOUND = 500
# More are bound as one JSON array, so no count of IDs reaches that limit.
_KEEP_JSON = " AND id NOT IN (SELECT value FROM json_each(?))"
DELETE = f"DELETE FROM {TABLE} WHERE namespace = ? AND id = ?"
# The request path's purge: a range at the low end of the index, every row in it dead
# (expires_at <= purge_after <= now). Bounded work, never a scan of the table.
PURGE_SOME = (
    f"DELETE FROM {TABLE} WHERE (namespace, id) IN (SELECT namespace, id FROM {TABLE} "
    "WHERE purge_after <= ?1 ORDER BY purge_after LIMIT ?2)"
)
# `purge()` first counts, in the purge index alone, the rows up to now (all dead) and from
# there up to now + PURGE_AHEAD (every other dead row is among them). Few against the
# file's pages: it walks the index, PURGE_SOME up to now, then that band a batch at a
# time, deleting the rows expired there (passed less than PURGE_AHEAD ago, or shortened).
PURGE_CANDIDATES = (
    f"SELECT count(*) - count(purge_after > ?1 OR NULL), count(purge_after > ?1 OR NULL) "
    f"FROM {TABLE} WHERE purge_after <= ?2"
)
_INDEX_KEY = "(purge_after, namespace, id)"
PURGE_BAND_NEXT_START = (
    f"SELECT purge_after, namespace, id FROM {TABLE} WHERE {_INDEX_KEY} >= (?1, ?2, ?3) "
    "AND purge_after <= ?4 ORDER BY purge_after, namespace, id LIMIT 1 OFFSET ?5"
)
PURGE_BAND = (
    f"DELETE FROM {TABLE} WHERE {_INDEX_KEY} >= (?1, ?2, ?3) AND {_INDEX_KEY} < (?4, ?5, ?6) "
    "AND purge_after <= ?7 AND expires_at <= ?8"
)
PURGE_BAND_REST = (
    f"DELETE FROM {TABLE} WHERE {_INDEX_KEY} >= (?1, ?2, ?3) AND purge_after <= ?4 AND expires_at <= ?5"
)
# Many: it walks the primary key a range of `limit` rows at a time, deleting what has
# expired in each, so one transaction writes a run of table pages, and (purge_after on
# its grid) a few runs of index pages. A range ends `limit` rows on from its start.
_KEY = "(namespace, id)"
PURGE_NEXT_START = (
    f"SELECT namespace, id FROM {TABLE} WHERE {_KEY} >= (?1, ?2) ORDER BY namespace, id LIMIT 1 OFFSET ?3"
)
PURGE_RANGE = f"DELETE FROM {TABLE} WHERE {_KEY} >= (?1, ?2) AND {_KEY} < (?3, ?4) AND expires_at <= ?5"
PURGE_REST = f"DELETE FROM {TABLE} WHERE {_KEY} >= (?1, ?2) AND expires_at <= ?3"


class SchemaTooNew(Exception):
    """The file was set up by a newer satchel-sqlite."""

    def __init__(self, found: object) -> None:
        super().__init__(found)
        self.found = found


class DeadlinePassed(TimeoutError):
    """The call's timeout ran out while it waited behind this connection's earlier calls."""


class Connection(sqlite3.Connection):
    """A connection that remembers its full busy timeout and the one in force now."""

    full_ms: int
    busy_ms: int

    def wait_at_most(self, ms: int) -> None:
        if ms != self.busy_ms:
            self.execute(f"PRAGMA busy_timeout = {ms}")
            self.busy_ms = ms


def is_busy(exc: BaseException) -> bool:
    """Whether SQLite gave up waiting for another connection's lock."""
    message = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


def _ms_left(deadline: float) -> int:
    left = int((deadline - time.monotonic()) * 1000)
    if left <= 0:
        raise DeadlinePassed("the timeout ran out while this call waited for its turn on the connection")
    return left


def call(db: Connection, deadline: float, fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(db, *args)``, waiting for another connection's lock only until ``deadline``
    (a ``time.monotonic()`` value taken when the storage was called).

    Calls queue for the connection's thread; one that waited there gets only the time it
    has left, so a queue of writes behind a locked file all fail by their own deadlines,
    not one timeout after another. A few milliseconds of queueing (the usual case under
    load) leave the busy timeout alone: changing it is one more statement.
    """
    db.wait_at_most(_wait_ms(_ms_left(deadline), db.full_ms))
    return fn(db, *args)


def _wait_ms(left: int, full: int) -> int:
    return left if left < full - min(50, full // 10) else full


def connect(path: str, timeout: float, deadline: float, synchronous: str | None) -> Connection:
    """Open ``path``; with ``synchronous``, the writing connection: switch the file to WAL
    and create the schema if it is missing; without, a connection that only reads.

    A missing parent directory is created, as the file itself would be.
    """
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise sqlite3.NotSupportedError(
            f"SQLite {sqlite3.sqlite_version} is older than {'.'.join(map(str, MIN_SQLITE))}, "
            "the first with UPSERT; use a Python built against a newer SQLite"
        )
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _create_private(path)
    full = int(timeout * 1000)
    wait = _wait_ms(_ms_left(deadline), full)
    db = sqlite3.connect(
        path, timeout=wait / 1000, isolation_level=None, check_same_thread=False, factory=Connection
    )
    try:
        db.full_ms, db.busy_ms = full, wait  # connect() set the busy timeout to wait
        if synchronous is None:
            db.execute("PRAGMA query_only = ON")
        else:
            _patiently(db, deadline, _setup, synchronous)
    except BaseException:
        db.close()
        raise
    return db


def _create_private(path: str) -> None:
    """Create ``path`` empty, readable and writable by its owner only, if it is missing.

    The file holds session IDs, which are credentials; SQLite would create it 0644 (less
    the umask). It gives the ``-wal`` and ``-shm`` files the main file's mode, so they
    follow. An existing file, or one another process creates first, keeps its mode: the
    deployment chose it. SQLite takes an empty file as a new database.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _setup(db: sqlite3.Connection, synchronous: str) -> None:
    # WAL: readers never wait for the writer, and a killed writer leaves no torn page.
    (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    if mode != "wal":
        (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode not in ("wal", "memory"):
            log.warning(
                "a SQLite file stays in journal mode %r (its file system refused WAL): "
                "readers will wait for writers; move the file to a local disk",
                mode,
            )
    # NORMAL in WAL loses nothing when a process dies; FULL also fsyncs every commit.
    db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    _migrate(db)


def _patiently(
    db: sqlite3.Connection, deadline: float, step: Callable[[sqlite3.Connection, str], None], arg: str
) -> None:
    """Run ``step``, retrying while another process holds the lock, until ``deadline``.

    Switching a file to WAL, and reading it while another process converts or recovers
    it, can report the file locked without waiting on busy_timeout: several workers
    opening one fresh file at once do exactly that.
    """
    pause = 0.002
    while True:
        try:
            step(db, arg)
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _migrate(db: sqlite3.Connection) -> None:
    if _version(db) == SCHEMA_VERSION:
        return  # the usual open: no write lock taken
    # One write transaction creates or upgrades the schema: another process opening the
    # file at the same time waits, then finds it done; a failure leaves the file as it was.
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        found = _version(db)  # read again under the lock: another process may have upgraded it
        while isinstance(found, int) and found in _UPGRADES:
            for statement in _UPGRADES[found]:
                db.execute(statement)
            found += 1
            db.execute("UPDATE satchel_meta SET value = ? WHERE key = 'schema_version'", (found,))
        if found != SCHEMA_VERSION:
            raise SchemaTooNew(found)
        for statement in _INDEXES:
            db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _version(db: sqlite3.Connection) -> object:
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'satchel_meta'"
    ).fetchone()
    if exists is None:
        return None
    row = db.execute("SELECT value FROM satchel_meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else row[0]


def read(db: sqlite3.Connection, namespace: str, id: str, now: float) -> bytes | None:
    row = db.execute(READ, (namespace, id, now)).fetchone()
    return None if row is None else row[0]


def change(
    db: sqlite3.Connection, sql: str, params: tuple[object, ...], purge: tuple[float, int] | None
) -> int:
    """Run one write statement in its own write transaction; returns the rows it changed.

    A lone write statement outside a transaction takes the write lock before it reads,
    exactly as ``BEGIN IMMEDIATE`` does, so a busy file is waited for (busy_timeout)
    instead of failing on a read-to-write upgrade. Spelling BEGIN/COMMIT out costs two
    more trips through the GIL per write, which shows at 50 concurrent requests. When
    ``purge`` (now, limit) is given, the statement and a bounded purge of expired rows
    share one ``BEGIN IMMEDIATE`` transaction.
    """
    if purge is None:
        return db.execute(sql, params).rowcount
    db.execute("BEGIN IMMEDIATE")
    try:
        changed = db.execute(sql, params).rowcount
        db.execute(PURGE_SOME, purge)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return changed


def write_if(
    db: sqlite3.Connection,
    namespace: str,
    id: str,
    data: bytes,
    expires_at: float | None,
    expected: bytes | None,
    now: float,
    owner: str | None = None,
) -> bool:
    """Compare-and-set, as one statement; with ``owner``, the row is linked to it in
    that same statement, and without, any link it had is dropped."""
    params: tuple[object, ...]
    if expected is None:
        params = (namespace, id, data, expires_at, now)
        if owner is None:
            sql = INSERT_IF_ABSENT
        else:
            sql, params = INSERT_OWNED_IF_ABSENT, (*params, owner)
    elif owner is None:
        sql, params = REPLACE_IF, (data, expires_at, namespace, id, expected, now)
    else:
        same = (data, expires_at, namespace, id, expected, now, owner)
        if change(db, REPLACE_SAME_OWNER_IF, same, None) == 1:
            return True
        # another owner, or none (each statement is a compare-and-set of its own: atomic)
        sql, params = REPLACE_OWNED_IF, (data, expires_at, owner, namespace, id, expected, now)
    return change(db, sql, params, None) == 1


def list_owned(
    db: sqlite3.Connection, namespace: str, owner: str, now: float
) -> list[tuple[str, bytes, float | None]]:
    return db.execute(LIST_OWNED, (namespace, owner, now)).fetchall()


def invalidate_owned(db: sqlite3.Connection, namespace: str, owner: str, keep: list[str], now: float) -> int:
    """Delete the owner's live sessions but those in ``keep``, in one statement; how many."""
    sql, params = INVALIDATE_OWNED, [namespace, owner, now]
    bound = list(dict.fromkeys(keep))
    if len(bound) > _KEEP_BOUND:
        # json_each ends a string at a NUL character: IDs holding one stay bound alone.
        sql += _KEEP_JSON
        params.append(json.dumps([id for id in bound if "\x00" not in id]))
        bound = [id for id in bound if "\x00" in id]
    if bound:
        sql += f" AND id NOT IN ({', '.join('?' * len(bound))})"
        params += bound
    return change(db, sql, tuple(params), None)


def purge_plan(db: sqlite3.Connection, now: float) -> tuple[int, int, int]:
    """The rows with purge_after up to ``now`` (all dead), those from there up to
    ``now + PURGE_AHEAD`` (the other dead rows are among them), and the file's pages."""
    dead, band = db.execute(PURGE_CANDIDATES, (now, now + PURGE_AHEAD)).fetchone()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    return dead, band, pages


def purge_dead(db: sqlite3.Connection, now: float, limit: int) -> int:
    """Delete up to ``limit`` rows from the low end of the purge index, all dead."""
    return db.execute(PURGE_SOME, (now, limit)).rowcount


IndexKey = tuple[float, str, str]


def band_start(now: float) -> IndexKey:
    """The first key of the purge index past ``now``."""
    return (math.nextafter(now, math.inf), "", "")


def purge_band(
    db: sqlite3.Connection, now: float, start: IndexKey, limit: int
) -> tuple[int, IndexKey | None]:
    """Delete the expired rows among ``limit`` entries of the purge index from ``start``
    on, up to ``now + PURGE_AHEAD``; returns how many, and where the next batch starts
    (``None``: done)."""
    high = now + PURGE_AHEAD
    following = db.execute(PURGE_BAND_NEXT_START, (*start, high, limit)).fetchone()
    if following is None:
        return db.execute(PURGE_BAND_REST, (*start, high, now)).rowcount, None
    nxt = (following[0], following[1], following[2])
    return db.execute(PURGE_BAND, (*start, *nxt, high, now)).rowcount, nxt


def purge_range(
    db: sqlite3.Connection, now: float, start: tuple[str, str], limit: int
) -> tuple[int, tuple[str, str] | None]:
    """Delete the expired rows (of every namespace) among ``limit`` rows from the key
    ``start`` on; returns how many, and where the next batch starts (``None``: done).

    ``("", "")`` is the first key: the key's columns are text, and no text sorts lower.
    """
    following = db.execute(PURGE_NEXT_START, (*start, limit)).fetchone()
    if following is None:
        return db.execute(PURGE_REST, (*start, now)).rowcount, None
    nxt = (following[0], following[1])
    return db.execute(PURGE_RANGE, (*start, *nxt, now)).rowcount, nxt
