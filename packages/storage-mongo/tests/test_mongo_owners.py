"""MongoStorage's owner index (`satchel.OwnerIndex`) against a real server.

Every test runs against MongoDB (``mongodb``; skipped without one, saying what to
provide) and against the wire-compatible stand-in (``compatible-server``; see
test_mongo_server.py for what it can and cannot prove). The stand-in has what the owner
index needs: partial indexes, an index on a field of ``_id``, ``hint`` on ``find`` and
``delete_many``, and MongoDB's conflict codes when an index is created twice. The
conformance kit's owner checks run in test_mongo_server.py; these look at what is
MongoDB's own: the ``owner`` field, the index, expired documents the TTL monitor has not
removed yet, and ``invalidate_owned`` racing writes and touches.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
import satchel
from pymongo.asynchronous.collection import AsyncCollection
from satchel import OwnedEntry
from satchel_mongo import MongoStorage
from satchel_mongo import _documents as doc

pytestmark = pytest.mark.anyio

Document = dict[str, Any]
# BSON dates keep milliseconds: a stored expiry can be up to 1 ms early
MS = 0.002


@pytest.fixture
async def store(open_mongo: Callable[..., MongoStorage]) -> AsyncIterator[MongoStorage]:
    """A storage on the test's namespace of the shared collection."""
    storage = open_mongo()
    yield storage
    await storage.aclose()


@pytest.fixture
def owner() -> str:
    return f"user-{secrets.token_hex(4)}"


def _id() -> str:
    return secrets.token_urlsafe(16)


async def _listed(storage: MongoStorage, owner: str) -> dict[str, bytes]:
    return {entry.id: entry.data for entry in await storage.list_owned(owner)}


async def _owner_field(raw: AsyncCollection[Document], namespace: str | None, id: str) -> object:
    found = await raw.find_one({"_id": doc.document_id(namespace, id)})
    assert found is not None
    return found.get("owner", "<no owner field>")


# --- write_owned and list_owned --------------------------------------------------------


async def test_owners_listed_with_their_data_and_expiry_in_unix_seconds(
    store: MongoStorage, owner: str
) -> None:
    lasting, rolling = _id(), _id()
    before = time.time()
    assert await store.write_owned(lasting, b"\x00\xff forever", None, owner=owner, expected=None)
    assert await store.write_owned(rolling, b"an hour", 3600, owner=owner, expected=None)
    after = time.time()
    entries = {entry.id: entry for entry in await store.list_owned(owner)}
    assert entries[lasting] == OwnedEntry(lasting, b"\x00\xff forever", None)
    assert entries[rolling].data == b"an hour"
    expires = entries[rolling].expires
    assert expires is not None
    assert before + 3600 - MS <= expires <= after + 3600
    assert sorted(entries) == sorted([lasting, rolling])
    assert await store.read(rolling) == b"an hour"


async def test_owners_document_holds_the_owner_beside_the_session(
    store: MongoStorage, raw: AsyncCollection[Document], namespace: str, owner: str
) -> None:
    id = _id()
    await store.write_owned(id, b"x", 60, owner=owner, expected=None)
    assert await _owner_field(raw, namespace, id) == owner


async def test_owners_another_owner_and_another_namespace_are_not_seen(
    open_mongo: Callable[..., MongoStorage], namespace: str, owner: str
) -> None:
    here, there = open_mongo(), open_mongo(namespace=namespace + "-other")
    try:
        mine, theirs, same_id = _id(), _id(), _id()
        await here.write_owned(mine, b"mine", None, owner=owner, expected=None)
        await here.write_owned(theirs, b"theirs", None, owner=owner + "x", expected=None)
        await here.write_owned(same_id, b"here", None, owner=owner, expected=None)
        await there.write_owned(same_id, b"there", None, owner=owner, expected=None)
        assert await _listed(here, owner) == {mine: b"mine", same_id: b"here"}
        assert await _listed(there, owner) == {same_id: b"there"}
        assert await here.invalidate_owned(owner) == 2
        assert await _listed(there, owner) == {same_id: b"there"}
        assert await there.read(same_id) == b"there"
        assert await here.read(theirs) == b"theirs"
    finally:
        await here.aclose()
        await there.aclose()


async def test_owners_outside_a_namespace_are_kept_apart_from_every_namespace(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document], owner: str
) -> None:
    plain = open_mongo(collection=own_collection.name, namespace=None)
    shop = open_mongo(collection=own_collection.name, namespace="shop")
    try:
        await plain.write_owned("id1", b"plain", None, owner=owner, expected=None)
        await shop.write_owned("id1", b"shop", None, owner=owner, expected=None)
        assert await _listed(plain, owner) == {"id1": b"plain"}
        assert await _listed(shop, owner) == {"id1": b"shop"}
        # with keep too, whose condition on _id must not replace the one that keeps namespaces out
        assert await plain.invalidate_owned(owner, keep=["absent"]) == 1
        assert await _listed(shop, owner) == {"id1": b"shop"}
        assert await shop.invalidate_owned(owner) == 1
        assert await own_collection.count_documents({}) == 0
    finally:
        await plain.aclose()
        await shop.aclose()


async def test_owners_write_owned_has_write_if_semantics_and_a_refusal_links_nothing(
    store: MongoStorage, raw: AsyncCollection[Document], namespace: str, owner: str
) -> None:
    other = owner + "-other"
    id = _id()
    await store.write(id, b"plain", None)
    assert await store.write_owned(id, b"taken", None, owner=owner, expected=b"not plain") is False
    assert await store.write_owned(id, b"taken", None, owner=owner, expected=None) is False
    assert await store.read(id) == b"plain"
    assert await _listed(store, owner) == {}
    assert await _owner_field(raw, namespace, id) == "<no owner field>"

    assert await store.write_owned(id, b"owned", 60, owner=owner, expected=b"plain") is True
    assert await store.write_owned(id, b"stolen", 60, owner=other, expected=None) is False
    assert await store.write_owned(id, b"stolen", 60, owner=other, expected=b"plain") is False
    assert await _listed(store, owner) == {id: b"owned"}
    assert await _listed(store, other) == {}

    # with the right expected value the session moves to the other owner, in one step
    assert await store.write_owned(id, b"moved", 60, owner=other, expected=b"owned") is True
    assert await _listed(store, owner) == {}
    assert await _listed(store, other) == {id: b"moved"}


async def test_owners_invalidated_session_is_not_brought_back_by_write_owned(
    store: MongoStorage, owner: str
) -> None:
    id = _id()
    await store.write_owned(id, b"signed in", None, owner=owner, expected=None)
    await store.invalidate(id)
    assert await _listed(store, owner) == {}
    assert await store.invalidate_owned(owner) == 0
    # deletion wins: a late save with the old value does not resurrect the session or its link
    assert await store.write_owned(id, b"late", None, owner=owner, expected=b"signed in") is False
    assert await _listed(store, owner) == {}
    assert await store.read(id) is None


@pytest.mark.parametrize("plain_write", ["write", "write_if"])
async def test_owners_a_plain_write_drops_the_link(
    store: MongoStorage, raw: AsyncCollection[Document], namespace: str, owner: str, plain_write: str
) -> None:
    id = _id()
    await store.write_owned(id, b"owned", None, owner=owner, expected=None)
    if plain_write == "write":
        await store.write(id, b"plain", None)
    else:
        assert await store.write_if(id, b"plain", None, expected=b"owned") is True
    assert await store.read(id) == b"plain"
    assert await _listed(store, owner) == {}
    assert await store.invalidate_owned(owner) == 0
    assert await _owner_field(raw, namespace, id) == "<no owner field>"


# --- expiry ------------------------------------------------------------------------------


@pytest.fixture
async def untended(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document], namespace: str
) -> AsyncIterator[MongoStorage]:
    """A storage on a collection with the owner index but no TTL index: nothing but the
    storage's own filters stands between an expired document and a listing."""
    keys, options = doc.owner_index()
    await own_collection.create_index(keys, **options)
    storage = open_mongo(collection=own_collection.name, create_index=False)
    yield storage
    await storage.aclose()


async def test_owners_an_expired_session_is_neither_listed_nor_counted_before_the_ttl_monitor_runs(
    untended: MongoStorage, own_collection: AsyncCollection[Document], namespace: str, owner: str
) -> None:
    stale, live = _id(), _id()
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    key = doc.document_id(namespace, stale)
    await own_collection.insert_one(doc.session_document(key, b"stale", past, owner))
    await untended.write_owned(live, b"live", 60, owner=owner, expected=None)

    assert await _listed(untended, owner) == {live: b"live"}
    assert await untended.invalidate_owned(owner, keep=[live]) == 0
    # the expired document is left to the TTL monitor, uncounted
    assert await own_collection.count_documents({"_id": key}) == 1
    # and write_owned treats it as absent, as write_if does
    assert await untended.write_owned(stale, b"x", None, owner=owner, expected=b"stale") is False
    assert await untended.write_owned(stale, b"fresh", 60, owner=owner, expected=None) is True
    assert await _listed(untended, owner) == {live: b"live", stale: b"fresh"}
    assert await untended.invalidate_owned(owner) == 2


async def test_owners_a_session_past_its_ttl_drops_out_of_the_listing(
    store: MongoStorage, owner: str
) -> None:
    brief, lasting = _id(), _id()
    await store.write_owned(brief, b"brief", 0.3, owner=owner, expected=None)
    await store.write_owned(lasting, b"lasting", None, owner=owner, expected=None)
    await anyio.sleep(0.5)
    assert await _listed(store, owner) == {lasting: b"lasting"}
    assert await store.invalidate_owned(owner) == 1


async def test_owners_touch_owned_moves_the_listed_expiry_and_keeps_the_link(
    store: MongoStorage, raw: AsyncCollection[Document], namespace: str, owner: str
) -> None:
    id = _id()
    await store.write_owned(id, b"rolling", 60, owner=owner, expected=None)
    before = time.time()
    await store.touch_owned(id, 3600, owner=owner)
    after = time.time()
    (entry,) = await store.list_owned(owner)
    assert entry.data == b"rolling"
    assert entry.expires is not None
    assert before + 3600 - MS <= entry.expires <= after + 3600
    await store.touch_owned(id, None, owner=owner)
    assert await store.list_owned(owner) == [OwnedEntry(id, b"rolling", None)]
    assert await _owner_field(raw, namespace, id) == owner
    # an absent id stays absent
    await store.touch_owned(_id(), 60, owner=owner)
    assert [entry.id for entry in await store.list_owned(owner)] == [id]


# --- invalidate_owned ---------------------------------------------------------------------


async def test_owners_invalidate_owned_keeps_what_it_is_told_and_counts_the_rest(
    store: MongoStorage, owner: str
) -> None:
    doomed = [_id() for _ in range(4)]
    kept = [_id() for _ in range(2)]
    someone_elses, plain = _id(), _id()
    for n, id in enumerate(doomed + kept):
        await store.write_owned(id, b"%d" % n, 600 if n % 2 else None, owner=owner, expected=None)
    await store.write_owned(someone_elses, b"theirs", None, owner=owner + "-2", expected=None)
    await store.write(plain, b"nobody's", None)

    # keep may name another owner's session or an absent one: neither changes anything
    assert await store.invalidate_owned(owner, keep={*kept, someone_elses, _id()}) == len(doomed)
    assert sorted(await _listed(store, owner)) == sorted(kept)
    assert [await store.read(id) for id in doomed] == [None] * len(doomed)
    assert await store.invalidate_owned(owner, keep=kept) == 0
    assert await store.invalidate_owned(owner) == len(kept)
    assert await store.invalidate_owned(owner) == 0
    assert await store.read(someone_elses) == b"theirs"
    assert await store.read(plain) == b"nobody's"


async def test_owners_keep_given_as_one_string_is_refused(store: MongoStorage, owner: str) -> None:
    id = _id()
    await store.write_owned(id, b"x", None, owner=owner, expected=None)
    with pytest.raises(TypeError, match="not one string"):
        await store.invalidate_owned(owner, keep=id)
    assert await _listed(store, owner) == {id: b"x"}


ODD_OWNERS = [
    "$",
    ".",
    "$where",
    "$gt",
    "a.b",
    '{"$ne": null}',
    "/.*/",
    "\x00",
    " ",
    "Ådå 用户 😀",
    "e\u0301",  # not the same owner as "\u00e9": no normalization
    "\u00e9",
    "o" * 256,
]


async def test_owners_with_odd_characters_are_stored_and_matched_literally(
    store: MongoStorage, raw: AsyncCollection[Document], namespace: str
) -> None:
    sessions = {owner: _id() for owner in ODD_OWNERS}
    for owner, id in sessions.items():
        assert await store.write_owned(id, owner.encode(), None, owner=owner, expected=None) is True
    for owner, id in sessions.items():
        assert await _listed(store, owner) == {id: owner.encode()}, f"owner {owner!r}"
        assert await _owner_field(raw, namespace, id) == owner
    for owner in ODD_OWNERS:
        assert await store.invalidate_owned(owner) == 1, f"owner {owner!r}"
    assert [await store.read(id) for id in sessions.values()] == [None] * len(sessions)


@pytest.mark.parametrize("owner", ["", "o" * 257, None, 42])
async def test_owners_that_are_not_1_to_256_characters_are_refused_before_any_io(
    store: MongoStorage, owner: Any
) -> None:
    # None above all: as a filter it would match every unowned session of the namespace
    for call in (
        store.write_owned(_id(), b"x", None, owner=owner, expected=None),
        store.touch_owned(_id(), None, owner=owner),
        store.list_owned(owner),
        store.invalidate_owned(owner),
    ):
        with pytest.raises(ValueError, match="owner"):
            await call


# --- invalidate_owned racing writes and touches --------------------------------------------


async def test_owners_invalidate_owned_amid_writes_and_touches_ends_every_older_session(
    store: MongoStorage, owner: str
) -> None:
    """Sessions written before the call are gone when it returns, even those touched during
    it; those written during it are each either listed and readable, or neither; the count
    is of exactly the sessions that went."""
    older = [_id() for _ in range(40)]
    for id in older:
        await store.write_owned(id, b"older", 600, owner=owner, expected=None)
    started, finished, go = anyio.Event(), anyio.Event(), anyio.Event()
    written: list[str] = []
    before_start: list[str] = []
    counted: list[int] = []

    async def writer(n: int) -> None:
        for k in range(12):
            id = _id()
            assert await store.write_owned(id, b"%d.%d" % (n, k), 600, owner=owner, expected=None)
            written.append(id)
            if not started.is_set():
                before_start.append(id)
            if k == 2:
                go.set()
            await anyio.lowlevel.checkpoint()

    async def toucher(n: int) -> None:
        # moves the older sessions' expiry back and forth (to none, to later, to sooner)
        await go.wait()
        while not finished.is_set():
            for ttl in (None, 3600.0, 30.0):
                await store.touch_owned(older[n], ttl, owner=owner)
            n = (n + 7) % len(older)

    async def revoker() -> None:
        await go.wait()
        started.set()
        counted.append(await store.invalidate_owned(owner))
        finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(revoker)
        for n in range(8):
            tg.start_soon(writer, n)
        for n in range(4):
            tg.start_soon(toucher, n * 10)

    listed = await _listed(store, owner)
    readable = {id for id in older + written if await store.read(id) is not None}
    assert not readable & {*older, *before_start}, "a session written before invalidate_owned survived it"
    assert not set(listed) & {*older, *before_start}
    for id in written:
        assert (id in listed) == (id in readable), "a session listed but not readable, or the other way"
    gone = [id for id in written if id not in readable]
    assert counted == [len(older) + len(gone)]
    assert await store.invalidate_owned(owner) == len(listed)
    assert await store.invalidate_owned(owner) == 0


# --- the owner index ------------------------------------------------------------------------


async def test_owner_index_is_created_on_the_first_owner_call_only(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document], owner: str
) -> None:
    storage = open_mongo(collection=own_collection.name)
    try:
        await storage.write("plain", b"x", None)
        assert doc.OWNER_INDEX_NAME not in await own_collection.index_information()
        await storage.list_owned(owner)
    finally:
        await storage.aclose()
    for _ in range(2):  # asking again for the same index is a no-op, not an error
        again = open_mongo(collection=own_collection.name)
        await again.write_owned(_id(), b"x", None, owner=owner, expected=None)
        await again.aclose()
    index = (await own_collection.index_information())[doc.OWNER_INDEX_NAME]
    keys, _ = doc.owner_index()
    assert index["key"] == keys
    assert dict(index["partialFilterExpression"]) == {"owner": {"$exists": True}}
    assert "unique" not in index
    assert "expireAfterSeconds" not in index


async def test_owner_index_made_by_hand_under_another_name_is_used(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document], owner: str
) -> None:
    keys, options = doc.owner_index()
    await own_collection.create_index(
        keys, name="by_hand", partialFilterExpression=options["partialFilterExpression"]
    )
    storage = open_mongo(collection=own_collection.name)
    try:
        await storage.write_owned("id1", b"x", None, owner=owner, expected=None)
        assert await _listed(storage, owner) == {"id1": b"x"}
        assert await storage.invalidate_owned(owner) == 1
    finally:
        await storage.aclose()
    assert sorted(await own_collection.index_information()) == ["_id_", "by_hand", doc.TTL_INDEX_NAME]


async def test_owner_index_conflict_is_reported_with_what_to_change(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document], owner: str
) -> None:
    await own_collection.create_index([("owner", 1)], name=doc.OWNER_INDEX_NAME)
    storage = open_mongo(collection=own_collection.name)
    try:
        for call in (storage.list_owned, storage.invalidate_owned, storage.list_owned):  # every call says so
            with pytest.raises(satchel.StorageError) as caught:
                await call(owner)
            message = str(caught.value)
            assert "conflicts with satchel's owner index 'satchel_owner'" in message
            assert "under that name it has: satchel_owner ({owner: 1})" in message
            assert "Drop the conflicting index" in message
            assert "create_index=False" in message
            assert "reachable" not in message
            assert caught.value.__cause__ is not None
        # sessions without owners go on working: the owner index is not theirs
        await storage.write("plain", b"x", None)
        assert await storage.read("plain") == b"x"
    finally:
        await storage.aclose()


async def test_owner_index_missing_with_create_index_false_says_how_to_create_it(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document], owner: str
) -> None:
    await own_collection.insert_one(
        {"_id": "other", "data": b""}
    )  # the collection exists, its indexes do not
    storage = open_mongo(collection=own_collection.name, create_index=False)
    try:
        with pytest.raises(satchel.StorageError) as caught:
            await storage.write_owned("id1", b"x", None, owner=owner, expected=None)
        message = str(caught.value)
        assert "no index that serves owner lookups" in message
        assert "createIndex({owner: 1, '_id.ns': 1}" in message
        assert await storage.read("id1") is None  # nothing was written without the index
        keys, options = doc.owner_index()
        await own_collection.create_index(keys, **options)
        # found on the next call, without reopening the storage
        assert await storage.write_owned("id1", b"x", None, owner=owner, expected=None) is True
        assert await _listed(storage, owner) == {"id1": b"x"}
    finally:
        await storage.aclose()


async def test_owner_index_dropped_under_a_running_storage_is_created_again(
    open_mongo: Callable[..., MongoStorage], own_collection: AsyncCollection[Document], owner: str
) -> None:
    storage = open_mongo(collection=own_collection.name)
    try:
        await storage.write_owned("id1", b"x", None, owner=owner, expected=None)
        await own_collection.drop_index(doc.OWNER_INDEX_NAME)
        with pytest.raises(satchel.StorageError) as caught:  # the hint names an index that is gone
            await storage.list_owned(owner)
        assert "id1" not in str(caught.value)
        assert await _listed(storage, owner) == {"id1": b"x"}
        assert doc.OWNER_INDEX_NAME in await own_collection.index_information()
    finally:
        await storage.aclose()
