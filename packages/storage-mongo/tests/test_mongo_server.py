"""MongoStorage against a real server: the conformance kit, then what is MongoDB's own.

Every test runs against two servers, and its ID says which:

- ``mongodb``: MongoDB itself, from ``satchel_mongodb_url`` (``SATCHEL_TEST_MONGODB_URL``,
  a ``mongod`` on PATH started as a single-node replica set, or a Docker engine). Without
  one these are skipped, and the skip says which of the three to provide.
- ``compatible-server``: a stand-in, not MongoDB. ``satchel_mongo_compatible_url`` starts
  a MongoDB wire-compatible server installed from PyPI with the dev dependency group
  (SecantusDB: WiredTiger storage, a one-node replica set). It proves that what the storage
  sends goes through the real driver over a real socket and does what the storage
  expects: the filters, upserts and conditional replaces, the TTL index, the duplicate-key
  error that decides compare-and-set, namespaces, persistence across clients. It cannot
  prove what only ``mongod`` decides: its exact error codes and messages, the timing of
  its TTL monitor (the stand-in sweeps every second; nothing here waits for a sweep, since
  the storage refuses expired documents itself), replica-set elections and failover,
  sharding, or speed. A check that fails only because the stand-in differs from MongoDB
  is marked xfail on that server alone, with the difference as its reason.

Each test works in a fresh namespace of the ``sessions_test`` collection and deletes
that namespace's documents afterwards, so a shared cluster is left as it was found (the
fixtures that do so, shared with test_mongo_owners.py, are in conftest.py).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest
import satchel
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from satchel import SessionStorage
from satchel_conformance import StorageContract
from satchel_conformance.servers import mongo_compatible
from satchel_mongo import MongoStorage
from satchel_mongo import _documents as doc

Document = dict[str, Any]


def _with_query(url: str, option: str) -> str:
    if "?" in url:
        return f"{url}&{option}"
    return f"{url}?{option}" if "/" in url.partition("://")[2] else f"{url}/?{option}"


class _OnAServer(StorageContract):
    """The whole kit, on a namespace of its own in the server's collection."""

    ttl = 0.5
    tolerance = 0.2

    @pytest.fixture
    async def storage(
        self, open_mongo: Callable[..., MongoStorage], raw: AsyncCollection[Document]
    ) -> AsyncIterator[MongoStorage]:
        # the outage check waits out the timeouts of each call (1.5 s, not the default 5 and
        # 10), and the next heartbeat after it (0.5 s, not 10) before the server is back
        storage = open_mongo(serverSelectionTimeoutMS=1500, socketTimeoutMS=1500, heartbeatFrequencyMS=500)
        yield storage
        await storage.aclose()

    @pytest.fixture
    def reopen(self, open_mongo: Callable[..., MongoStorage]) -> Callable[[], Awaitable[SessionStorage]]:
        async def reopen_() -> SessionStorage:
            return open_mongo()

        return reopen_

    @pytest.fixture
    async def other_namespace(
        self, open_mongo: Callable[..., MongoStorage], namespace: str
    ) -> AsyncIterator[MongoStorage]:
        other = open_mongo(namespace=namespace + "-other")
        yield other
        await other.aclose()

    @pytest.fixture
    def raw_read(
        self, raw: AsyncCollection[Document], namespace: str
    ) -> Callable[[str], Awaitable[bytes | None]]:
        async def read(id: str) -> bytes | None:
            return doc.data_of(await raw.find_one({"_id": doc.document_id(namespace, id)}))

        return read

    @pytest.fixture
    def raw_write(
        self, raw: AsyncCollection[Document], namespace: str
    ) -> Callable[[str, bytes], Awaitable[None]]:
        async def write(id: str, data: bytes) -> None:
            key = doc.document_id(namespace, id)
            await raw.replace_one({"_id": key}, doc.session_document(key, data, None), upsert=True)

        return write


class TestMongoStorageContractOnMongoDB(_OnAServer):
    """The whole kit against MongoDB itself."""

    @pytest.fixture
    def server_url(self, satchel_mongodb_url: str) -> str:
        return satchel_mongodb_url


class TestMongoStorageContractOnCompatibleServer(_OnAServer):
    """The whole kit against the wire-compatible stand-in (not MongoDB; see the module)."""

    @pytest.fixture
    def server_url(self, satchel_mongo_compatible_url: str) -> str:
        return satchel_mongo_compatible_url


# --- MongoDB's own behaviour ---------------------------------------------------------

pytestmark = pytest.mark.anyio


async def test_server_document_holds_binary_data_and_an_expiry_date(
    open_mongo: Callable[..., MongoStorage], raw: AsyncCollection[Document], namespace: str
) -> None:
    storage = open_mongo()
    before = datetime.now(timezone.utc)
    await storage.write("id1", b"\x00\xffpayload", 60)
    found = await raw.find_one({"_id": {"ns": namespace, "id": "id1"}})
    await storage.aclose()
    assert found is not None
    assert found["data"] == b"\x00\xffpayload"
    expires = found["expires"].replace(tzinfo=timezone.utc)  # BSON dates come back naive UTC
    assert before + timedelta(seconds=59) < expires < before + timedelta(seconds=61)


async def test_server_ttl_index_is_created_on_first_use_and_again_without_error(
    open_mongo: Callable[..., MongoStorage], raw: AsyncCollection[Document]
) -> None:
    for _ in range(2):  # the second storage asks for the same index: a no-op, not an error
        storage = open_mongo()
        await storage.read("anything")
        await storage.aclose()
    index = (await raw.index_information())[doc.TTL_INDEX_NAME]
    assert index["key"] == [("expires", 1)]
    assert index["expireAfterSeconds"] == 0


async def test_server_expired_document_is_absent_before_the_ttl_monitor_removes_it(
    open_mongo: Callable[..., MongoStorage], raw: AsyncCollection[Document], namespace: str
) -> None:
    key = doc.document_id(namespace, "old")
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    await raw.insert_one(doc.session_document(key, b"stale", past))
    storage = open_mongo()
    try:
        assert await storage.read("old") is None
        await storage.touch("old", 3600)  # must not revive it
        assert await storage.read("old") is None
        assert await storage.write_if("old", b"x", None, expected=b"stale") is False
        assert await storage.write_if("old", b"fresh", 60, expected=None) is True
        assert await storage.read("old") == b"fresh"
    finally:
        await storage.aclose()


async def test_server_write_if_absent_loses_to_a_live_session_without_touching_it(
    open_mongo: Callable[..., MongoStorage],
) -> None:
    storage = open_mongo()
    try:
        await storage.write("id1", b"live", None)
        results = []
        async with anyio.create_task_group() as tg:

            async def claim(n: int) -> None:
                results.append(await storage.write_if("id1", b"%d" % n, 60, expected=None))

            for n in range(8):
                tg.start_soon(claim, n)
        assert results == [False] * 8
        assert await storage.read("id1") == b"live"
    finally:
        await storage.aclose()


async def test_server_concurrent_claims_of_a_new_id_have_one_winner(
    open_mongo: Callable[..., MongoStorage],
) -> None:
    storage = open_mongo()
    try:
        winners: list[bytes] = []

        async def claim(value: bytes) -> None:
            if await storage.write_if("new", value, 60, expected=None):
                winners.append(value)

        async with anyio.create_task_group() as tg:
            for n in range(16):
                tg.start_soon(claim, b"claim %d" % n)
        assert len(winners) == 1
        assert await storage.read("new") == winners[0]
    finally:
        await storage.aclose()


async def test_server_namespaces_share_a_collection_but_not_their_sessions(
    open_mongo: Callable[..., MongoStorage], namespace: str
) -> None:
    shop, admin = open_mongo(namespace=namespace + "-shop"), open_mongo(namespace=namespace + "-admin")
    try:
        await shop.write("same-id", b"shop", None)
        await admin.write("same-id", b"admin", None)
        assert await shop.read("same-id") == b"shop"
        await admin.invalidate("same-id")
        assert await shop.read("same-id") == b"shop"
        assert await admin.write_if("same-id", b"x", None, expected=b"shop") is False
    finally:
        await shop.aclose()
        await admin.aclose()


async def test_server_purge_removes_every_namespaces_expired_sessions_and_no_live_one(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document], namespace: str
) -> None:
    # a collection with no TTL index: the server's own expiry sweep (every second on the
    # compatible server, every minute on mongod) would race purge for the expired documents
    past = datetime.now(timezone.utc) - timedelta(minutes=5)
    other = namespace + "-other"
    for ns, id in [(namespace, "a"), (namespace, "b"), (other, "a"), (None, "plain")]:
        key = doc.document_id(ns, id)
        await own_collection.insert_one(doc.session_document(key, b"old", past))
    storage = open_mongo(collection=own_collection.name, create_index=False)
    theirs = open_mongo(collection=own_collection.name, create_index=False, namespace=other)
    try:
        await storage.write("live", b"live", 3600)
        await theirs.write("live", b"theirs", None)
        assert await storage.purge() == 4
        assert await own_collection.count_documents({}) == 2
        assert await storage.read("live") == b"live"
        assert await theirs.read("live") == b"theirs"
        assert await storage.purge() == 0
    finally:
        await storage.aclose()
        await theirs.aclose()


async def test_server_collection_from_the_url_query(
    server_url: str, raw: AsyncCollection[Document], namespace: str
) -> None:
    url = _with_query(server_url, f"collection={raw.name}&namespace={namespace}")
    storage = MongoStorage.from_url(url)
    try:
        await storage.write("via-url", b"here", None)
    finally:
        await storage.aclose()
    assert await raw.count_documents({"_id": doc.document_id(namespace, "via-url")}) == 1


async def test_server_own_client_keeps_working_after_the_storage_closes(
    server_url: str, raw: AsyncCollection[Document], namespace: str
) -> None:
    parsed = doc.parse_url(server_url)
    client: AsyncMongoClient[Document] = AsyncMongoClient(parsed.client_url)
    try:
        storage = MongoStorage(
            client,
            database=parsed.database or doc.DEFAULT_DATABASE,
            collection=raw.name,
            namespace=namespace,
        )
        await storage.write("mine", b"v", None)
        await storage.aclose()
        assert await client[raw.database.name][raw.name].count_documents({}) >= 1
    finally:
        await client.close()


# --- regressions found on the compatible server (each also runs against MongoDB) -----


async def test_server_an_equivalent_ttl_index_under_another_name_is_used(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document]
) -> None:
    """A collection whose TTL index on ``expires`` was made by hand as MongoDB's TTL docs
    show (default name ``expires_1``, expireAfterSeconds 0) works: the storage uses that
    index, since the server refuses the same index under a second name
    (IndexOptionsConflict) and creating its own would fail every session operation."""
    await own_collection.create_index([("expires", 1)], expireAfterSeconds=0)
    storage = open_mongo(collection=own_collection.name)
    try:
        await storage.write("id1", b"kept", 60)
        assert await storage.read("id1") == b"kept"
    finally:
        await storage.aclose()
    assert list(await own_collection.index_information()) == ["_id_", "expires_1"]


@pytest.mark.parametrize(
    ("name", "expire_after"),
    [(doc.TTL_INDEX_NAME, 3600), ("expires_1", 3600)],
    ids=["same-name", "other-name"],
)
async def test_server_a_conflicting_ttl_index_is_reported_with_what_to_do(
    open_mongo: Callable[..., MongoStorage],
    own_collection: AsyncCollection[Document],
    name: str,
    expire_after: int,
    server_name: str,
    request: pytest.FixtureRequest,
) -> None:
    """An index on ``expires`` that would not delete documents at their date is refused
    with a message naming it and the ways out, not a hint to check the network."""
    if name != doc.TTL_INDEX_NAME and server_name == "compatible-server":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="the compatible server builds a second index on the same keys with other "
                "options under another name; mongod refuses it (IndexOptionsConflict, 85)",
            )
        )
    await own_collection.create_index([("expires", 1)], name=name, expireAfterSeconds=expire_after)
    storage = open_mongo(collection=own_collection.name)
    try:
        for _ in range(2):  # every operation says so, not only the first
            with pytest.raises(satchel.StorageError) as caught:
                await storage.read("id1")
            message = str(caught.value)
            assert f"under that name it has: {name} (expireAfterSeconds={expire_after})" in message
            assert "create_index=False" in message
            assert "reachable" not in message
            assert caught.value.__cause__ is not None
    finally:
        await storage.aclose()


# --- the compatible server's finder ---------------------------------------------------


def test_compatible_server_finder_stops_the_server_and_removes_its_data(tmp_path: Path) -> None:
    pytest.importorskip("secantus", reason="the MongoDB wire-compatible test server is not installed")
    with mongo_compatible(tmp_path) as url:
        port = int(url.partition("127.0.0.1:")[2].partition("/")[0])
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert [path.name for path in tmp_path.iterdir() if path.is_dir()] == []
