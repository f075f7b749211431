"""The conformance kit against a file-backed SQLiteStorage, persistence across reopen included."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
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
        # the outage check waits out the timeout of each write: 3 s, not the default 5
        storage = SQLiteStorage(path, namespace="kit", timeout=3)
        assert storage.capabilities.persistent
        await storage.read("-")  # opens the file and creates the schema raw_write writes into
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


def test_satchel_conformance_command_on_a_sqlite_url(tmp_path: Path) -> None:
    """`satchel conformance sqlite:///...`: the no-code route through the plugin, end to end."""
    command = Path(sys.executable).with_name("satchel")
    url = f"sqlite:///{tmp_path}/kit.db"
    done = subprocess.run(
        [str(command), "conformance", url, "-q"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "passed   test_data_survives_reopen" in done.stdout
