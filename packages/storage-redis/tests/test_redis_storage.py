"""RedisStorage and RedisClusterStorage against real servers: standalone, cluster, sentinel."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest
import satchel
from satchel_redis import RedisClusterStorage, RedisStorage
from satchel_redis._storage import _WRITE_IF

Storage = RedisStorage | RedisClusterStorage
pytestmark = pytest.mark.anyio


async def test_round_trip_and_absent(storage: Storage) -> None:
    assert await storage.read("never-written-id") is None
    await storage.write("abc", b"\x00\xffdata", None)
    assert await storage.read("abc") == b"\x00\xffdata"
    await storage.write("abc", b"second", None)
    assert await storage.read("abc") == b"second"


async def test_key_carries_a_hash_tag_and_the_namespace(storage: Storage) -> None:
    await storage.write("some-id", b"v", None)
    key = storage.key("some-id")
    assert key == f"satchel:{storage.namespace}:{{some-id}}"
    assert await storage.client.get(key) == b"v"


async def test_write_sets_the_expiry_in_milliseconds(storage: Storage) -> None:
    await storage.write("ttl", b"v", 2.5)
    assert 2000 < await storage.client.pttl(storage.key("ttl")) <= 2500
    await storage.write("no-ttl", b"v", None)
    assert await storage.client.pttl(storage.key("no-ttl")) == -1


async def test_expired_ttl_deletes(storage: Storage) -> None:
    await storage.write("gone", b"v", None)
    await storage.write("gone", b"v", 0)
    assert await storage.read("gone") is None


async def test_touch_extends_or_persists_and_keeps_data(storage: Storage) -> None:
    await storage.write("t", b"data", 1)
    await storage.touch("t", 100)
    assert await storage.client.pttl(storage.key("t")) > 90_000
    await storage.touch("t", None)
    assert await storage.client.pttl(storage.key("t")) == -1
    assert await storage.read("t") == b"data"
    await storage.touch("absent", 10)
    assert await storage.read("absent") is None


async def test_invalidate(storage: Storage) -> None:
    await storage.write("x", b"v", None)
    await storage.invalidate("x")
    await storage.invalidate("x")
    assert await storage.read("x") is None


async def test_write_if_compares_and_sets(storage: Storage) -> None:
    assert await storage.write_if("c", b"one", 60, expected=None)
    assert not await storage.write_if("c", b"two", 60, expected=None)
    assert not await storage.write_if("c", b"two", 60, expected=b"other")
    assert await storage.read("c") == b"one"
    assert await storage.write_if("c", b"two", 60, expected=b"one")
    assert await storage.read("c") == b"two"
    assert 50_000 < await storage.client.pttl(storage.key("c")) <= 60_000


async def test_write_if_after_invalidate_loses(storage: Storage) -> None:
    await storage.write("d", b"old", None)
    await storage.invalidate("d")
    assert not await storage.write_if("d", b"new", None, expected=b"old")
    assert await storage.read("d") is None


async def test_a_resent_write_if_recognises_its_own_write(storage: Storage) -> None:
    # What the storage sends when a reply was lost and the script goes out again.
    key = storage.key("r")
    await storage.write("r", b"old", None)
    script = storage.client.register_script(_WRITE_IF)
    assert await script(keys=[key], args=["1", b"old", b"new", "", "0"]) == 1
    assert await script(keys=[key], args=["1", b"old", b"new", "", "1"]) == 1
    # ... but a first attempt that finds someone else's value is a conflict
    assert await script(keys=[key], args=["1", b"old", b"new", "", "0"]) == 0
    # and an entry deleted in between stays deleted
    await storage.invalidate("r")
    assert await script(keys=[key], args=["1", b"old", b"new", "", "1"]) == 0
    assert await storage.read("r") is None


@pytest.fixture
def url(satchel_redis_url: str) -> str:
    return satchel_redis_url


async def test_a_resent_insert_does_not_resurrect_an_entry_deleted_in_between(url: str) -> None:
    """Deletion wins over a resent insert: write_if(expected=None) runs, its reply is lost, another
    request invalidates the ID, and the script sent again with the retry flag does not bring
    the entry back; a resent insert that finds its own value still succeeds."""
    # _WRITE_IF's comment: "an entry deleted in between stays deleted (deletion wins)".
    # write_if(expected=None) runs, its reply is lost, another request invalidates the id,
    # then the storage sends the script again with the retry flag (what _run does).
    store = RedisStorage.from_url(url, namespace="resend")
    try:
        assert await store.write_if("login", b"v", None, expected=None)
        await store.invalidate("login")
        script = store.client.register_script(_WRITE_IF)
        await script(keys=[store.key("login")], args=["0", b"", b"v", "", "1"])
        assert await store.read("login") is None
        # the resent insert that finds its own value still reports success
        assert await store.write_if("login", b"v", None, expected=None)
        assert await script(keys=[store.key("login")], args=["0", b"", b"v", "", "1"]) == 1
    finally:
        await store.aclose()


async def test_namespaces_do_not_see_each_other(storage: Storage, redis_url: str) -> None:
    other = satchel.open_storage(redis_url, namespace=f"{storage.namespace}-other")
    try:
        await storage.write("shared", b"mine", None)
        assert await other.read("shared") is None
        await other.invalidate("shared")
        assert await storage.read("shared") == b"mine"
    finally:
        await other.aclose()


async def test_data_survives_close_and_reopen(storage: Storage, redis_url: str) -> None:
    await storage.write("kept", b"v", 60)
    await storage.aclose()
    await storage.aclose()
    assert await storage.read("kept") == b"v", "a closed storage connects again on its next call"
    again = satchel.open_storage(redis_url, namespace=storage.namespace)
    try:
        assert await again.read("kept") == b"v"
    finally:
        await again.aclose()


async def test_a_client_passed_in_stays_open(storage: Storage, redis_url: str) -> None:
    mine = satchel.open_storage(redis_url, client=storage.client, namespace="yours")
    await mine.write("k", b"v", None)
    await mine.aclose()
    assert await storage.client.get(mine.key("k")) == b"v"  # type: ignore[attr-defined]


async def test_one_command_per_operation(satchel_redis_url: str) -> None:
    store = RedisStorage.from_url(satchel_redis_url, namespace="round-trips")
    raw = RedisStorage.from_url(satchel_redis_url).client
    try:
        await store.write_if("warm", b"v", None, expected=None)  # loads the script once

        async def commands() -> dict[str, int]:
            stats = await raw.info("commandstats")
            await raw.config_resetstat()
            # a new pooled connection says HELLO once; that is not per operation
            skip = ("cmdstat_info", "cmdstat_config|resetstat", "cmdstat_hello")
            return {k[8:]: v["calls"] for k, v in stats.items() if k not in skip}

        await commands()
        expected = {
            "read": {"get": 1},
            "write": {"set": 1},
            "touch": {"pexpire": 1},
            "persist": {"persist": 1},
            "write_if": {"evalsha": 1, "get": 1, "set": 1},  # GET and SET run inside the script
            "invalidate": {"del": 1},
        }
        ops: dict[str, Callable[[], Awaitable[object]]] = {
            "read": lambda: store.read("a"),
            "write": lambda: store.write("a", b"v", 10),
            "touch": lambda: store.touch("a", 20),
            "persist": lambda: store.touch("a", None),
            "write_if": lambda: store.write_if("a", b"w", 10, expected=b"v"),
            "invalidate": lambda: store.invalidate("a"),
        }
        for name, op in ops.items():
            await op()
            assert await commands() == expected[name], name
    finally:
        await store.aclose()
        await raw.aclose()


def test_plugin_registers_every_scheme_without_importing_redis() -> None:
    code = (
        "import sys, satchel; from satchel._plugins import registry; "
        "print(sorted(s for s in registry().names('storage') if 'redis' in s or s == 'unix')); "
        "print('redis' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "['redis', 'redis+cluster', 'redis+sentinel', 'rediss', 'unix']"
    assert out[1] == "False"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://127.0.0.1:26379", "service name"),
        ("redis+cluster://", "at least one host"),
        ("redis+cluster://h:notaport", "not host:port"),
        ("redis+cluster://h:1?ssl=true", "keyword arguments"),
        ("redis://127.0.0.1/0?timeout=soon", "not a number"),
        ("redis://127.0.0.1/0?namespace=a{b}", "hash tag"),
    ],
)
def test_bad_urls_fail_at_open(url: str, message: str) -> None:
    with pytest.raises(satchel.ConfigError, match=message):
        satchel.open_storage(url)


def test_capabilities() -> None:
    caps = satchel.capabilities_of(RedisStorage.from_url("redis://127.0.0.1:1/0"))
    assert caps.persistent
    assert caps.event_loops == frozenset({"asyncio"})
