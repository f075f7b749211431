"""The hot commands (GET, the compare-and-set script) on every deployment, real servers.

On standalone and Sentinel storages opened from a URL these are packed by satchel and
sent on a pool connection (``satchel_redis._wire``); on a Cluster they go through
redis-py. Either way: a script the server lost is loaded again, an error reply is a
`StorageError` that leaves the connection usable, and a command cancelled at any point
never leaves its reply to be read by the next command on that connection.
"""

from __future__ import annotations

import asyncio

import pytest
from satchel import StorageError
from satchel_redis import RedisClusterStorage, RedisStorage

pytestmark = pytest.mark.anyio

Storage = RedisStorage | RedisClusterStorage


async def test_a_script_the_server_lost_is_loaded_again(storage: Storage) -> None:
    assert await storage.write_if("s", b"one", 60, expected=None)
    await storage.client.script_flush()  # as after a restart or a failover
    assert await storage.write_if("s", b"two", 60, expected=b"one")
    assert await storage.read("s") == b"two"
    assert not await storage.write_if("s", b"three", 60, expected=b"one")
    assert await storage.read("s") == b"two"


async def test_an_error_reply_is_a_storage_error_and_the_connection_stays_usable(storage: Storage) -> None:
    await storage.write("fine", b"F", 60)
    await storage.client.rpush(storage.key("listed"), b"not a session")
    with pytest.raises(StorageError, match="WRONGTYPE"):
        await storage.read("listed")
    with pytest.raises(StorageError, match="WRONGTYPE"):
        await storage.write_if("listed", b"x", 60, expected=b"y")
    # the same connections serve the next commands, each with its own reply
    found = await asyncio.gather(*(storage.read("fine") for _ in range(8)))
    assert found == [b"F"] * 8


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 4, 6])
async def test_a_cancelled_command_leaves_no_reply_behind(storage: Storage, turns: int) -> None:
    ids = [f"own-{i}" for i in range(16)]
    await asyncio.gather(*(storage.write(id, id.encode(), 60) for id in ids))
    reads = [asyncio.ensure_future(storage.read(id)) for id in ids]
    for _ in range(turns):  # the cancellations land at a different step each time
        await asyncio.sleep(0)
    for task in reads[1::2]:
        task.cancel()
    done = await asyncio.gather(*reads, return_exceptions=True)
    for id, outcome in zip(ids, done, strict=True):
        assert outcome == id.encode() or isinstance(outcome, asyncio.CancelledError), (id, outcome)
    # every connection given back answers its own next command
    again = await asyncio.gather(*(storage.read(id) for id in ids * 2))
    assert again == [id.encode() for id in ids * 2]


async def test_the_packed_commands_encode_keys_as_the_client_does(satchel_redis_url: str) -> None:
    # a client made to encode text in another charset writes its keys in it (SET goes
    # through redis-py); the packed GET and compare-and-set must name the same keys
    storage = RedisStorage.from_url(satchel_redis_url, namespace="t-wire-café", encoding="latin-1")
    try:
        await storage.write("x", b"X", 60)
        assert await storage.read("x") == b"X"
        assert await storage.write_if("x", b"Y", 60, expected=b"X")
        assert await storage.client.get(storage.key("x")) == b"Y"
    finally:
        await storage.aclose()
