"""Sentinel failover during a write loop, and cluster slot placement, on real servers.

The failover loop also runs a read-modify-write through the compare-and-set script, the
command satchel packs itself on the clients it opens (``satchel_redis._wire``), so that
command crosses the failover too: no increment is lost, none is made up.
"""

from __future__ import annotations

import anyio
import pytest
import satchel
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from satchel_redis import RedisClusterStorage, RedisStorage
from satchel_redis._urls import parse_hosts

pytestmark = pytest.mark.anyio


async def test_writes_resume_after_a_forced_sentinel_failover(
    satchel_redis_sentinel_url: str,
) -> None:
    parsed = parse_hosts(satchel_redis_sentinel_url, default_port=26379)
    service = parsed.path[0]
    host, port = parsed.hosts[0]
    sentinel = Redis(host=host, port=port)
    storage = satchel.open_storage(satchel_redis_sentinel_url, namespace="failover", timeout=2)
    assert isinstance(storage, RedisStorage)

    async def master() -> list[bytes]:
        command = ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
        return list(await sentinel.execute_command(*command))  # type: ignore[no-untyped-call]

    async def force_failover() -> None:
        # a Sentinel that has not yet heard from the replica answers NOGOODSLAVE
        while True:
            try:
                await sentinel.execute_command("SENTINEL", "FAILOVER", service)  # type: ignore[no-untyped-call]
                return
            except ResponseError as exc:
                if "NOGOODSLAVE" not in str(exc):
                    raise
                await anyio.sleep(0.2)

    written_after: list[str] = []
    failures: list[Exception] = []
    counted = uncertain = 0  # compare-and-set increments that landed, and that may have

    async def count() -> None:
        # a read-modify-write through the compare-and-set script, as every request's is
        nonlocal counted, uncertain
        seen = await storage.read("counter")
        assert seen is not None
        try:
            if await storage.write_if("counter", b"%d" % (int(seen) + 1), 60, expected=seen):
                counted += 1
        except satchel.StorageError:
            uncertain += 1  # a write whose reply was lost may still have landed
            raise

    try:
        before = await master()
        with anyio.fail_after(60):
            for i in range(20):
                await storage.write(f"before-{i}", b"v", 60)
            await storage.write("counter", b"0", 60)
            await force_failover()
            i = 0
            # keep writing through the failover until 20 writes land on the new master
            while len(written_after) < 20:
                i += 1
                try:
                    await storage.write(f"after-{i}", str(i).encode(), 60)
                    await count()
                except satchel.StorageError as exc:
                    failures.append(exc)
                    await anyio.sleep(0.05)
                    continue
                if await master() != before:
                    written_after.append(f"after-{i}")
                else:
                    await anyio.sleep(0.01)
        for id in written_after:
            assert await storage.read(id) == id.split("-")[1].encode()
        # no increment lost, none made up: what landed is what was reported, give or take
        # the ones whose outcome the failover hid
        final = await storage.read("counter")
        assert final is not None
        assert counted <= int(final) <= counted + uncertain, (final, counted, uncertain)
        assert counted >= 20
        role = await storage.client.execute_command("ROLE")
        assert role[0] == b"master"
        assert (await storage.client.connection_pool.get_master_address()) != tuple(before)
    finally:
        await storage.aclose()
        await sentinel.aclose()
    # while there was no master, writes failed loudly and briefly, never silently
    assert len(failures) < 100


async def test_cluster_keys_spread_over_slots_and_stay_with_their_tag(
    satchel_redis_cluster_url: str,
) -> None:
    storage = satchel.open_storage(satchel_redis_cluster_url, namespace="slots")
    assert isinstance(storage, RedisClusterStorage)
    try:
        ids = [satchel.token_id() for _ in range(30)]
        for id in ids:
            assert await storage.write_if(id, id.encode(), 60, expected=None)
        nodes = set()
        for id in ids:
            key = storage.key(id)
            slot = await storage.client.cluster_keyslot(key)
            assert slot == await storage.client.cluster_keyslot(id)
            nodes.add(storage.client.get_node_from_key(key).name)
            assert await storage.read(id) == id.encode()
        assert len(nodes) == 3
    finally:
        await storage.aclose()
