"""aclose() is not final: a closed Redis storage connects again on its next call, so one
app starts and stops several times, each time on an event loop of its own."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

import pytest
import satchel
from core_helpers import sign_in_app
from redis.asyncio import Redis
from satchel_redis import RedisClusterStorage, RedisStorage
from starlette.testclient import TestClient

PASSWORD = "hunter2-not-for-logs"

Storage = RedisStorage | RedisClusterStorage


def forget(held: list[object]) -> None:
    """Drop the last reference, and collect."""
    held.clear()
    gc.collect()


@pytest.mark.anyio
async def test_a_closed_storage_connects_again_each_time(storage: Storage) -> None:
    for n in range(3):
        await storage.write(f"id{n}", b"x", 60)
        await storage.aclose()
        await storage.aclose()
    assert [await storage.read(f"id{n}") for n in range(3)] == [b"x", b"x", b"x"]
    for n in range(3):
        await storage.invalidate(f"id{n}")


def test_a_starlette_app_started_twice_works_both_times(
    redis_url: str, request: pytest.FixtureRequest
) -> None:
    """Each ``with TestClient(app):`` runs on an event loop of its own; the second finds the
    session the first wrote."""

    storage = satchel.open_storage(redis_url, namespace=f"t-{request.node.name}"[:120], timeout=5)
    app = sign_in_app(storage)
    with TestClient(app) as client:
        client.get("/in", params={"user": "ada"})
        cookie = client.cookies["SID"]
        assert client.get("/me").json() == "ada"
    with TestClient(app, cookies={"SID": cookie}) as client:
        assert client.get("/me").json() == "ada"
        client.get("/in", params={"user": "bob"})
        assert client.get("/me").json() == "bob"


@pytest.mark.anyio
async def test_a_storage_collected_with_its_connections_open_warns_without_the_password(
    satchel_redis_url: str,
) -> None:
    admin = Redis.from_url(satchel_redis_url)
    user = "satchel-forgotten"
    await admin.acl_setuser(user, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"])
    try:
        url = satchel_redis_url.replace("redis://", f"redis://{user}:{PASSWORD}@", 1)
        storage = RedisStorage.from_url(url, namespace="forgotten", timeout=2)
        assert await storage.read("id") is None
        client = storage.client
        held: list[object] = [storage]
        del storage
        with pytest.warns(ResourceWarning, match=rf"RedisStorage\('redis://{user}:\*\*\*@") as caught:
            forget(held)
        ours = [w for w in caught if "garbage-collected" in str(w.message)]
        assert len(ours) == 1
        assert "namespace='forgotten'" in str(ours[0].message)
        assert all(PASSWORD not in str(w.message) for w in caught)
        await client.aclose()  # what the test leaked, closed behind it
    finally:
        await admin.acl_deluser(user)
        await admin.aclose()


def collected_warnings(held: list[object]) -> list[str]:
    """The storage's own warnings when the last reference in ``held`` goes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forget(held)
    return [str(w.message) for w in caught if "garbage-collected" in str(w.message)]


@pytest.mark.anyio
async def test_a_storage_that_never_connected_is_collected_without_a_warning() -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    storage = RedisStorage.from_url(f"redis://127.0.0.1:{port}/0", timeout=2)
    with pytest.raises(satchel.StorageError):
        await storage.read("id")
    held: list[object] = [storage]
    del storage
    assert collected_warnings(held) == []


@pytest.mark.anyio
async def test_a_call_that_reconnects_after_aclose_leaves_a_storage_that_warns(
    satchel_redis_url: str,
) -> None:
    """A call already under way when aclose ran (a retry, say) connects again after it:
    the connection it opened is open when the storage is collected."""
    storage = RedisStorage.from_url(satchel_redis_url, namespace="late-call", timeout=2)
    client, key, go_on = storage.client, storage.key("id"), asyncio.Event()

    async def after_the_close(retrying: bool) -> object:
        await go_on.wait()
        return await client.get(key)

    under_way = asyncio.create_task(storage._run("read", "id", after_the_close))
    await asyncio.sleep(0)  # the call has started
    await storage.aclose()
    go_on.set()
    assert await under_way is None
    held: list[object] = [storage]
    del storage, under_way
    assert len(collected_warnings(held)) == 1
    await client.aclose()  # what the test leaked, closed behind it


@pytest.mark.anyio
async def test_a_client_passed_in_stays_open_and_its_storage_never_warns(satchel_redis_url: str) -> None:
    client = Redis.from_url(satchel_redis_url)
    try:
        storage = satchel.open_storage(satchel_redis_url, client=client, namespace="lent")
        await storage.write("id", b"x", 60)
        await storage.aclose()
        assert await client.exists(storage.key("id")) == 1  # type: ignore[attr-defined]
        assert await storage.read("id") == b"x"
        await storage.invalidate("id")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del storage
            gc.collect()
        assert [w for w in caught if "garbage-collected" in str(w.message)] == []
    finally:
        await client.aclose()
