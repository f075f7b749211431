"""The conformance kit against standalone Redis, a 3-master Cluster and a Sentinel setup.

The raw helpers read and write the documented key layout, ``satchel:<namespace>:{<id>}``,
with the storage's client but none of the storage's methods.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import satchel
import satchel_conformance
from satchel import SessionStorage
from satchel_conformance import RawRead, RawWrite, Reopen


class _RedisContract(satchel_conformance.StorageContract):
    url_fixture = ""

    @pytest.fixture
    def url(self, request: pytest.FixtureRequest) -> str:
        return str(request.getfixturevalue(self.url_fixture))

    @pytest.fixture
    def namespace(self) -> str:
        return f"kit-{secrets.token_hex(6)}"

    @pytest.fixture
    async def storage(self, url: str, namespace: str) -> AsyncIterator[SessionStorage]:
        # the outage check waits out the timeout of each call: 2 s, not the default 5
        storage = satchel.open_storage(url, namespace=namespace, timeout=2)
        yield storage
        await storage.aclose()

    @pytest.fixture
    def reopen(self, url: str, namespace: str) -> Reopen:
        async def reopen() -> SessionStorage:
            return satchel.open_storage(url, namespace=namespace)

        return reopen

    @pytest.fixture
    async def other_namespace(self, url: str, namespace: str) -> AsyncIterator[SessionStorage]:
        storage = satchel.open_storage(url, namespace=f"{namespace}-other")
        yield storage
        await storage.aclose()

    @pytest.fixture
    async def raw(self, url: str) -> AsyncIterator[Any]:
        storage = satchel.open_storage(url)
        yield storage.client  # type: ignore[attr-defined]
        await storage.aclose()

    @pytest.fixture
    def raw_read(self, raw: Any, namespace: str) -> RawRead:
        async def raw_read(id: str) -> bytes | None:
            value = await raw.get(f"satchel:{namespace}:{{{id}}}")
            return None if value is None else bytes(value)

        return raw_read

    @pytest.fixture
    def raw_write(self, raw: Any, namespace: str) -> RawWrite:
        async def raw_write(id: str, data: bytes) -> None:
            await raw.set(f"satchel:{namespace}:{{{id}}}", data)

        return raw_write


class TestStandaloneRedis(_RedisContract):
    url_fixture = "satchel_redis_url"


# The state machine exercises the storage's logic, which is the same code on every
# deployment; fewer examples on cluster and sentinel keep the package's run short.
class TestRedisCluster(_RedisContract):
    url_fixture = "satchel_redis_cluster_url"
    state_machine_examples = 8


class TestRedisSentinel(_RedisContract):
    url_fixture = "satchel_redis_sentinel_url"
    state_machine_examples = 8
