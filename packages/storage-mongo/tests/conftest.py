"""Fixtures for satchel-mongo's tests.

``satchel_mongodb_url`` comes from the conformance kit's server finder: it yields a URL
(``SATCHEL_TEST_MONGODB_URL``, a ``mongod`` on PATH, or a container) or skips every
test that needs a server, saying which of the three to provide.
``satchel_mongo_compatible_url`` starts a MongoDB wire-compatible stand-in from the dev
dependency group (not MongoDB; see test_mongo_server.py), or skips saying it is missing.

A test that takes ``server_url`` (or a fixture built on it) runs once on each server, and
its ID says which: ``mongodb`` or ``compatible-server``. It works in a fresh namespace of
the ``sessions_test`` collection, whose documents are deleted afterwards, so a shared
cluster is left as it was found.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from satchel_conformance import Outage, StoredExpiry
from satchel_conformance.servers import paused

# Named here as well as in the kit's pytest plugin, so this package's tests find it on their own.
from satchel_conformance.servers.fixtures import (  # noqa: F401 - fixtures
    satchel_mongo_compatible_url,
    satchel_mongodb_url,
)
from satchel_mongo import MongoStorage
from satchel_mongo import _documents as doc

COLLECTION = "sessions_test"
Document = dict[str, Any]

# the test ID of each server, and the session fixture that finds it
SERVERS = {"mongodb": "satchel_mongodb_url", "compatible-server": "satchel_mongo_compatible_url"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=list(SERVERS))
def server_url(request: pytest.FixtureRequest) -> str:
    """The URL of the server this test runs against; its ID is the server's name."""
    url: str = request.getfixturevalue(SERVERS[request.param])
    return url


@pytest.fixture
def server_name(request: pytest.FixtureRequest, server_url: str) -> str:
    """The ID of the server a ``server_url`` test runs against (``mongodb``, ``compatible-server``)."""
    name: str = request.node.callspec.params["server_url"]
    return name


@pytest.fixture
def namespace() -> str:
    return f"test-{secrets.token_hex(6)}"


@pytest.fixture
async def raw(server_url: str, namespace: str) -> AsyncIterator[AsyncCollection[Document]]:
    """The collection, through a client of its own; cleans the test's namespaces after it."""
    parsed = doc.parse_url(server_url)
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        parsed.client_url, **doc.client_options(parsed.query_keys, {})
    )
    collection = client[parsed.database or doc.DEFAULT_DATABASE][COLLECTION]
    try:
        yield collection
    finally:
        await collection.delete_many({"_id.ns": {"$regex": f"^{namespace}"}})
        await client.close()


@pytest.fixture
def open_mongo(server_url: str, namespace: str) -> Callable[..., MongoStorage]:
    """Opens a storage on the test's namespace of ``sessions_test`` (options override)."""

    def open_(**options: Any) -> MongoStorage:
        options.setdefault("namespace", namespace)
        options.setdefault("collection", COLLECTION)
        return MongoStorage.from_url(server_url, **options)

    return open_


@pytest.fixture
async def own_collection(raw: AsyncCollection[Document]) -> AsyncIterator[AsyncCollection[Document]]:
    """A collection of the test's own (its indexes differ from the shared one), dropped after."""
    collection = raw.database[f"{COLLECTION}_{secrets.token_hex(4)}"]
    try:
        yield collection
    finally:
        await collection.drop()


@pytest.fixture
def stored_expiry(raw: AsyncCollection[Document], namespace: str) -> StoredExpiry:
    """The ``expires`` field of the session's document, read with a client of its own."""

    async def stored_expiry(id: str) -> float | None:
        found = await raw.find_one({"_id": doc.document_id(namespace, id)}, {"expires": 1})
        if found is None:
            raise LookupError("no document for the id")
        expires = found.get("expires")
        if expires is None:
            return None
        if expires.tzinfo is None:  # the driver hands back UTC dates without their zone
            expires = expires.replace(tzinfo=timezone.utc)
        return float(expires.timestamp())

    return stored_expiry


def _own_child_on(port: int) -> int | None:
    """The process this test run started that listens on ``port``, if there is one."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                    inodes.add(fields[9])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) != os.getpid():
                continue
            sockets = {
                os.readlink(fd).removeprefix("socket:[").rstrip("]") for fd in (entry / "fd").iterdir()
            }
        except (OSError, ValueError):
            continue
        if sockets & inodes:
            return int(entry.name)
    return None


@pytest.fixture
def outage(server_url: str) -> Outage:
    """The server this run started, paused (SIGSTOP) and continued (SIGCONT): calls wait for
    the storage's timeouts, then fail. A server this run did not start is not paused, and the
    check skips."""
    hosts = doc.parse_url(server_url).client_url.partition("://")[2].partition("/")[0]
    port = int(hosts.rsplit(":", 1)[1]) if ":" in hosts and "," not in hosts else 27017
    pid = _own_child_on(port)
    if pid is None:
        pytest.skip("the MongoDB server was not started by this test run, so it is not paused")
    return paused(pid)
