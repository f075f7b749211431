"""The owner index (`satchel.OwnerIndex`) on standalone Redis, a Cluster and Sentinel.

Owner sets are read with the storage's own client at `owner_key`, the documented layout
``satchel:[<namespace>:]{<sha256 hex of owner>}:owned``: a sorted set of session IDs
scored by expiry (ms on the server's clock).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
import satchel
from redis.exceptions import ConnectionError as RedisConnectionError
from satchel_conformance.servers import free_port
from satchel_redis import RedisClusterStorage, RedisStorage

Storage = RedisStorage | RedisClusterStorage
pytestmark = pytest.mark.anyio

ODD_OWNERS = [
    "{x}",
    "*",
    ":",
    "{",
    "}{",
    "a}b{c",
    "user:42",
    "ünïcødé 用户 😀",
    "line\nbreak and space",
    "o" * 256,
    "😀" * 256,
]


def new_id() -> str:
    """An ID as the core passes it: a 43-character base64url digest."""
    return secrets.token_urlsafe(32)


def lead(storage: Storage) -> float:
    """How far, in seconds, a link's score may run past its session's expiry."""
    return int(storage._slack) / 1000 if isinstance(storage, RedisClusterStorage) else 0.0


async def members(storage: Storage, owner: str) -> dict[str, float]:
    """The owner's set as it is stored: ID -> score."""
    found = await storage.client.zrange(storage.owner_key(owner), 0, -1, withscores=True)
    return {bytes(member).decode(): float(score) for member, score in found}


async def listed(storage: Storage, owner: str) -> dict[str, bytes]:
    return {entry.id: entry.data for entry in await storage.list_owned(owner)}


def test_the_storages_offer_the_capability() -> None:
    for cls in (RedisStorage, RedisClusterStorage):
        store = cls.from_url("redis://127.0.0.1:1/0" if cls is RedisStorage else "redis+cluster://h:1")
        assert isinstance(store, satchel.OwnerIndex)
        assert isinstance(store, satchel.CompareAndSet)


async def test_owner_key_hashes_the_owner_into_its_hash_tag(storage: Storage) -> None:
    for owner in ODD_OWNERS:
        digest = hashlib.sha256(owner.encode()).hexdigest()
        key = storage.owner_key(owner)
        assert key == f"satchel:{storage.namespace}:{{{digest}}}:owned"
        # one brace pair, ours; the key cannot be a session key, which ends in "}"
        assert key.count("{") == key.count("}") == 1
        assert not key.endswith("}")


async def test_write_owned_links_and_list_owned_reports_data_and_expiry(storage: Storage) -> None:
    a, b, forever, theirs = new_id(), new_id(), new_id(), new_id()
    before = time.time()
    assert await storage.write_owned(a, b"\x00a", 60, owner="ada", expected=None)
    assert await storage.write_owned(b, b"b", 120, owner="ada", expected=None)
    assert await storage.write_owned(forever, b"f", None, owner="ada", expected=None)
    assert await storage.write_owned(theirs, b"t", 60, owner="bob", expected=None)
    after = time.time()

    entries = {entry.id: entry for entry in await storage.list_owned("ada")}
    assert set(entries) == {a, b, forever}
    assert entries[a].data == b"\x00a"
    assert entries[b].data == b"b"
    assert entries[forever].expires is None
    for id, ttl in ((a, 60), (b, 120)):
        expires = entries[id].expires
        assert expires is not None
        assert before + ttl - 1 <= expires <= after + ttl + 0.1
    assert await listed(storage, "bob") == {theirs: b"t"}
    assert await storage.list_owned("nobody") == []
    # the sessions are ordinary sessions
    assert await storage.read(a) == b"\x00a"
    # scores are expiries in ms on the server's clock; +inf for no expiry
    scores = await members(storage, "ada")
    assert scores[forever] == math.inf
    assert before * 1000 + 59_000 <= scores[a] <= (after + 60 + lead(storage) + 1) * 1000


async def test_other_namespaces_do_not_see_an_owner(storage: Storage, redis_url: str) -> None:
    other = satchel.open_storage(redis_url, namespace=f"{storage.namespace}-other")
    assert isinstance(other, RedisStorage | RedisClusterStorage)
    try:
        id = new_id()
        assert await storage.write_owned(id, b"mine", 60, owner="ada", expected=None)
        assert await other.list_owned("ada") == []
        assert await other.invalidate_owned("ada") == 0
        assert await listed(storage, "ada") == {id: b"mine"}
        assert await storage.read(id) == b"mine"
    finally:
        await other.aclose()


async def test_write_owned_compares_and_sets(storage: Storage) -> None:
    id = new_id()
    assert await storage.write_owned(id, b"one", 60, owner="ada", expected=None)
    assert not await storage.write_owned(id, b"two", 60, owner="ada", expected=None)
    assert not await storage.write_owned(id, b"two", 60, owner="ada", expected=b"other")
    assert await storage.read(id) == b"one"
    assert await storage.write_owned(id, b"two", 60, owner="ada", expected=b"one")
    assert await storage.read(id) == b"two"
    assert await listed(storage, "ada") == {id: b"two"}
    # an expiry that has run out deletes, and unlinks
    assert await storage.write_owned(id, b"three", 0, owner="ada", expected=b"two")
    assert await storage.read(id) is None
    assert await storage.list_owned("ada") == []


async def test_a_failed_compare_and_set_leaves_no_link(storage: Storage) -> None:
    fresh, taken = new_id(), new_id()
    # expects a value where there is none: nothing written, nothing linked
    assert not await storage.write_owned(fresh, b"v", 60, owner="ada", expected=b"old")
    assert await storage.read(fresh) is None
    assert await storage.client.exists(storage.owner_key("ada")) == 0
    # an insert over someone else's session changes neither it nor the owners' sets
    await storage.write(taken, b"theirs", 60)
    assert not await storage.write_owned(taken, b"mine", 60, owner="ada", expected=None)
    assert await storage.read(taken) == b"theirs"
    assert await storage.client.exists(storage.owner_key("ada")) == 0
    assert await storage.list_owned("ada") == []


async def test_a_failed_write_keeps_the_link_of_the_session_in_place(storage: Storage) -> None:
    # On a cluster the link is written before the compare-and-set: it must not shorten
    # the link of a longer-lived session that the failed write leaves in place.
    id = new_id()
    assert await storage.write_owned(id, b"long", 100, owner="ada", expected=None)
    assert not await storage.write_owned(id, b"short", 1, owner="ada", expected=None)
    assert not await storage.write_owned(id, b"short", 1, owner="ada", expected=b"other")
    ends = time.time() * 1000 + await storage.client.pttl(storage.key(id))
    assert (await members(storage, "ada"))[id] >= ends - 5
    assert await storage.client.pttl(storage.owner_key("ada")) > 90_000
    assert await listed(storage, "ada") == {id: b"long"}


async def test_a_failed_write_on_a_cluster_spares_a_link_another_write_made_since(
    satchel_redis_cluster_url: str,
) -> None:
    # Between this call's link and its compare-and-set, a write of the same ID links it
    # (for longer) and writes it: the failed call must not take that session's link away.
    store = RedisClusterStorage.from_url(satchel_redis_cluster_url, namespace=f"race-{secrets.token_hex(4)}")
    id = new_id()
    real = store._script
    interleaved: list[bool] = []

    async def another_write_first(**kwargs: Any) -> Any:
        if not interleaved:
            interleaved.append(True)
            assert await store.write_owned(id, b"theirs", 120, owner="ada", expected=None)
        return await real(**kwargs)

    setattr(store, "_script", another_write_first)  # noqa: B010 - a stand-in for the script
    try:
        assert not await store.write_owned(id, b"mine", 60, owner="ada", expected=None)
        assert interleaved == [True]
        assert await listed(store, "ada") == {id: b"theirs"}
        # and without an interleaved write, the failed call's own new link goes again
        other = new_id()
        await store.write(other, b"unowned", 60)
        assert not await store.write_owned(other, b"mine", 60, owner="ada", expected=None)
        assert set(await members(store, "ada")) == {id}
    finally:
        await store.aclose()


async def test_a_write_owned_whose_reply_was_lost_is_recognised_when_sent_again(storage: Storage) -> None:
    # The script runs, then the connection drops before the reply arrives: the storage
    # sends it again with the retry flag, and the retry finds its own value in place.
    attr = "_script" if isinstance(storage, RedisClusterStorage) else "_write_owned_script"
    real = getattr(storage, attr)
    lost: list[bool] = []

    async def runs_then_drops(**kwargs: Any) -> Any:
        reply = await real(**kwargs)
        if not lost:
            lost.append(True)
            raise RedisConnectionError("connection dropped before the reply")
        return reply

    setattr(storage, attr, runs_then_drops)
    id = new_id()
    await storage.write(id, b"old", 60)
    assert await storage.write_owned(id, b"new", 60, owner="ada", expected=b"old")
    assert lost == [True]
    assert await listed(storage, "ada") == {id: b"new"}


async def test_invalidate_of_one_id_unlinks_it(storage: Storage) -> None:
    gone, kept = new_id(), new_id()
    assert await storage.write_owned(gone, b"g", 60, owner="ada", expected=None)
    assert await storage.write_owned(kept, b"k", 60, owner="ada", expected=None)
    await storage.invalidate(gone)
    assert await listed(storage, "ada") == {kept: b"k"}
    assert await storage.invalidate_owned("ada", keep=[kept]) == 0
    assert await storage.read(kept) == b"k"
    if isinstance(storage, RedisStorage):
        # a single server drops a member whose session is gone as soon as it sees one
        assert set(await members(storage, "ada")) == {kept}


async def test_an_unowned_write_over_an_owned_session_is_still_found_by_its_link(storage: Storage) -> None:
    # The link says which sessions to look at; the core tells owners apart by the data.
    id = new_id()
    assert await storage.write_owned(id, b"ada's", 60, owner="ada", expected=None)
    await storage.write(id, b"someone else's", 60)
    assert await listed(storage, "ada") == {id: b"someone else's"}


async def test_expiry_unlinks_and_the_owner_set_ends_with_its_last_member(redis_url: str) -> None:
    # timeout=1: on a cluster, a link's score leads its session's expiry by the deadline
    store = satchel.open_storage(redis_url, namespace=f"expiry-{secrets.token_hex(4)}", timeout=1)
    assert isinstance(store, RedisStorage | RedisClusterStorage)
    try:
        short, long = new_id(), new_id()
        assert await store.write_owned(short, b"s", 0.3, owner="ada", expected=None)
        assert await store.write_owned(long, b"l", 0.6, owner="ada", expected=None)
        key = store.owner_key("ada")
        # the set lives as long as its longest-lived member
        assert 0 < await store.client.pttl(key) <= 600 + lead(store) * 1000 + 50
        assert set(await listed(store, "ada")) == {short, long}

        await anyio.sleep(0.4)
        assert set(await listed(store, "ada")) == {long}
        await anyio.sleep(0.3)
        assert await store.list_owned("ada") == []
        assert await store.invalidate_owned("ada") == 0

        # once the last score has passed, the server has dropped the set by itself
        await anyio.sleep(lead(store) + 0.1)
        assert await store.client.exists(key) == 0
    finally:
        await store.aclose()


async def test_expired_members_are_pruned_when_the_owner_is_written(redis_url: str) -> None:
    store = satchel.open_storage(redis_url, namespace=f"prune-{secrets.token_hex(4)}", timeout=1)
    assert isinstance(store, RedisStorage | RedisClusterStorage)
    try:
        old = [new_id() for _ in range(5)]
        for id in old:
            assert await store.write_owned(id, b"o", 0.2, owner="ada", expected=None)
        await anyio.sleep(0.3 + lead(store))
        fresh = new_id()
        assert await store.write_owned(fresh, b"f", None, owner="ada", expected=None)
        assert set(await members(store, "ada")) == {fresh}
        # a member without expiry: the set has none either
        assert await store.client.pttl(store.owner_key("ada")) == -1
    finally:
        await store.aclose()


async def test_touch_owned_moves_the_session_and_its_link(storage: Storage) -> None:
    id = new_id()
    key, owners = storage.key(id), storage.owner_key("ada")
    assert await storage.write_owned(id, b"data", 1, owner="ada", expected=None)

    before = time.time()
    await storage.touch_owned(id, 100, owner="ada")
    assert 90_000 < await storage.client.pttl(key) <= 100_000
    assert await storage.client.pttl(owners) > 90_000
    score = (await members(storage, "ada"))[id]
    assert (before + 99) * 1000 <= score <= (time.time() + 100 + lead(storage) + 1) * 1000
    [entry] = await storage.list_owned("ada")
    assert entry.expires is not None
    assert entry.expires > before + 99

    await storage.touch_owned(id, None, owner="ada")
    assert await storage.client.pttl(key) == -1
    assert await storage.client.pttl(owners) == -1
    assert (await members(storage, "ada"))[id] == math.inf
    [entry] = await storage.list_owned("ada")
    assert (entry.data, entry.expires) == (b"data", None)

    await storage.touch_owned(id, 0, owner="ada")
    assert await storage.read(id) is None
    assert await storage.list_owned("ada") == []


async def test_touch_owned_of_an_absent_or_unlinked_session_links_nothing(storage: Storage) -> None:
    absent, unlinked = new_id(), new_id()
    await storage.touch_owned(absent, 60, owner="ada")
    assert await storage.read(absent) is None
    await storage.write(unlinked, b"u", 1)
    await storage.touch_owned(unlinked, 60, owner="ada")
    assert await storage.client.pttl(storage.key(unlinked)) > 50_000
    assert await storage.client.exists(storage.owner_key("ada")) == 0
    assert await storage.list_owned("ada") == []


async def test_invalidate_owned_keeps_counts_and_repeats(storage: Storage) -> None:
    ids = [new_id() for _ in range(4)]
    for id in ids:
        assert await storage.write_owned(id, b"v", 60, owner="ada", expected=None)
    bobs = new_id()
    assert await storage.write_owned(bobs, b"b", 60, owner="bob", expected=None)
    await storage.invalidate(ids[3])  # already gone: not counted

    assert await storage.invalidate_owned("ada", keep=[ids[0], "not-an-owned-id"]) == 2
    assert [await storage.read(id) for id in ids] == [b"v", None, None, None]
    assert await listed(storage, "ada") == {ids[0]: b"v"}
    assert await listed(storage, "bob") == {bobs: b"b"}
    assert await storage.invalidate_owned("ada", keep=[ids[0]]) == 0

    assert await storage.invalidate_owned("ada") == 1
    assert await storage.invalidate_owned("ada") == 0
    assert await storage.list_owned("ada") == []
    if isinstance(storage, RedisStorage):
        assert await storage.client.exists(storage.owner_key("ada")) == 0
    assert await storage.read(bobs) == b"b"


@pytest.mark.parametrize("owner", ODD_OWNERS, ids=range(len(ODD_OWNERS)))
async def test_odd_owners_are_owners_like_any_other(storage: Storage, owner: str) -> None:
    mine = new_id()
    assert await storage.write_owned(mine, b"m", 60, owner=owner, expected=None)
    # owners that share characters with this one, or are a hash tag's contents
    neighbours = {other: new_id() for other in ("x", "{x}x", owner[:-1] or "-", owner + "}")}
    for other, id in neighbours.items():
        assert await storage.write_owned(id, b"n", 60, owner=other, expected=None)
    assert await listed(storage, owner) == {mine: b"m"}
    await storage.touch_owned(mine, 120, owner=owner)
    assert await storage.invalidate_owned(owner) == 1
    assert await storage.read(mine) is None
    for other, id in neighbours.items():
        assert await listed(storage, other) == {id: b"n"}


@pytest.mark.parametrize(
    "id", ["plain-id", "id:with:colons", "id{with}braces", "ünïcødé-😀", "*"], ids=range(5)
)
async def test_any_id_the_storage_accepts_can_be_owned(storage: Storage, id: str) -> None:
    assert await storage.write_owned(id, b"v", 60, owner="ada", expected=None)
    assert await storage.read(id) == b"v"
    await storage.touch_owned(id, 120, owner="ada")
    assert await listed(storage, "ada") == {id: b"v"}
    assert await storage.invalidate_owned("ada") == 1
    assert await storage.read(id) is None


def count_commands(client: Any) -> list[str]:
    """Wrap ``client.execute_command``: the names of the commands it sends, in order."""
    sent: list[str] = []
    real = client.execute_command

    async def execute_command(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await real(*args, **options)

    client.execute_command = execute_command
    return sent


async def commandstats(raw: Any) -> dict[str, int]:
    """The server's command counts since the last call (scripts' inner commands too)."""
    stats = await raw.info("commandstats")
    await raw.config_resetstat()
    skip = ("cmdstat_info", "cmdstat_config|resetstat", "cmdstat_hello")
    return {k[8:]: v["calls"] for k, v in stats.items() if k not in skip}


async def test_each_owner_operation_is_one_script_call_on_a_single_server(satchel_redis_url: str) -> None:
    store = RedisStorage.from_url(satchel_redis_url, namespace=f"one-call-{secrets.token_hex(4)}")
    raw = RedisStorage.from_url(satchel_redis_url).client
    try:
        id = new_id()
        # loads each script once (EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA)
        assert await store.write_owned(id, b"v", 60, owner="ada", expected=None)
        await store.touch_owned(id, 60, owner="ada")
        await store.list_owned("ada")
        await store.invalidate_owned("nobody")

        sent = count_commands(store.client)
        ops: dict[str, Callable[[], Awaitable[object]]] = {
            "write_owned": lambda: store.write_owned(id, b"w", 60, owner="ada", expected=b"v"),
            "touch_owned": lambda: store.touch_owned(id, 120, owner="ada"),
            "list_owned": lambda: store.list_owned("ada"),
            "invalidate_owned": lambda: store.invalidate_owned("ada"),
        }
        for name, op in ops.items():
            await commandstats(raw)
            sent.clear()
            await op()
            assert sent == ["EVALSHA"], name
            assert (await commandstats(raw))["evalsha"] == 1, name
    finally:
        await store.aclose()
        await raw.aclose()


async def test_revoking_100_of_100_000_sessions_is_one_script_call(satchel_redis_url: str) -> None:
    store = RedisStorage.from_url(satchel_redis_url, namespace=f"revoke-{secrets.token_hex(4)}")
    raw = RedisStorage.from_url(satchel_redis_url).client
    others = [store.key(f"other-{i}") for i in range(100_000 - 100)]
    try:
        async with raw.pipeline(transaction=False) as pipe:
            for start in range(0, len(others), 1000):
                pipe.mset(dict.fromkeys(others[start : start + 1000], b"someone else's"))
            await pipe.execute()
        owned = [new_id() for _ in range(100)]
        for id in owned:
            assert await store.write_owned(id, b"ada's", 3600, owner="ada", expected=None)
        await store.invalidate_owned("warm-the-script-cache")

        sent = count_commands(store.client)
        await commandstats(raw)
        assert await store.invalidate_owned("ada") == 100
        stats = await commandstats(raw)
        assert sent == ["EVALSHA"]
        assert stats["evalsha"] == 1
        # the script reads the owner's set and deletes its sessions: it scans nothing
        assert stats["del"] == 100
        assert not {"scan", "keys"} & set(stats)

        assert [await store.read(id) for id in owned] == [None] * 100
        assert await raw.exists(*others[:1000]) == 1000
        assert await store.client.exists(store.owner_key("ada")) == 0
    finally:
        async with raw.pipeline(transaction=False) as pipe:
            for start in range(0, len(others), 1000):
                pipe.unlink(*others[start : start + 1000])
            await pipe.execute()
        await store.aclose()
        await raw.aclose()


async def test_writes_racing_a_revoke_are_either_linked_and_readable_or_gone(storage: Storage) -> None:
    owner = "ada"
    written: list[str] = []
    before: list[str] = []  # writes that returned before invalidate_owned was sent
    started = False
    counts: list[int] = []

    some_written = anyio.Event()

    async def writer() -> None:
        for _ in range(15):
            id = new_id()
            written.append(id)
            assert await storage.write_owned(id, b"v", 60, owner=owner, expected=None)
            if not started:
                before.append(id)
                if len(before) >= 40:
                    some_written.set()

    async def revoke() -> None:
        nonlocal started
        await some_written.wait()
        started = True
        counts.append(await storage.invalidate_owned(owner))
        counts.append(await storage.invalidate_owned(owner))

    # A cluster client that has not loaded its slot map yet fails some of a burst of first
    # commands (write_if alike); this test is about the owner index, so the map is loaded.
    await storage.read("warm-up")
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(writer)
        tg.start_soon(revoke)

    assert before
    ids = set(await listed(storage, owner))
    for id in written:
        readable = await storage.read(id) is not None
        assert (id in ids) == readable
    assert not ids & set(before)
    assert counts[0] >= len(before)


@pytest.fixture
async def unreachable() -> AsyncIterator[RedisStorage]:
    store = RedisStorage.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    yield store
    await store.aclose()


async def test_failures_name_a_fingerprint_not_the_owner_or_id(unreachable: RedisStorage) -> None:
    id, owner = new_id(), "ada.lovelace@example.com"
    owner_label = f"owner sha256:{hashlib.sha256(owner.encode()).hexdigest()[:8]}"
    id_label = f"session sha256:{hashlib.sha256(id.encode()).hexdigest()[:8]}"
    calls: list[tuple[Awaitable[object], str]] = [
        (unreachable.write_owned(id, b"v", 60, owner=owner, expected=None), id_label),
        (unreachable.touch_owned(id, 60, owner=owner), id_label),
        (unreachable.list_owned(owner), owner_label),
        (unreachable.invalidate_owned(owner, keep=[id]), owner_label),
    ]
    for call, label in calls:
        with anyio.fail_after(10), pytest.raises(satchel.StorageError) as caught:
            await call
        message = str(caught.value)
        assert label in message
        assert owner not in message
        assert id not in message
