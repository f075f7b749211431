"""satchel's SQLite storage against a hand-written aiosqlite floor.

Per request: read one session and write it back. The floor: one SELECT and one UPSERT on
one aiosqlite connection with the same pragmas. SQLiteStorage: ``read`` then ``write``.
middleware: the same through ``satchel.SessionMiddleware`` (a cookie in, the session
decoded, changed, encoded and stored, a Set-Cookie out), called as an ASGI app.

They run interleaved, round after round, in one process, each round on a fresh
connection; the figures are the median over rounds of microseconds per request and of
the ratio to the floor's time in the same round, at 1 and 50 concurrent tasks, with 10^5
and 10^6 sessions stored.

    .venv/bin/python bench/bench_sqlite.py                  # both sizes (a few minutes)
    .venv/bin/python bench/bench_sqlite.py --sizes 100000 --requests 4000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiosqlite
import satchel
from satchel.testing import store_key  # what the middleware stores a session under
from satchel_sqlite import SQLiteStorage

VALUE = b"x" * 120  # a small login session, as serialized and signed
TTL = 3600.0
from _harness import Login, discard, read_write_handler, receive, respond, run  # noqa: E402 - bench/ is on sys.path when run as a script


def session_ids(count: int) -> list[str]:
    rng = random.Random(count)
    return [rng.randbytes(32).hex()[:43] for _ in range(count)]


def fill(path: str, table: str, columns: str, rows: Any) -> None:
    """Bulk insert in one transaction (fast enough for 10^6 rows)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO {table} {columns}", rows)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


class Floor:
    """What a careful user would write by hand: one connection, two statements."""

    SELECT = "SELECT data FROM sessions WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)"
    UPSERT = (
        "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at"
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self.db: aiosqlite.Connection | None = None

    @staticmethod
    def create(path: str, ids: list[str]) -> None:
        db = sqlite3.connect(path)
        db.execute(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, data BLOB NOT NULL, expires_at REAL) WITHOUT ROWID"
        )
        db.close()
        expiry = time.time() + 86400
        fill(path, "sessions", "VALUES (?, ?, ?)", ((i, VALUE, expiry) for i in ids))

    async def open(self) -> None:
        self.db = await aiosqlite.connect(self.path, isolation_level=None)
        await self.db.execute("PRAGMA journal_mode = WAL")
        await self.db.execute("PRAGMA synchronous = NORMAL")
        await self.db.execute("PRAGMA busy_timeout = 5000")

    async def request(self, id: str) -> None:
        assert self.db is not None
        rows = await self.db.execute_fetchall(self.SELECT, (id, time.time()))
        data = next(iter(rows))[0]
        await self.db.execute(self.UPSERT, (id, data, time.time() + TTL))

    async def close(self) -> None:
        assert self.db is not None
        await self.db.close()


class Storage:
    """satchel's SQLiteStorage through its read/write API."""

    def __init__(self, path: str) -> None:
        self.storage = SQLiteStorage(path)

    @staticmethod
    async def create(path: str, ids: list[str]) -> None:
        storage = SQLiteStorage(path)
        await storage.read("schema")  # creates the file and its schema
        await storage.aclose()
        expiry = time.time() + 86400
        fill(
            path,
            "satchel_sessions",
            "(namespace, id, data, expires_at, purge_after) VALUES ('', ?, ?, ?, ?)",
            ((i, VALUE, expiry, expiry + 300) for i in ids),
        )

    async def open(self) -> None:
        await self.storage.read("warm-up")

    async def request(self, id: str) -> None:
        data = await self.storage.read(id)
        assert data is not None
        await self.storage.write(id, data, TTL)

    async def close(self) -> None:
        await self.storage.aclose()


async def first_visit(scope: Any, receive: Any, send: Any) -> None:
    satchel.sessions_of(scope).set(Login(user="u" * 80))
    await respond(send)


def mapping(storage: SQLiteStorage) -> satchel.Sessions:
    return satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, max_age=TTL))


class Middleware:
    """The same read and write through satchel.SessionMiddleware: cookie in, session
    decoded, changed, encoded, stored, Set-Cookie out."""

    def __init__(self, path: str) -> None:
        self.storage = SQLiteStorage(path)
        self.app = satchel.SessionMiddleware(read_write_handler, mapping(self.storage))

    @staticmethod
    async def create(path: str, ids: list[str]) -> None:
        # One real first visit through the middleware stores one record; every bench
        # session gets a copy of those bytes (the record does not hold its own ID).
        storage = SQLiteStorage(path)
        scope = {"type": "http", "method": "GET", "path": "/", "scheme": "https", "headers": []}
        await satchel.SessionMiddleware(first_visit, mapping(storage))(scope, receive, discard)
        await storage.aclose()
        with sqlite3.connect(path) as db:
            ((record,),) = db.execute("SELECT data FROM satchel_sessions").fetchall()
            db.execute("DELETE FROM satchel_sessions")
        db.close()
        expiry = time.time() + 86400
        fill(
            path,
            "satchel_sessions",
            "(namespace, id, data, expires_at, purge_after) VALUES ('', ?, ?, ?, ?)",
            # under a digest of the ID, as the middleware stores a session
            ((store_key(i), record, expiry, expiry + 300) for i in ids),
        )

    async def open(self) -> None:
        await self.storage.read("warm-up")

    async def request(self, id: str) -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "scheme": "https",
            "headers": [(b"host", b"bench.example"), (b"cookie", f"SID={id}".encode())],
        }
        await self.app(scope, receive, discard)

    async def close(self) -> None:
        await self.storage.aclose()


async def bench_size(size: int, requests: int, rounds: int, directory: str) -> None:
    ids = session_ids(size)
    t0 = time.perf_counter()
    floor_path = os.path.join(directory, f"floor-{size}.db")
    storage_path = os.path.join(directory, f"satchel-{size}.db")
    middleware_path = os.path.join(directory, f"middleware-{size}.db")
    Floor.create(floor_path, ids)
    await Storage.create(storage_path, ids)
    await Middleware.create(middleware_path, ids)
    print(f"\n{size:,} sessions stored (setup {time.perf_counter() - t0:.1f}s)")
    impls: dict[str, tuple[Any, str]] = {
        "floor": (Floor, floor_path),
        "SQLiteStorage": (Storage, storage_path),
        "middleware": (Middleware, middleware_path),
    }
    rng = random.Random(1)
    for tasks in (1, 50):
        figures: dict[str, list[float]] = {name: [] for name in impls}
        names = list(impls)
        for round in range(rounds):
            sample = rng.sample(ids, requests)
            # each round starts with the next implementation, so none always goes first
            for name in names[round % len(names) :] + names[: round % len(names)]:
                # a fresh connection (and driver thread) per round: where the OS places a
                # thread sways a run by up to 2x, and must not favour one contender
                cls, path = impls[name]
                impl = cls(path)
                await impl.open()
                await run(impl.request, sample[:50], 1)  # warm up
                figures[name].append(await run(impl.request, sample, tasks))
                await impl.close()
        for name, values in figures.items():
            us = statistics.median(values)
            ratios = sorted(v / f for v, f in zip(values, figures["floor"], strict=True))
            print(
                f"  {tasks:>2} task(s)  {name:<14} {us:7.1f} us/request  "
                f"{statistics.median(ratios):5.2f}x floor "
                f"(rounds {ratios[0]:.2f}-{ratios[-1]:.2f})"
            )
    for path in (floor_path, storage_path, middleware_path):
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)  # noqa: ASYNC240 - between timed runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="10^4 sessions, short rounds")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.requests, args.rounds = [10_000], 1000, 3
    print(
        f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"aiosqlite {version('aiosqlite')}, satchel-sqlite {version('satchel-sqlite')}, "
        f"{platform.machine()} x {os.cpu_count()} cores, {platform.system()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as directory:
        for size in args.sizes:
            asyncio.run(bench_size(size, args.requests, args.rounds, directory))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
