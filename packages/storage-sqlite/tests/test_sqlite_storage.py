"""What is particular to SQLiteStorage: URLs, the file, errors, expiry and purge, query plans."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
import satchel
from satchel import ConfigError, StorageError
from satchel.testing import Clock
from satchel_sqlite import SQLiteStorage, _sql

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def storage(tmp_path: Path, clock: Clock) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "sessions.db", clock=clock)
    yield storage
    await storage.aclose()


def rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT namespace, id FROM satchel_sessions"))


# -- URLs ---------------------------------------------------------------------------


async def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = satchel.open_storage("sqlite:///var/sessions.db")
    assert isinstance(storage, SQLiteStorage)
    await storage.write("a" * 43, b"data", 60)
    await storage.aclose()
    assert rows(tmp_path / "var" / "sessions.db") == [("", "a" * 43)]


async def test_absolute_url_and_namespace_in_the_query(tmp_path: Path) -> None:
    path = tmp_path / "abs.db"
    first = satchel.open_storage(f"sqlite:///{path}?namespace=one")
    second = satchel.open_storage(f"sqlite:///{path}", namespace="two")
    assert f"sqlite:///{path}".startswith("sqlite:////")
    await first.write("id", b"first", None)
    await second.write("id", b"second", None)
    assert await first.read("id") == b"first"
    assert await second.read("id") == b"second"
    await second.invalidate("id")
    assert await first.read("id") == b"first"
    await first.aclose()
    await second.aclose()
    assert rows(path) == [("one", "id")]


async def test_memory_url_is_private_and_not_persistent(tmp_path: Path) -> None:
    storage = satchel.open_storage("sqlite://:memory:")
    assert satchel.capabilities_of(storage).persistent is False
    await storage.write("id", b"data", None)
    assert await storage.read("id") == b"data"
    await storage.aclose()
    other = satchel.open_storage("sqlite://:memory:")
    assert await other.read("id") is None
    await other.aclose()


def test_file_url_declares_persistence_and_asyncio_only(tmp_path: Path) -> None:
    caps = satchel.capabilities_of(SQLiteStorage(tmp_path / "x.db"))
    assert caps.persistent is True
    assert caps.event_loops == frozenset({"asyncio"})


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://localhost/sessions.db", "names a host"),
        ("sqlite://", "names no file"),
        ("sqlite:///", "names no file"),
        ("sqlite:///var/", "names a directory"),
        ("sqlite:///s.db?colour=red", "unknown option(s) colour"),
        ("sqlite:///s.db?timeout=0", "timeout"),
        ("sqlite:///s.db?timeout=soon", "timeout"),
        ("sqlite:///s.db?synchronous=off", "'normal'"),
        ("sqlite:///s.db?namespace", "malformed query"),
        ("sqlite3:///s.db", "not a sqlite URL"),
    ],
)
def test_bad_url_is_a_config_error_before_any_io(
    url: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="sqlite") as info:
        SQLiteStorage.from_url(url)
    assert says in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_opening_creates_nothing_until_first_use(tmp_path: Path) -> None:
    satchel.open_storage(f"sqlite:///{tmp_path}/later.db")
    assert list(tmp_path.iterdir()) == []


def test_driver_is_imported_only_when_a_storage_is_opened(tmp_path: Path) -> None:
    script = f"""
import asyncio, sys, satchel
storage = satchel.open_storage("sqlite:///{tmp_path}/lazy.db")
assert "aiosqlite" not in sys.modules, "imported by the plugin or by from_url"
asyncio.run(storage.read("x" * 43))
assert "aiosqlite" in sys.modules
asyncio.run(storage.aclose())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- the file -----------------------------------------------------------------------


async def test_file_is_in_wal_mode_with_a_schema_version(storage: SQLiteStorage) -> None:
    await storage.write("id", b"x", None)
    with sqlite3.connect(storage.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT value FROM satchel_meta WHERE key = 'schema_version'").fetchone() == (
            _sql.SCHEMA_VERSION,
        )


async def test_shares_a_file_with_an_application(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.execute("INSERT INTO users VALUES ('ada')")
        db.execute("PRAGMA user_version = 7")
    storage = SQLiteStorage(path)
    await storage.write("id", b"x", None)
    await storage.aclose()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (7,)
        assert db.execute("SELECT name FROM users").fetchall() == [("ada",)]


async def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    await SQLiteStorage(path).aclose()  # never opened: nothing created
    storage = SQLiteStorage(path)
    await storage.write("id", b"x", None)
    await storage.aclose()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE satchel_meta SET value = 99 WHERE key = 'schema_version'")
    again = SQLiteStorage(path)
    with pytest.raises(StorageError, match="upgrade satchel-sqlite"):
        await again.read("id")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM satchel_meta").fetchone() == (99,)


async def test_unwritable_path_is_a_storage_error_with_the_cause(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    storage = SQLiteStorage(blocker / "sessions.db")
    with pytest.raises(StorageError, match="cannot open SQLite database") as info:
        await storage.write("id", b"x", None)
    assert isinstance(info.value.__cause__, OSError)
    await storage.aclose()


async def test_missing_directory_is_created(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "deep" / "er" / "sessions.db")
    await storage.write("id", b"x", None)
    await storage.aclose()
    assert rows(tmp_path / "deep" / "er" / "sessions.db") == [("", "id")]


async def test_corrupt_file_is_a_storage_error_with_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(os.urandom(8192))
    storage = SQLiteStorage(path)
    with pytest.raises(StorageError, match="not a SQLite database") as info:
        await storage.read("id")
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    await storage.aclose()


async def test_failure_after_open_is_a_storage_error(storage: SQLiteStorage) -> None:
    await storage.write("id", b"x", None)
    with sqlite3.connect(storage.path) as db:
        db.execute("DROP TABLE satchel_sessions")
    with pytest.raises(StorageError, match="no such table") as info:
        await storage.read("id")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)


async def test_lock_held_past_the_timeout_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    storage = SQLiteStorage(path, timeout=0.2)
    await storage.write("id", b"x", None)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with anyio.fail_after(5):
            with pytest.raises(StorageError, match="raise the timeout") as info:
                await storage.write("id", b"y", None)
            assert await storage.read("id") == b"x"  # readers do not wait for a writer
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    await storage.write("id", b"y", None)
    assert await storage.read("id") == b"y"
    await storage.aclose()


async def test_closed_storage_opens_again_on_the_next_call(storage: SQLiteStorage) -> None:
    await storage.write("id", b"x", None)
    await storage.aclose()
    assert await storage.read("id") == b"x"


# -- expiry and purge -----------------------------------------------------------------


async def test_expiry_is_enforced_on_read_by_the_clock(storage: SQLiteStorage, clock: Clock) -> None:
    await storage.write("id", b"x", 10)
    clock.now += 9.9
    assert await storage.read("id") == b"x"
    clock.now += 0.2
    assert await storage.read("id") is None
    assert await storage.write_if("id", b"y", 10, expected=b"x") is False
    assert await storage.write_if("id", b"y", 10, expected=None) is True


async def test_writes_purge_expired_rows_a_bounded_batch_at_a_time(
    storage: SQLiteStorage, clock: Clock
) -> None:
    for i in range(200):
        await storage.write(f"old{i}", b"x", 1)
    clock.now += 1 + _sql.PURGE_AHEAD  # past every purge hint
    # every write sees nothing, but rows are only deleted in bounded batches
    await storage.write("new0", b"x", None)
    assert len(rows(Path(storage.path))) == 201
    for i in range(1, 16):
        await storage.write(f"new{i}", b"x", None)
    # 16 writes: one bounded purge batch ran (64 of the 200)
    assert len(rows(Path(storage.path))) == 200 + 16 - 64
    for i in range(16, 64):
        await storage.write(f"new{i}", b"x", None)
    assert len(rows(Path(storage.path))) == 64


async def test_purge_removes_every_expired_row_of_every_namespace(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "purge.db"
    one = SQLiteStorage(path, namespace="one", clock=clock)
    two = SQLiteStorage(path, namespace="two", clock=clock)
    for i in range(1500):
        await one.write(f"a{i}", b"x", 5)
    await two.write("b", b"x", 5)
    await two.write("kept", b"x", 60)
    await two.write("forever", b"x", None)
    clock.now += 6  # expired, but less than PURGE_SLACK ago
    assert await one.purge() == 1501
    assert rows(path) == [("two", "forever"), ("two", "kept")]
    assert await two.read("kept") == b"x"
    assert await one.purge() == 0
    await one.aclose()
    await two.aclose()


async def test_purge_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    storage = satchel.open_storage(url)
    await storage.write("gone", b"x", 0.001)
    await storage.write("kept", b"x", 60)
    await storage.aclose()
    satchel_cli = Path(sys.executable).with_name("satchel")
    done = await anyio.run_process([str(satchel_cli), "purge", url], check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert "removed 1 expired" in done.stdout.decode()
    assert rows(tmp_path / "cli.db") == [("", "kept")]


@pytest.mark.parametrize(
    "statement",
    ["READ", "UPSERT", "INSERT_IF_ABSENT", "REPLACE_IF", "TOUCH", "DELETE", "PURGE_SOME"],
)
async def test_request_path_never_scans_the_table(storage: SQLiteStorage, statement: str) -> None:
    await storage.write("id", b"x", None)
    sql = getattr(_sql, statement)
    numbered = [int(n) for n in re.findall(r"\?(\d)", sql)]
    params = (0,) * (max(numbered) if numbered else sql.count("?"))
    with sqlite3.connect(storage.path) as db:
        plan = [row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    assert not [step for step in plan if step.startswith("SCAN")], plan


async def test_touch_and_cas_keep_the_purge_hint_ahead_of_expiry(
    storage: SQLiteStorage, clock: Clock
) -> None:
    """A row must never be purged while it is alive, whichever call moved its expiry."""
    await storage.write("id", b"x", 10)
    for _ in range(50):
        clock.now += 9
        await storage.touch("id", 10)
    assert await storage.write_if("id", b"y", 1000, expected=b"x")
    clock.now += 999
    await storage.write("id2", b"z", None)
    assert await storage.purge() == 0
    assert await storage.read("id") == b"y"
    with sqlite3.connect(storage.path) as db:
        bad = db.execute(
            "SELECT count(*) FROM satchel_sessions WHERE purge_after < expires_at "
            "OR purge_after > expires_at + ? OR (expires_at IS NULL) != (purge_after IS NULL)",
            (_sql.PURGE_AHEAD,),
        ).fetchone()
    assert bad == (0,)


# -- through the middleware -------------------------------------------------------------


class Login(msgspec.Struct):
    user: str
    visits: int = 0


async def _visit(sessions: satchel.Sessions, cookie: bytes | None) -> tuple[Login | None, bytes]:
    """One request through SessionMiddleware: what the handler saw, and the cookie sent back."""
    seen: list[Login | None] = []

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        s = satchel.sessions_of(scope)
        login = await s.get(Login)
        seen.append(login)
        s.set(Login(user="ada", visits=login.visits + 1 if login else 1))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    headers = [(b"host", b"shop.example")] + ([(b"cookie", cookie)] if cookie else [])
    scope = {"type": "http", "method": "GET", "path": "/", "scheme": "https", "headers": headers}
    await satchel.SessionMiddleware(handler, sessions)(scope, receive, send)
    set_cookie = next((v for k, v in sent[0]["headers"] if k == b"set-cookie"), None)
    # as a browser: the cookie it holds, unless the response sends a new one
    return seen[0], set_cookie.split(b";")[0] if set_cookie is not None else (cookie or b"")


async def test_cookie_mapping_on_a_sqlite_url_survives_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def start() -> satchel.Sessions:
        return satchel.Sessions(satchel.cookie(Login, "SID", storage="sqlite:///var/sessions.db"))

    sessions = start()
    seen, cookie = await _visit(sessions, None)
    assert seen is None
    seen, cookie = await _visit(sessions, cookie)
    assert seen == Login(user="ada", visits=1)
    await sessions.aclose()

    restarted = start()
    seen, _ = await _visit(restarted, cookie)
    assert seen == Login(user="ada", visits=2)
    await restarted.aclose()
    assert (tmp_path / "var" / "sessions.db").exists()


async def test_empty_path_is_refused_rather_than_a_private_temporary_database(tmp_path: Path) -> None:
    """An empty path is refused (or at least not declared persistent): sqlite3 opens a private
    temporary database for it, whose data is gone on reopen."""
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


@pytest.mark.parametrize("path", ["", "var/", "/tmp/"])
def test_a_path_that_names_no_file_is_a_config_error(path: str) -> None:
    """A path that names no file (empty, or a directory with its trailing slash) is a ConfigError
    that says so, before any I/O."""
    with pytest.raises(satchel.ConfigError, match="names"):
        SQLiteStorage(path)
