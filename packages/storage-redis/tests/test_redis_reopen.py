"""aclose() is not final: a closed Redis storage connects again on its next call, so one
app starts and stops several times, each time on an event loop of its own."""

from __future__ import annotations

import contextlib
import gc
import warnings

import msgspec
import pytest
import satchel
from redis.asyncio import Redis
from satchel_redis import RedisClusterStorage, RedisStorage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

KEY = "_p6ZHpng5Rwf6pgfRJfaslYjyRlMdfUq0QlDazDhb-s"
PASSWORD = "hunter2-not-for-logs"

Storage = RedisStorage | RedisClusterStorage


class Login(msgspec.Struct):
    user: str


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

    async def sign_in(req: Request) -> Response:
        satchel.sessions_of(req).set(Login(user=req.query_params["user"]))
        return JSONResponse(None)

    async def whoami(req: Request) -> Response:
        got = await satchel.sessions_of(req).get(Login)
        return JSONResponse(None if got is None else got.user)

    storage = satchel.open_storage(redis_url, namespace=f"t-{request.node.name}"[:120], timeout=5)
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=storage, transformers=[satchel.Sign(KEY)])
    )
    app = satchel.SessionMiddleware(Starlette(routes=[Route("/in", sign_in), Route("/me", whoami)]), sessions)
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
    url = satchel_redis_url.replace("redis://", f"redis://:{PASSWORD}@", 1)
    storage = RedisStorage.from_url(url, namespace="forgotten", timeout=2)
    with contextlib.suppress(satchel.StorageError):  # the test server wants no password
        await storage.read("id")
    client = storage.client
    held: list[object] = [storage]
    del storage
    with pytest.warns(ResourceWarning, match=r"RedisStorage\('redis://:\*\*\*@") as caught:
        forget(held)
    ours = [w for w in caught if "garbage-collected" in str(w.message)]
    assert len(ours) == 1
    assert "namespace='forgotten'" in str(ours[0].message)
    assert all(PASSWORD not in str(w.message) for w in caught)
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
