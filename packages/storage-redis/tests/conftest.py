"""Fixtures for satchel-redis: real servers from the conformance kit's finders.

``stored_expiry`` and ``outage`` are the conformance kit's optional fixtures (see
docs/conformance.md), found by name by its checks on any test class here.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import satchel
from satchel_conformance import Outage, StoredExpiry
from satchel_conformance.servers import paused
from satchel_conformance.servers.fixtures import (
    satchel_redis_cluster_url,
    satchel_redis_sentinel_url,
    satchel_redis_url,
)
from satchel_redis import RedisClusterStorage, RedisStorage

__all__ = [
    "satchel_redis_url",
    "satchel_redis_cluster_url",
    "satchel_redis_sentinel_url",
]

Opener = Callable[..., satchel.SessionStorage]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(
    params=["standalone", "cluster", "sentinel"],
)
def redis_url(request: pytest.FixtureRequest) -> str:
    """The URL of each deployment in turn (cluster and sentinel start once per session)."""
    name = {
        "standalone": "satchel_redis_url",
        "cluster": "satchel_redis_cluster_url",
        "sentinel": "satchel_redis_sentinel_url",
    }[request.param]
    return str(request.getfixturevalue(name))


@pytest.fixture
async def storage(
    redis_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[RedisStorage | RedisClusterStorage]:
    """A storage on each deployment, in a namespace of its own."""
    store = satchel.open_storage(redis_url, namespace=f"t-{request.node.name}"[:120], timeout=5)
    assert isinstance(store, RedisStorage | RedisClusterStorage)
    yield store
    await store.aclose()


@pytest.fixture
def stored_expiry(storage: object) -> StoredExpiry:
    """The key's PTTL, through the storage's client, as Unix seconds on this machine's clock."""
    assert isinstance(storage, RedisStorage | RedisClusterStorage)

    async def stored_expiry(id: str) -> float | None:
        left = await storage.client.pttl(storage.key(id))
        if left == -2:
            raise LookupError("no key for the id")
        return None if left == -1 else time.time() + left / 1000

    return stored_expiry


def _own_child(pid: int) -> bool:
    """Whether ``pid`` is a process this test run started (so it may pause it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rpartition(")")[2].split()[1]) == os.getpid()


@pytest.fixture
async def outage(storage: object, url: str) -> Outage:
    """The standalone server this run started, paused (SIGSTOP) and continued (SIGCONT):
    calls wait for the storage's timeout, then fail. A server from SATCHEL_TEST_REDIS_URL,
    a container, a cluster or a sentinel setup is not paused, and the check skips."""
    if type(storage) is not RedisStorage or not url.startswith("redis://"):
        pytest.skip("the outage is checked on a standalone Redis server only")
    info = await storage.client.info("server")
    pid = int(info["process_id"])
    if not _own_child(pid):
        pytest.skip("the Redis server was not started by this test run, so it is not paused")
    return paused(pid)
