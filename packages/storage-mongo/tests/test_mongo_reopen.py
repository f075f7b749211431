"""aclose() is not final: a closed MongoStorage makes a new client on its next call (a
closed AsyncMongoClient cannot be used again, nor on another event loop), so one app starts
and stops several times."""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import satchel
from core_helpers import sign_in_app
from pymongo import AsyncMongoClient
from satchel_conformance.servers import free_port
from satchel_mongo import MongoStorage
from starlette.testclient import TestClient

PASSWORD = "hunter2-not-for-logs"


def forget(held: list[MongoStorage]) -> None:
    """Drop the last reference, and collect."""
    held.clear()
    gc.collect()


@pytest.mark.anyio
async def test_a_closed_storage_opens_a_new_client_each_time(open_mongo: Callable[..., MongoStorage]) -> None:
    storage = open_mongo()
    for n in range(3):
        await storage.write(f"id{n}", b"x", 60)
        await storage.aclose()
        await storage.aclose()
    assert [await storage.read(f"id{n}") for n in range(3)] == [b"x", b"x", b"x"]
    await storage.aclose()


def test_a_starlette_app_started_twice_works_both_times(open_mongo: Callable[..., MongoStorage]) -> None:
    """Each ``with TestClient(app):`` runs on an event loop of its own, where the client
    of the first could not be used."""

    app = sign_in_app(open_mongo())
    with TestClient(app) as client:
        client.get("/in", params={"user": "ada"})
        cookie = client.cookies["SID"]
        assert client.get("/me").json() == "ada"
    with TestClient(app, cookies={"SID": cookie}) as client:
        assert client.get("/me").json() == "ada"


@pytest.mark.anyio
async def test_a_client_passed_in_stays_open_and_its_storage_works_after_aclose(
    server_url: str, namespace: str
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server_url)
    try:
        storage = MongoStorage(client, collection="sessions_test", namespace=namespace)
        await storage.write("id", b"x", 60)
        await storage.aclose()
        assert await client.admin.command("ping")
        assert await storage.read("id") == b"x"
        await storage.invalidate("id")
        await storage.aclose()
    finally:
        await client.close()


@pytest.mark.anyio
async def test_no_server_a_storage_collected_with_its_client_open_warns_without_the_password() -> None:
    url = f"mongodb://app:{PASSWORD}@127.0.0.1:{free_port()}/app?serverSelectionTimeoutMS=200"
    storage = MongoStorage.from_url(url, namespace="forgotten")
    with contextlib.suppress(satchel.StorageError):  # nothing listens there
        await storage.read("id")
    client = storage._client
    held = [storage]
    del storage
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forget(held)
    ours = [str(w.message) for w in caught if "garbage-collected" in str(w.message)]
    assert ours == [
        "MongoStorage('mongodb://app:***@127.0.0.1:"
        + url.split(":")[3]
        + "', namespace='forgotten') was garbage-collected with its client open; await its "
        "aclose() when the app shuts down (SessionMiddleware does at lifespan shutdown)"
    ]
    assert all(PASSWORD not in str(w.message) for w in caught)
    assert client is not None
    await client.close()  # what the test leaked, closed behind it
