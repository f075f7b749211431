"""The conformance kit against a file-backed SQLiteStorage, persistence across reopen included."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import satchel_conformance
from satchel import SessionStorage
from satchel_conformance import RawRead, RawWrite, Reopen
from satchel_sqlite import SQLiteStorage


class TestSQLiteFile(satchel_conformance.StorageContract):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "sessions.db"

    @pytest.fixture
    async def storage(self, path: Path) -> AsyncIterator[SessionStorage]:
        storage = SQLiteStorage(path, namespace="kit")
        assert storage.capabilities.persistent
        await storage.purge()  # opens the file and creates the schema raw_write writes into
        yield storage
        await storage.aclose()

    @pytest.fixture
    def reopen(self, path: Path) -> Reopen:
        async def reopen() -> SessionStorage:
            return SQLiteStorage(path, namespace="kit")

        return reopen

    @pytest.fixture
    async def other_namespace(self, path: Path) -> AsyncIterator[SessionStorage]:
        storage = SQLiteStorage(path, namespace="another")
        yield storage
        await storage.aclose()

    @pytest.fixture
    def raw_read(self, path: Path) -> RawRead:
        async def raw_read(id: str) -> bytes | None:
            with sqlite3.connect(path) as db:
                row = db.execute(
                    "SELECT data FROM satchel_sessions WHERE namespace = 'kit' AND id = ?", (id,)
                ).fetchone()
            return None if row is None else bytes(row[0])

        return raw_read

    @pytest.fixture
    def raw_write(self, path: Path) -> RawWrite:
        async def raw_write(id: str, data: bytes) -> None:
            with sqlite3.connect(path) as db:
                db.execute(
                    "INSERT OR REPLACE INTO satchel_sessions (namespace, id, data) VALUES ('kit', ?, ?)",
                    (id, data),
                )

        return raw_write
