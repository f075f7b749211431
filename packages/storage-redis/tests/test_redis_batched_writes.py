"""The commands of one turn of the event loop leave together (see ``satchel_redis._outbox``).

On every deployment (standalone, Sentinel, Cluster, real servers): a burst of concurrent
operations is sent in a few batches, not one write per command, and each operation still
gets its own answer. A connection that closes between its command being queued and the
batch leaving loses nothing: its command is dropped, the read fails as a lost connection
would, the retry policy sends it again, and the other commands of the batch go out.
A client passed in is left as it is. Each test runs on asyncio's own event loop and on
uvloop's.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from redis.asyncio import Redis
from satchel_redis import RedisClusterStorage, RedisStorage
from satchel_redis._outbox import _Outbox, outbox_of

pytestmark = pytest.mark.anyio

BURST = 24


@pytest.fixture(params=[pytest.param({}, id="asyncio"), pytest.param({"use_uvloop": True}, id="uvloop")])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Both event loops an application server runs satchel on."""
    return "asyncio", request.param


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many writes each batch sent, in order."""
    sizes: list[int] = []
    flush = _Outbox.flush

    def counted(self: _Outbox) -> None:
        sizes.append(len(self.queued))
        flush(self)

    monkeypatch.setattr(_Outbox, "flush", counted)
    return sizes


async def test_a_burst_leaves_together_and_each_gets_its_answer(
    storage: RedisStorage | RedisClusterStorage, batches: list[int]
) -> None:
    ids = [f"burst-{i}" for i in range(BURST)]
    # the first rounds open the connections (and the cluster client reads its slots,
    # opening a few more as it goes)
    await asyncio.gather(*(storage.write(id, id.encode(), 60) for id in ids))
    await asyncio.gather(*(storage.read(id) for id in ids))
    batches.clear()
    found = await asyncio.gather(*(storage.read(id) for id in ids))
    assert found == [id.encode() for id in ids]
    # the reads of one burst start in one turn of the loop, so their commands leave in
    # one batch (sent one by one, there would be no batch at all); a cluster node that
    # opens one more connection now sends that one's handshake and command later
    assert batches
    assert max(batches) >= BURST * 3 // 4, batches


async def test_a_connection_closed_before_its_batch_leaves_loses_nothing(
    satchel_redis_url: str,
) -> None:
    storage = RedisStorage.from_url(satchel_redis_url, namespace="t-batch-closed")
    try:
        await asyncio.gather(storage.write("a", b"A", 60), storage.write("b", b"B", 60))
        box = outbox_of(asyncio.get_running_loop())
        reads = [asyncio.ensure_future(storage.read(id)) for id in ("a", "b")]
        # both reads run up to their command, queued in the box: in one turn, or a few
        # (redis-py 5 with hiredis looks at a pooled connection's socket before handing
        # it out, which takes a turn)
        for _ in range(10):
            if box.queued:
                break
            await asyncio.sleep(0)
        assert len(box.queued) == 2
        # one of the two connections drops before the batch leaves
        transport = box.queued[0][0]
        transport.close()
        assert await asyncio.wait_for(asyncio.gather(*reads), 2) == [b"A", b"B"]
    finally:
        await storage.aclose()


async def test_a_client_passed_in_writes_as_it_did(satchel_redis_url: str, batches: list[int]) -> None:
    client = Redis.from_url(satchel_redis_url)
    storage = RedisStorage(client, namespace="t-batch-own")
    try:
        await asyncio.gather(storage.write("mine", b"M", 60), storage.write("yours", b"Y", 60))
        assert list(await asyncio.gather(storage.read("mine"), storage.read("yours"))) == [b"M", b"Y"]
        assert batches == []
    finally:
        await storage.aclose()
        await client.aclose()


def test_an_event_loop_the_storage_ran_on_can_be_freed(satchel_redis_url: str) -> None:
    # an application (or a test suite) that runs each piece of work on a loop of its own
    # must not keep every loop it ever closed, with all it references, alive
    async def use() -> None:
        storage = RedisStorage.from_url(satchel_redis_url, namespace="t-batch-loop")
        try:
            await storage.write("x", b"X", 60)
            assert await storage.read("x") == b"X"
        finally:
            await storage.aclose()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(use())
    loop.close()
    freed = weakref.ref(loop)
    del loop
    gc.collect()
    assert freed() is None
