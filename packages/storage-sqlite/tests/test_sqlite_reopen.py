"""aclose() is not final: a closed SQLiteStorage opens the file again on its next call, so
one app starts and stops several times (test suites, reloaders, a server started twice)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest
import satchel
from core_helpers import serve, sign_in_app
from satchel_sqlite import SQLiteStorage
from satchel_sqlite._storage import _close
from starlette.testclient import TestClient


def forget(held: list[SQLiteStorage]) -> None:
    """Drop the last reference, and collect."""
    held.clear()
    gc.collect()


def closed(path: Path) -> bool:
    """Whether no connection holds the file: SQLite removes the WAL when its last one closes."""
    return path.exists() and not Path(f"{path}-wal").exists()


@pytest.mark.anyio
async def test_a_closed_storage_opens_again_each_time_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    storage = SQLiteStorage(path)
    for n in range(3):
        await storage.write(f"id{n}", b"x", 60)
        assert not closed(path)
        await storage.aclose()
        assert closed(path)
    assert [await storage.read(f"id{n}") for n in range(3)] == [b"x", b"x", b"x"]
    await storage.aclose()


def test_a_starlette_app_started_twice_works_both_times(tmp_path: Path) -> None:
    """Each ``with TestClient(app):`` runs on an event loop of its own."""
    path = tmp_path / "sessions.db"
    app = sign_in_app(SQLiteStorage(path), secure=False)
    with TestClient(app) as client:
        client.get("/in", params={"user": "ada"})
        cookie = client.cookies["SID"]
        assert client.get("/me").json() == "ada"
    assert closed(path)
    with TestClient(app, cookies={"SID": cookie}) as client:
        assert client.get("/me").json() == "ada"
        client.get("/in", params={"user": "bob"})
        assert client.get("/me").json() == "bob"
    assert closed(path)


def test_one_app_served_by_uvicorn_twice(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    app = sign_in_app(SQLiteStorage(path), secure=False)
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        client.get("/in", params={"user": "ada"})
        cookie = client.cookies["SID"]
    assert closed(path)
    with serve(app) as host, httpx.Client(base_url=f"http://{host}", cookies={"SID": cookie}) as client:
        assert client.get("/me").json() == "ada"
    assert closed(path)


@pytest.mark.anyio
async def test_an_open_that_aclose_overtakes_fails_and_keeps_nothing_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a new file: opening it waits for this lock to set it up
    before = set(threading.enumerate())
    storage = SQLiteStorage(path, timeout=60)
    try:
        first = asyncio.ensure_future(storage.read("x"))
        # until the call is opening the file (a state the storage announces with no event)
        while storage._opening is None or not storage._opening.locked():  # noqa: ASYNC110
            await asyncio.sleep(0)
        await storage.aclose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with pytest.raises(satchel.StorageError, match=r"was closed .* while this call was under way") as caught:
        await first
    assert "the next call opens it again" in str(caught.value)
    for thread in set(threading.enumerate()) - before:
        if "connection_worker" in thread.name or type(thread).__module__.startswith("aiosqlite"):
            thread.join(10)
            assert not thread.is_alive(), "the overtaken open left a connection thread running"
    assert closed(path)
    # the rule holds after the race too: the next call opens the file again
    assert await storage.read("x") is None
    await storage.aclose()


@pytest.mark.anyio
async def test_a_storage_collected_with_its_connections_open_warns_naming_its_file(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "forgotten.db", namespace="shop")
    await storage.write("id", b"x", None)
    handle = storage._handle
    assert handle is not None
    held = [storage]
    del storage
    named = r"SQLiteStorage\('.*forgotten\.db', namespace='shop'\)"
    with pytest.warns(ResourceWarning, match=named) as caught:
        forget(held)
    assert "aclose()" in str(caught[0].message)
    await _close(*handle)  # what the test leaked, closed behind it


@pytest.mark.anyio
async def test_a_closed_or_never_used_storage_does_not_warn(tmp_path: Path) -> None:
    import warnings

    used = SQLiteStorage(tmp_path / "a.db")
    await used.write("id", b"x", None)
    await used.aclose()
    unused = SQLiteStorage(tmp_path / "b.db")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del used, unused
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.anyio
async def test_aclose_during_the_first_open_closes_the_storage(tmp_path: Path) -> None:
    """aclose() while the first call is still opening the file closes what that open made (no
    connection thread is left behind), and the storage opens again on its next call."""
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
