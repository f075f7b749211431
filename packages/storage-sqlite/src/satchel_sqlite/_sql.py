"""The schema and the statements, and the functions that run on the connection's thread.

Every function here is synchronous and runs whole on the connection's own thread, so one
request costs one hop to that thread however many statements it runs, and no other task's
statement can land inside a transaction opened here.
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "SCHEMA_VERSION",
    "SchemaTooNew",
    "connect",
    "read",
    "write",
    "write_if",
    "touch",
    "invalidate",
    "purge_batch",
]

SCHEMA_VERSION = 1
TABLE = "satchel_sessions"

# A meta table rather than PRAGMA user_version: the file may be an application's own
# database, and user_version belongs to the application's migrations.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS satchel_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    # expires_at: unix seconds (shared by every process on the machine); NULL: never
    f"CREATE TABLE IF NOT EXISTS {TABLE} (namespace TEXT NOT NULL, id TEXT NOT NULL, "
    "data BLOB NOT NULL, expires_at REAL, PRIMARY KEY (namespace, id)) WITHOUT ROWID",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_expiry ON {TABLE} (expires_at) "
    "WHERE expires_at IS NOT NULL",
    "INSERT OR IGNORE INTO satchel_meta (key, value) "
    f"VALUES ('schema_version', {SCHEMA_VERSION})",
)

_ALIVE = "(expires_at IS NULL OR expires_at > ?)"
READ = f"SELECT data FROM {TABLE} WHERE namespace = ? AND id = ? AND {_ALIVE}"
UPSERT = (
    f"INSERT INTO {TABLE} (namespace, id, data, expires_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (namespace, id) DO UPDATE SET data = excluded.data, "
    "expires_at = excluded.expires_at"
)
# expected=None: insert, or take over a row that has expired (it reads as absent).
INSERT_IF_ABSENT = (
    f"INSERT INTO {TABLE} (namespace, id, data, expires_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (namespace, id) DO UPDATE SET data = excluded.data, "
    f"expires_at = excluded.expires_at WHERE {TABLE}.expires_at <= ?"
)
REPLACE_IF = (
    f"UPDATE {TABLE} SET data = ?, expires_at = ? "
    f"WHERE namespace = ? AND id = ? AND data = ? AND {_ALIVE}"
)
TOUCH = f"UPDATE {TABLE} SET expires_at = ? WHERE namespace = ? AND id = ? AND {_ALIVE}"
DELETE = f"DELETE FROM {TABLE} WHERE namespace = ? AND id = ?"
# Walks the expiry index from its oldest end: bounded work, never a scan of the table.
PURGE = (
    f"DELETE FROM {TABLE} WHERE (namespace, id) IN "
    f"(SELECT namespace, id FROM {TABLE} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
)


class SchemaTooNew(Exception):
    """The file was set up by a newer satchel-sqlite."""

    def __init__(self, found: object) -> None:
        super().__init__(found)
        self.found = found


def connect(path: str, timeout: float, synchronous: str) -> sqlite3.Connection:
    """Open ``path``, switch it to WAL and create the schema if it is missing."""
    db = sqlite3.connect(
        path, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        # WAL: readers never wait for the writer, and a killed writer leaves no torn page.
        db.execute("PRAGMA journal_mode = WAL").fetchone()
        # NORMAL in WAL loses nothing when a process dies; FULL also fsyncs every commit.
        db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection) -> None:
    if _version(db) == SCHEMA_VERSION:
        return  # the usual open: no write lock taken
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            db.execute(statement)
        found = _version(db)
        if found != SCHEMA_VERSION:
            raise SchemaTooNew(found)
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
    return None if row is None else row[0]  # type: ignore[no-any-return]


def _in_write_transaction(
    db: sqlite3.Connection, sql: str, params: tuple[object, ...], purge: tuple[float, int] | None
) -> int:
    """Run one write statement under BEGIN IMMEDIATE; returns the rows it changed.

    IMMEDIATE takes the write lock up front, so a busy file is waited for (busy_timeout)
    instead of failing when a read would be upgraded to a write. ``purge`` (now, limit)
    removes a bounded batch of expired rows in the same transaction.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        changed = db.execute(sql, params).rowcount
        if purge is not None:
            db.execute(PURGE, purge)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return changed


def write(
    db: sqlite3.Connection,
    namespace: str,
    id: str,
    data: bytes,
    expires_at: float | None,
    purge: tuple[float, int] | None,
) -> None:
    _in_write_transaction(db, UPSERT, (namespace, id, data, expires_at), purge)


def write_if(
    db: sqlite3.Connection,
    namespace: str,
    id: str,
    data: bytes,
    expires_at: float | None,
    expected: bytes | None,
    now: float,
) -> bool:
    if expected is None:
        sql, params = INSERT_IF_ABSENT, (namespace, id, data, expires_at, now)
    else:
        sql, params = REPLACE_IF, (data, expires_at, namespace, id, expected, now)
    return _in_write_transaction(db, sql, params, None) == 1


def touch(
    db: sqlite3.Connection, namespace: str, id: str, expires_at: float | None, now: float
) -> None:
    _in_write_transaction(db, TOUCH, (expires_at, namespace, id, now), None)


def invalidate(db: sqlite3.Connection, namespace: str, id: str) -> None:
    _in_write_transaction(db, DELETE, (namespace, id), None)


def purge_batch(db: sqlite3.Connection, now: float, limit: int) -> int:
    """Delete up to ``limit`` expired rows (of every namespace); returns how many."""
    return _in_write_transaction(db, PURGE, (now, limit), None)
