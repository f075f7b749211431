"""Fixtures for satchel-sqlite's tests, the conformance kit's optional ones among them.

``stored_expiry`` and ``outage`` are found by name by the kit's checks (see
docs/conformance.md): any test class here whose ``storage`` is a file-backed
`SQLiteStorage` gets the stored-expiry, purge and failure checks.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator

import pytest
from satchel_conformance import Outage, StoredExpiry
from satchel_sqlite import SQLiteStorage


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _file_of(storage: object) -> SQLiteStorage:
    if not isinstance(storage, SQLiteStorage) or storage.path == ":memory:":
        pytest.skip("the storage is not a file-backed SQLiteStorage, which another connection could open")
    return storage


@pytest.fixture
def stored_expiry(storage: object) -> StoredExpiry:
    """The ``expires_at`` column of the storage's row for an id, read on a connection of its own."""
    sqlite = _file_of(storage)

    async def stored_expiry(id: str) -> float | None:
        with contextlib.closing(sqlite3.connect(sqlite.path)) as db:
            row = db.execute(
                "SELECT expires_at FROM satchel_sessions WHERE namespace = ? AND id = ?",
                (sqlite.namespace, id),
            ).fetchone()
        if row is None:
            raise LookupError("no row for the id")
        expires: float | None = row[0]
        return expires

    return stored_expiry


@pytest.fixture
def outage(storage: object) -> Outage:
    """Another connection holds an exclusive transaction on the file: writes wait for the
    storage's timeout and fail (reads go on, as WAL lets them), until the block ends."""
    sqlite = _file_of(storage)

    @contextlib.asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        with contextlib.closing(sqlite3.connect(sqlite.path, isolation_level=None)) as db:
            db.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                db.execute("ROLLBACK")

    return outage
