"""Fixtures for satchel-redis: real servers from the conformance kit's finders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import satchel
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
