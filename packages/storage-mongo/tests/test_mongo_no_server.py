"""What MongoStorage does when no MongoDB answers, and how it is opened and registered.

Not a server run: nothing listens on the port these storages point at (a real refused
connection, not a mock), so each test names itself ``no_server``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import satchel
from pymongo import AsyncMongoClient, ReadPreference
from pymongo.errors import ServerSelectionTimeoutError
from satchel import ConfigError, StorageError
from satchel_conformance.servers import Unavailable, free_port, mongo_compatible, mongodb
from satchel_mongo import MongoStorage
from satchel_mongo._documents import MAX_VALUE_SIZE

pytestmark = pytest.mark.anyio


@pytest.fixture
def dead_url() -> str:
    """A loopback port nothing listens on, with a short server selection timeout."""
    return f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=200"


@pytest.fixture
async def dead_storage(dead_url: str) -> AsyncIterator[MongoStorage]:
    storage = MongoStorage.from_url(dead_url, namespace="outage")
    yield storage
    await storage.aclose()


async def _expect_outage(call: object) -> None:
    with anyio.fail_after(10):  # a hang guard; the configured bound is 0.2 s
        with pytest.raises(StorageError) as info:
            await call  # type: ignore[misc]
    assert isinstance(info.value.__cause__, ServerSelectionTimeoutError)
    assert "reachable" in str(info.value)


async def test_no_server_outage_on_every_operation_raises_storage_error_with_cause(
    dead_storage: MongoStorage,
) -> None:
    await _expect_outage(dead_storage.read("id1"))
    await _expect_outage(dead_storage.write("id1", b"data", 60))
    await _expect_outage(dead_storage.write_if("id1", b"data", 60, expected=None))
    await _expect_outage(dead_storage.write_if("id1", b"data", 60, expected=b"old"))
    await _expect_outage(dead_storage.touch("id1", 60))
    await _expect_outage(dead_storage.invalidate("id1"))
    await _expect_outage(dead_storage.purge())
    await _expect_outage(dead_storage.write_owned("id1", b"data", 60, owner="ada", expected=None))
    await _expect_outage(dead_storage.touch_owned("id1", 60, owner="ada"))
    await _expect_outage(dead_storage.list_owned("ada"))
    await _expect_outage(dead_storage.invalidate_owned("ada", keep=["id1"]))


async def test_no_server_outage_without_index_creation_still_raises(dead_url: str) -> None:
    storage = MongoStorage.from_url(dead_url, create_index=False)
    try:
        await _expect_outage(storage.read("id1"))
        await _expect_outage(storage.write("id1", b"x", None))
    finally:
        await storage.aclose()


async def test_no_server_value_over_the_document_limit_is_refused_before_any_io(
    dead_storage: MongoStorage,
) -> None:
    too_big = b"x" * (MAX_VALUE_SIZE + 1)
    with anyio.fail_after(0.15):  # refused before server selection (0.2 s) is even tried
        with pytest.raises(StorageError, match="does not fit"):
            await dead_storage.write("id1", too_big, None)
        with pytest.raises(StorageError, match="does not fit"):
            await dead_storage.write_if("id1", too_big, None, expected=None)


async def test_no_server_closed_storage_opens_a_new_client_and_closing_twice_is_fine(
    dead_url: str,
) -> None:
    storage = MongoStorage.from_url(dead_url)
    await storage.aclose()
    await storage.aclose()
    # not "closed": the next call makes a new client, which fails on the outage
    with pytest.raises(StorageError, match="could not") as caught:
        await storage.read("id1")
    assert "closed" not in str(caught.value)
    await storage.aclose()


async def test_no_server_own_client_is_left_open_by_aclose(dead_url: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(dead_url)
    try:
        storage = MongoStorage.from_url("mongodb://ignored/app", client=client)
        assert repr(storage) == "MongoStorage('app.sessions', namespace=None)"
        await storage.aclose()
        # the client is still ours to use: an operation fails on the outage, not on a closed client
        with pytest.raises(ServerSelectionTimeoutError):
            await client["app"]["sessions"].find_one({})
    finally:
        await client.close()


def test_no_server_client_options_with_own_client_are_refused() -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient("mongodb://127.0.0.1:1/")
    with pytest.raises(ConfigError, match="no effect"):
        MongoStorage.from_url("mongodb://h/", client=client, socketTimeoutMS=5)


def test_no_server_timeouts_are_bounded_by_default_and_the_url_may_change_them() -> None:
    default = MongoStorage.from_url("mongodb://127.0.0.1:1/")
    options = default._client.options
    assert options.server_selection_timeout == 5
    assert options.pool_options.connect_timeout == 5
    assert options.pool_options.socket_timeout == 10

    tuned = MongoStorage.from_url("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=250")
    assert tuned._client.options.server_selection_timeout == 0.25
    keyword = MongoStorage.from_url("mongodb://127.0.0.1:1/", socketTimeoutMS=750)
    assert keyword._client.options.pool_options.socket_timeout == 0.75


def test_no_server_database_collection_and_namespace_from_url_or_options() -> None:
    url = "mongodb://127.0.0.1:1/app.carts?namespace=shop"
    assert repr(MongoStorage.from_url(url)) == "MongoStorage('app.carts', namespace='shop')"
    assert repr(MongoStorage.from_url("mongodb://127.0.0.1:1")) == (
        "MongoStorage('satchel.sessions', namespace=None)"
    )
    overridden = MongoStorage.from_url(url, database="db2", collection="c2", namespace="")
    assert repr(overridden) == "MongoStorage('db2.c2', namespace=None)"


def test_no_server_bad_urls_and_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="cannot open"):
        MongoStorage.from_url("mongodb://127.0.0.1:port/")
    with pytest.raises(ConfigError, match="cannot open"):
        MongoStorage.from_url("mongodb://127.0.0.1:1/", serverSelectionTimeoutMS="soon")
    with pytest.raises(ConfigError, match="cannot open"):
        MongoStorage.from_url("mongodb://127.0.0.1:1/", no_such_option=1)
    with pytest.raises(ConfigError, match="cannot use"):
        MongoStorage.from_url("mongodb://127.0.0.1:1/", database="bad name.$")
    with pytest.raises(ConfigError, match="not a MongoDB URL"):
        MongoStorage.from_url("redis://localhost")


def test_no_server_both_schemes_resolve_through_the_installed_plugin() -> None:
    storage = satchel.open_storage("mongodb://127.0.0.1:1/app?namespace=n")
    assert isinstance(storage, MongoStorage)
    assert isinstance(storage, satchel.SessionStorage)
    assert isinstance(storage, satchel.CompareAndSet)
    caps = satchel.capabilities_of(storage)
    assert caps.persistent
    assert caps.event_loops == frozenset({"asyncio"})
    assert caps.max_value_size < 16 * 1024 * 1024  # the BSON document limit
    names = {s for p in satchel.installed_plugins() for s in p.schemes}
    assert {"mongodb", "mongodb+srv"} <= names


def test_no_server_plugin_module_does_not_import_pymongo() -> None:
    code = (
        "import sys, satchel_mongo._plugin, satchel_mongo; "
        "sys.exit(1 if 'pymongo' in sys.modules or 'bson' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_no_server_finder_names_the_three_ways_to_get_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SATCHEL_TEST_MONGODB_URL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no mongod anywhere on it
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    if Path("/var/run/docker.sock").exists():
        pytest.skip("a Docker socket exists here, so the finder would try a container")
    from satchel_conformance.servers import _common

    monkeypatch.setattr(_common, "which", lambda binary: None)
    from satchel_conformance.servers import _mongo

    monkeypatch.setattr(_mongo, "which", lambda binary: None)
    with pytest.raises(Unavailable) as info, mongodb(tmp_path):
        pass
    message = str(info.value)
    assert "SATCHEL_TEST_MONGODB_URL" in message
    assert "mongod" in message
    assert "Docker" in message


def test_no_server_finder_prefers_the_env_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATCHEL_TEST_MONGODB_URL", "mongodb://cluster.example:27017/")
    with mongodb(tmp_path) as url:
        assert url == "mongodb://cluster.example:27017/"


def test_no_server_compatible_server_finder_says_when_it_is_not_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from satchel_conformance.servers import _mongo_compatible

    monkeypatch.setattr(_mongo_compatible, "_MODULE", "satchel_test_no_such_server")
    with pytest.raises(Unavailable) as info, mongo_compatible(tmp_path):
        pass
    message = str(info.value)
    assert "not importable" in message
    assert "SecantusDB==0.7.0b3" in message
    assert list(tmp_path.iterdir()) == []  # nothing was started


@pytest.mark.parametrize("query", ["w=0", "w=0&journal=false"])
async def test_no_server_an_unacknowledged_write_concern_is_refused(query: str) -> None:
    """An unacknowledged write concern (?w=0) is a ConfigError at open: the driver would
    report no write errors and no results, so writes, invalidates and touches would succeed
    silently whatever the server did, write_if(expected=None) would always win (compare-and-set
    no longer atomic) and purge or write_if(expected=...) would fail on the missing counts.
    Never a silent success."""
    with pytest.raises(satchel.ConfigError, match="unacknowledged"):
        MongoStorage.from_url(f"mongodb://localhost:1/app?{query}", create_index=False)


async def test_no_server_reads_go_to_the_primary_whatever_the_url_says() -> None:
    """Session reads go to the primary even when the URL asks for
    readPreference=secondaryPreferred (common for an app's other collections): from a
    secondary, a read right after a logout or a regenerate could still find the old session,
    and a read right after a write could miss it."""
    storage = MongoStorage.from_url(
        "mongodb://localhost:1/app?readPreference=secondaryPreferred", create_index=False
    )
    try:
        assert storage._collection.read_preference == ReadPreference.PRIMARY, (
            f"session reads use {storage._collection.read_preference!r}"
        )
    finally:
        await storage.aclose()
