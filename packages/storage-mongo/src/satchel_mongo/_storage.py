"""``MongoStorage``: sessions in a MongoDB collection, through PyMongo's ``AsyncMongoClient``.

PyMongo is imported when a storage is opened, not when this module is: the plugin
module imports this package, and must stay light.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable, Collection, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from satchel import ConfigError, OwnedEntry, StorageCapabilities, StorageError, redact_url

from . import _documents as doc

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.errors import OperationFailure

__all__ = ["MongoStorage"]

Document = dict[str, Any]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _driver_errors() -> tuple[type[Exception], ...]:
    import bson.errors
    import pymongo
    import pymongo.errors

    doc.check_driver(pymongo.version_tuple, pymongo.version)
    return (pymongo.errors.PyMongoError, bson.errors.BSONError)


def _brief(exc: Exception) -> str:
    """A client error's cause alone: pymongo follows it with the timeouts and the whole
    topology, hundreds of characters that hid "connection refused" at the end of a line."""
    import os
    import re

    text = str(exc).split(", Timeout:", 1)[0]
    text = re.sub(r" \(configured timeouts: [^)]*\)", "", text)
    # asyncio says "Connect call failed"; the errno's own words are what people search for
    text = re.sub(r"\[Errno (\d+)\]", lambda m: f"[Errno {m[1]}] {os.strerror(int(m[1]))}:", text)
    return text if len(text) <= 300 else text[:299] + "…"


def _server_code(exc: OperationFailure) -> str:
    """The server's error code and its name, when the reply gives one: all that is safe to show."""
    name = (exc.details or {}).get("codeName")
    return f"code {exc.code}" + (f" ({name})" if isinstance(name, str) else "")


def _without_server_text(exc: OperationFailure) -> OperationFailure:
    """``exc`` reduced to the server's error code: same type, same traceback.

    A server's reply can quote the session's ``_id``, which for a server-side session is
    the whole credential: a duplicate key names it (E11000 ... dup key, keyValue), a failed
    validation reports it (errInfo.failingDocumentId). Messages and chained causes end up
    in logs, so neither carries the reply.
    """
    from pymongo.errors import OperationFailure

    text = f"server error {_server_code(exc)}; its message is left out, as it can quote the session's _id"
    # every single-document error has OperationFailure's constructor; the bulk ones do not
    cls = type(exc) if type(exc).__init__ is OperationFailure.__init__ else OperationFailure
    return cls(text, exc.code).with_traceback(exc.__traceback__)


class MongoStorage:
    """Server-side sessions in MongoDB: one document per session, with TTL, compare-and-set
    and an owner index.

    Open one from a URL (the database and collection come from the path or the options)::

        storage = MongoStorage.from_url("mongodb://db1,db2,db3/app?replicaSet=rs0")
        storage = satchel.open_storage("mongodb+srv://cluster0.example.net/app.sessions")

    or around a client you already have (``aclose`` then leaves it open)::

        storage = MongoStorage(AsyncMongoClient(...), database="app", namespace="shop")

    Each read, write, touch and delete is one single-document operation, safe under
    retryable reads and writes and routed to one shard when ``_id`` is the shard key.
    A TTL index on the expiry date is created on first use; expiry is also checked on
    every read, since the server removes expired documents only about once a minute.
    Every driver failure raises `satchel.StorageError` with the cause chained.

    A session written with ``write_owned`` carries its owner in its own document, so the
    link is written, moved and deleted with the session; an index on the owner (within
    the namespace) is created on the first owner call and serves ``list_owned`` and
    ``invalidate_owned``.

    An ``AsyncMongoClient`` belongs to the event loop it first ran on, and cannot be used
    after it is closed. So `aclose` closes the client the storage made, and the next call
    makes a new one from the same URL and options: the storage works again, on whatever
    loop runs then (an app started twice, a test suite). A client you passed in is left
    open, and is yours to use on its own loop. A storage garbage-collected with a client
    it made still open emits a ``ResourceWarning`` naming its URL (password masked).
    """

    capabilities = StorageCapabilities(
        persistent=True,
        max_value_size=doc.MAX_VALUE_SIZE,
        event_loops=frozenset({"asyncio"}),
    )

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        *,
        database: str = doc.DEFAULT_DATABASE,
        collection: str = doc.DEFAULT_COLLECTION,
        namespace: str | None = None,
        create_index: bool = True,
        _owns_client: bool = False,
        _reopen: Callable[[], AsyncMongoClient[Document]] | None = None,
        _label: str = "",
    ) -> None:
        self._errors = _driver_errors()
        # None after aclose() closed a client the storage made: _reopen makes the next one
        self._client: AsyncMongoClient[Document] | None = client
        self._owns_client = _owns_client
        self._reopen = _reopen
        self._label = _label
        self._in_use = False  # whether a client this storage made may hold connections
        self._names = (database, collection)
        try:
            self._collection = self._collection_of(client)
        except self._errors as exc:
            raise ConfigError(
                f"cannot use {database}.{collection} for sessions ({exc}); "
                "choose another database or collection name"
            ) from exc
        if not self._collection.write_concern.acknowledged:
            raise ConfigError(
                f"the write concern {self._collection.write_concern.document} is unacknowledged "
                "(w=0): session writes would succeed silently whatever the server did; "
                "drop w=0 from the URL or the client options"
            )
        self._namespace = doc.check_namespace(namespace)
        self._create_index = create_index
        self._index_ready = not create_index
        self._index_lock = asyncio.Lock()
        # the name of the index that serves owner lookups, once found or created
        self._owner_index: str | None = None

    def _collection_of(self, client: AsyncMongoClient[Document]) -> AsyncCollection[Document]:
        from pymongo import ReadPreference

        database, collection = self._names
        # reads from the primary only: a lagging secondary could still hand out a session
        # that a logout or regenerate just ended
        return client[database].get_collection(collection, read_preference=ReadPreference.PRIMARY)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        database: str | None = None,
        collection: str | None = None,
        namespace: str | None = None,
        client: AsyncMongoClient[Document] | None = None,
        create_index: bool = True,
        **client_options: Any,
    ) -> MongoStorage:
        """Open ``mongodb://...`` or ``mongodb+srv://...``; the factory behind both schemes.

        ``database`` and ``collection`` override the URL's path (``/app`` or
        ``/app.sessions``) and ``?collection=``; the defaults are ``satchel`` and
        ``sessions``. ``namespace`` (or ``?namespace=``) keeps this storage's IDs apart
        from other namespaces in the same collection. ``client`` uses your own
        ``AsyncMongoClient`` (left open by ``aclose``) instead of one made from the URL.
        Any other option goes to ``AsyncMongoClient`` and overrides the URL's; the
        timeouts default to ``serverSelectionTimeoutMS=5000``, ``connectTimeoutMS=5000``
        and ``socketTimeoutMS=10000`` unless the URL or the options set them.
        """
        parsed = doc.parse_url(url)
        owns_client = client is None
        reopen: Callable[[], AsyncMongoClient[Document]] | None = None
        if client is None:
            errors: tuple[type[Exception], ...] = (*_driver_errors(), TypeError, ValueError)
            from pymongo import AsyncMongoClient

            options = doc.client_options(parsed.query_keys, client_options)
            try:
                client = AsyncMongoClient(parsed.client_url, **options)
            except errors as exc:
                raise ConfigError(
                    f"cannot open MongoDB storage ({type(exc).__name__}: {exc}); "
                    "check the URL and the client options"
                ) from exc

            def reopen() -> AsyncMongoClient[Document]:
                return AsyncMongoClient(parsed.client_url, **options)

        elif client_options:
            raise ConfigError(
                f"client options {sorted(client_options)} have no effect with client=...; "
                "configure the client you pass instead"
            )
        return cls(
            client,
            database=database or parsed.database or doc.DEFAULT_DATABASE,
            collection=collection or parsed.collection or doc.DEFAULT_COLLECTION,
            namespace=namespace if namespace is not None else parsed.namespace,
            create_index=create_index,
            _owns_client=owns_client,
            _reopen=reopen,
            _label=redact_url(url),
        )

    @contextlib.contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            from pymongo.errors import OperationFailure

            if isinstance(exc, OperationFailure):
                raise StorageError(
                    f"MongoDB refused to {action} in {self._collection.full_name} "
                    f"({type(exc).__name__}, {_server_code(exc)}; the server's message is left "
                    "out, as it can quote the session's _id); check that the user may read and "
                    "write this collection, and the collection's validator and indexes"
                ) from _without_server_text(exc)
            # the client's own errors (no server, a timeout, a bad option) name hosts, not documents
            from pymongo.errors import ConnectionFailure

            if isinstance(exc, ConnectionFailure):  # the cause first: what to fix is the network
                raise StorageError(
                    f"MongoDB is unreachable ({_brief(exc)}; {type(exc).__name__}), so could not "
                    f"{action} in {self._collection.full_name}; check that the server is running "
                    "and reachable from here, and the URL's timeouts"
                ) from exc
            raise StorageError(
                f"MongoDB could not {action} in {self._collection.full_name} "
                f"({type(exc).__name__}: {_brief(exc)}); check that the server is reachable, "
                "that the user may read and write this collection, and the URL's timeouts"
            ) from exc

    async def _ready(self) -> AsyncCollection[Document]:
        if not self._in_use:
            self._open()
        if not self._index_ready:
            async with self._index_lock:
                if not self._index_ready:
                    with self._failures("create the TTL index on 'expires'"):
                        await self._create_ttl_index()
                    self._index_ready = True
        return self._collection

    async def _create_ttl_index(self) -> None:
        from pymongo.errors import OperationFailure

        keys, options = doc.ttl_index()
        try:
            await self._collection.create_index(keys, **options)
        except OperationFailure as exc:
            if exc.code not in doc.INDEX_CONFLICT_CODES:
                raise
            # The server refuses a second index on the same keys; one made by hand
            # (e.g. under the default name expires_1) may do the same job.
            existing = await self._collection.index_information()
            if doc.serves_as_ttl_index(existing):
                return
            # the clash is on the keys (85) or on satchel's index name (86)
            related = ", ".join(
                f"{name} (expireAfterSeconds={spec.get('expireAfterSeconds')})"
                for name, spec in sorted(existing.items())
                if name == doc.TTL_INDEX_NAME
                or [field for field, _ in spec.get("key", [])][:1] == ["expires"]
            )
            reason = exc.details.get("errmsg", str(exc)) if exc.details else str(exc)
            raise StorageError(
                f"{self._collection.full_name} has an index that conflicts with satchel's TTL index "
                f"{doc.TTL_INDEX_NAME!r} ({keys}, expireAfterSeconds={options['expireAfterSeconds']}); "
                f"on 'expires' or under that name it has: {related or 'no index'}. {reason}. Drop "
                "the conflicting index, or create satchel's index yourself and pass "
                "create_index=False, or use another collection"
            ) from exc

    async def _owner_index_ready(self) -> str:
        """The name of the owner index, created (or found) on the first owner call.

        Not with the TTL index on first use: an app that never links owners gets no
        second index, and no new way to fail.
        """
        if self._owner_index is None:
            async with self._index_lock:
                if self._owner_index is None:
                    with self._failures("set up the owner index on 'owner'"):
                        self._owner_index = await self._find_or_create_owner_index()
        return self._owner_index

    async def _find_or_create_owner_index(self) -> str:
        from pymongo.errors import OperationFailure

        keys, options = doc.owner_index()
        conflict: OperationFailure | None = None
        if self._create_index:
            try:
                await self._collection.create_index(keys, **options)
                return doc.OWNER_INDEX_NAME
            except OperationFailure as exc:
                if exc.code not in doc.INDEX_CONFLICT_CODES:
                    raise
                # as for the TTL index: one made by hand may do the same job
                conflict = exc
        existing = await self._collection.index_information()
        name = doc.owner_index_name(existing)
        if name is not None:
            return name
        related = ", ".join(
            f"{other} ({doc.describe_index(spec)})"
            for other, spec in sorted(existing.items())
            if other == doc.OWNER_INDEX_NAME or [field for field, _ in spec.get("key", [])][:1] == ["owner"]
        )
        wanted = f"{doc.OWNER_INDEX_NAME!r} ({doc.describe_index({'key': keys, **options})})"
        if conflict is not None:
            # an index conflict quotes index specifications, never a document
            reason = conflict.details.get("errmsg", str(conflict)) if conflict.details else str(conflict)
            raise StorageError(
                f"{self._collection.full_name} has an index that conflicts with satchel's owner "
                f"index {wanted}; on 'owner' or under that name it has: {related or 'no index'}. "
                f"{reason}. Drop the conflicting index, or create satchel's index yourself and "
                "pass create_index=False, or use another collection"
            ) from conflict
        raise StorageError(
            f"{self._collection.full_name} has no index that serves owner lookups, and "
            f"create_index=False says not to create one; on 'owner' it has: {related or 'no index'}. "
            f"Create satchel's owner index {wanted} (db.{self._collection.name}.createIndex("
            "{owner: 1, '_id.ns': 1}, {name: 'satchel_owner', partialFilterExpression: "
            "{owner: {$exists: true}}})), or pass create_index=True"
        )

    @contextlib.contextmanager
    def _forget_owner_index_if_refused(self) -> Iterator[None]:
        from pymongo.errors import OperationFailure

        try:
            yield
        except OperationFailure:
            # e.g. the index was dropped under a running app (its hint is then refused):
            # the next call finds or creates it again instead of failing until a restart
            self._owner_index = None
            raise

    def _key(self, id: str) -> str | dict[str, str]:
        return doc.document_id(self._namespace, id)

    def _check_size(self, data: bytes) -> None:
        if len(data) > doc.MAX_VALUE_SIZE:
            raise StorageError(
                f"a session of {len(data)} bytes does not fit in one MongoDB document "
                f"(at most {doc.MAX_VALUE_SIZE} bytes here); store less in the session"
            )

    async def read(self, id: str) -> bytes | None:
        """The session's bytes, or ``None`` when absent or expired."""
        with self._failures("read a session"):
            collection = await self._ready()
            found = await collection.find_one(
                doc.live_filter(self._key(id), _now()), projection={"data": True, "_id": False}
            )
        return doc.data_of(found)

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        """Store ``data`` under ``id`` (replacing it), expiring ``ttl`` seconds from now."""
        self._check_size(data)
        key = self._key(id)
        with self._failures("write a session"):
            collection = await self._ready()
            document = doc.session_document(key, data, doc.expiry(_now(), ttl))
            await self._upsert(collection, key, document)

    async def _upsert(
        self, collection: AsyncCollection[Document], key: str | dict[str, str], document: Document
    ) -> None:
        from pymongo.errors import DuplicateKeyError

        try:
            await collection.replace_one({"_id": key}, document, upsert=True)
        except DuplicateKeyError:
            # Two upserts of one new ID raced and the server did not retry the loser
            # itself (servers before 4.2 do not); once the ID exists, replacing it works.
            await collection.replace_one({"_id": key}, document, upsert=True)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        """Write only if the stored value is ``expected`` (``None``: only if absent or expired).

        One conditional single-document replace, atomic on the server. A session
        invalidated in between is not brought back: the write reports ``False``. The
        session is written unowned: a link an earlier ``write_owned`` made is dropped.
        """
        return await self._swap(id, data, ttl, expected=expected, owner=None)

    async def _swap(
        self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None, owner: str | None
    ) -> bool:
        from pymongo.errors import DuplicateKeyError

        self._check_size(data)
        key = self._key(id)
        with self._failures("write a session (compare-and-set)"):
            collection = await self._ready()
            if owner is not None:
                await self._owner_index_ready()  # before the first owned document exists
            now = _now()
            # the owner goes in the replacement itself: linked in the same atomic step
            document = doc.session_document(key, data, doc.expiry(now, ttl), owner)
            if expected is None:
                try:
                    await collection.replace_one(doc.claim_filter(key, now), document, upsert=True)
                except DuplicateKeyError:
                    return False
                return True
            result = await collection.replace_one(doc.swap_filter(key, expected, now), document)
            return result.matched_count == 1

    async def invalidate(self, id: str) -> None:
        """Delete the session; deleting an absent one is not an error."""
        with self._failures("delete a session"):
            collection = await self._ready()
            await collection.delete_one({"_id": self._key(id)})

    async def touch(self, id: str, ttl: float | None) -> None:
        """Move the session's expiry to ``ttl`` seconds from now; absent or expired: no-op."""
        key = self._key(id)
        with self._failures("touch a session"):
            collection = await self._ready()
            now = _now()
            await collection.update_one(doc.live_filter(key, now), doc.touch_update(doc.expiry(now, ttl)))

    # -- OwnerIndex ----------------------------------------------------------------

    async def write_owned(
        self, id: str, data: bytes, ttl: float | None, *, owner: str, expected: bytes | None
    ) -> bool:
        """`write_if`, with the session linked to ``owner`` in the same atomic step.

        The owner is a field of the replacement document, so the one conditional
        single-document replace writes both or neither: when it returns ``False``
        nothing changed, and no link was made. ``ValueError`` for an owner that is not
        a string of 1 to 256 characters.
        """
        owner = doc.check_owner(owner)
        return await self._swap(id, data, ttl, expected=expected, owner=owner)

    async def touch_owned(self, id: str, ttl: float | None, *, owner: str) -> None:
        """`touch`: the link is the session's own ``owner`` field, so it moves with it."""
        doc.check_owner(owner)
        await self.touch(id, ttl)

    async def list_owned(self, owner: str) -> list[OwnedEntry]:
        """The live sessions of this namespace linked to ``owner``, in no particular order.

        One ``find`` on the owner index; a session past its expiry is left out even
        before the TTL monitor removes it. ``expires`` is in Unix seconds.
        """
        owner = doc.check_owner(owner)
        with self._failures("list an owner's sessions"), self._forget_owner_index_if_refused():
            collection = await self._ready()
            index = await self._owner_index_ready()
            cursor = collection.find(
                doc.owned_filter(self._namespace, owner, _now()),
                projection={"data": True, "expires": True},
                hint=index,
            )
            documents = await cursor.to_list()
        return [entry for entry in map(doc.owned_entry, documents) if entry is not None]

    async def invalidate_owned(self, owner: str, *, keep: Collection[str] = ()) -> int:
        """Delete every live session of this namespace linked to ``owner``, except ``keep``.

        One ``delete_many`` on the owner index; returns how many live sessions it
        deleted (expired ones are left to the TTL monitor and not counted), so a repeat
        returns 0. The owner index's keys do not change while a session keeps its
        owner, so every such session that exists when the call starts is deleted by the
        time it returns, even one touched meanwhile; one written during the call may
        survive. Not retried by the driver after a failover (a multi-document delete is
        not a retryable write): it then raises `satchel.StorageError`, and a repeat
        deletes the rest.
        """
        owner = doc.check_owner(owner)
        if isinstance(keep, str):
            # a string is a collection of its characters: one ID was meant, not those
            raise TypeError("keep must be a collection of session IDs, not one string")
        with self._failures("delete an owner's sessions"), self._forget_owner_index_if_refused():
            collection = await self._ready()
            index = await self._owner_index_ready()
            result = await collection.delete_many(
                doc.revoke_filter(self._namespace, owner, keep, _now()), hint=index
            )
        return result.deleted_count

    async def purge(self) -> int:
        """Delete every expired session in the collection, of every namespace, now, without
        waiting for the TTL monitor (`satchel.Purgeable`: a purge covers the whole store).

        Returns how many were removed (``satchel purge`` reports it). A live session, of
        any namespace, is never touched.
        """
        with self._failures("purge expired sessions"):
            collection = await self._ready()
            result = await collection.delete_many(doc.purge_filter(_now()))
        return result.deleted_count

    def _open(self) -> None:
        """Make a new client in place of the one aclose() closed (a closed
        ``AsyncMongoClient`` cannot be used again), on the loop that runs now."""
        if self._client is None and self._reopen is not None:
            client = self._reopen()
            self._client, self._collection = client, self._collection_of(client)
            # an asyncio lock waits in one event loop; the next calls may run on another
            self._index_lock = asyncio.Lock()
        self._in_use = True

    async def satchel_stored_expiry(self, id: str) -> float | None:
        """For the conformance kit: the ``expires`` date of the document for ``id``, expired
        or not, as Unix seconds (``None`` for none); `LookupError` when there is no document."""
        with self._failures("read a session's expiry"):
            collection = await self._ready()
            found = await collection.find_one({"_id": self._key(id)}, projection={"expires": True})
        if found is None:
            raise LookupError("no document for the id")
        expires = found.get("expires")
        if expires is None:
            return None
        if expires.tzinfo is None:  # the driver gives UTC dates without their zone
            expires = expires.replace(tzinfo=timezone.utc)
        return float(expires.timestamp())

    async def aclose(self) -> None:
        """Close the client this storage opened (a client passed in is left open).

        Not final: the next call opens a new client. Calling it twice is not an error.
        """
        self._in_use = False
        client = self._client
        if self._owns_client and client is not None:
            if self._reopen is not None:
                self._client = None
            with self._failures("close the client"):
                await client.close()

    def __repr__(self) -> str:
        return f"MongoStorage({self._collection.full_name!r}, namespace={self._namespace!r})"

    def __del__(self) -> None:
        if getattr(self, "_in_use", False) and self._owns_client:
            warnings.warn(
                f"MongoStorage({self._label!r}, namespace={self._namespace!r}) was "
                "garbage-collected with its client open; await its aclose() when the app "
                "shuts down (SessionMiddleware does at lifespan shutdown)",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )
