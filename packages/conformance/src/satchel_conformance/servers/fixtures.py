"""Session-scoped pytest fixtures that yield server URLs, or skip saying what to provide.

The kit's pytest plugin exposes them to every test run: ``satchel_redis_url``,
``satchel_redis_cluster_url``, ``satchel_redis_sentinel_url``, ``satchel_mongodb_url``, and
``satchel_mongo_compatible_url`` (a wire-compatible stand-in for MongoDB, not MongoDB).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from . import Unavailable, mongo_compatible, mongodb, redis, redis_cluster, redis_sentinel

__all__ = [
    "satchel_redis_url",
    "satchel_redis_cluster_url",
    "satchel_redis_sentinel_url",
    "satchel_mongodb_url",
    "satchel_mongo_compatible_url",
]


def _serve(
    finder: Callable[[Path], AbstractContextManager[str]], factory: pytest.TempPathFactory, name: str
) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(finder(factory.mktemp(name)))
        except Unavailable as exc:
            pytest.skip(str(exc))
        yield url


@pytest.fixture(scope="session")
def satchel_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone Redis URL."""
    yield from _serve(redis, tmp_path_factory, "redis")


@pytest.fixture(scope="session")
def satchel_redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``redis+cluster://`` URL to a 3-master Redis Cluster."""
    yield from _serve(redis_cluster, tmp_path_factory, "redis-cluster")


@pytest.fixture(scope="session")
def satchel_redis_sentinel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``redis+sentinel://`` URL to a master watched by sentinels."""
    yield from _serve(redis_sentinel, tmp_path_factory, "redis-sentinel")


@pytest.fixture(scope="session")
def satchel_mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``mongodb://`` URL to a single-node replica set."""
    yield from _serve(mongodb, tmp_path_factory, "mongodb")


@pytest.fixture(scope="session")
def satchel_mongo_compatible_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``mongodb://`` URL to a MongoDB wire-compatible server: a stand-in, not MongoDB.

    Skips when the server's package is not importable (it is in the dev dependency group).
    """
    yield from _serve(mongo_compatible, tmp_path_factory, "mongo-compatible")
