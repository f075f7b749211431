"""``SQLiteStorage``: server-side sessions in one SQLite file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from satchel import ConfigError, OwnedEntry, StorageCapabilities, StorageError, check_owner

from . import _sql
from ._url import MEMORY, Config, config, make_config

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SQLiteStorage"]

T = TypeVar("T")
_Pair = tuple["aiosqlite.Connection", _sql.Connection]

# Every this many writes, a write also deletes up to _PURGE_LIMIT expired rows: the
# table stays bounded by live sessions at a fixed, small cost per request.
_PURGE_EVERY = 16
_PURGE_LIMIT = 64
# `purge()` deletes in batches, each one statement in its own transaction, sized so that
# each holds the write lock about _PURGE_HOLD seconds, whatever a row costs on this
# machine and this way (rows of a key range cost a fraction of a page each, rows found
# through the index a page each): the first looks at _PURGE_BATCH rows, each next one at
# as many as the last one's time says fit, at most twice or half as many, and within
# _PURGE_MIN_BATCH to _PURGE_MAX_BATCH. After each, it stays off the lock for
# _PURGE_YIELD of that time: another process waiting for the lock (SQLite retries after
# sleeping 1, 2, 5, 10 ms and on) finds it free, rather than starving until the end.
_PURGE_BATCH = 1000
_PURGE_MIN_BATCH = 100
_PURGE_MAX_BATCH = 10_000
_PURGE_HOLD = 0.01
_PURGE_YIELD = 0.25
# Which way `purge()` goes, from its counts: through the purge index, where each dead row
# costs a table page written at a random place (about 40 us on the bench's machine) and
# each live row passed over a read (4 us); or along the primary key, which reads every
# page once (21 us a page, rows included) and writes each dead row's page once (15 us a
# row). The index when 40 dead + 4 band < 21 pages + 15 dead, about 6 dead + band < 5
# pages (measured at 10^6 rows, 1% and 10% expired). Either way removes the same rows.
_PURGE_DEAD_COST = 6
_PURGE_PAGE_COST = 5
# The longest owner, in characters (`satchel.OwnerIndex`).


class SQLiteStorage:
    """Server-side sessions in one SQLite file, shared safely by several worker processes.

    ``path`` is the file (created, with its directory, on first use other than `purge`)
    or ``":memory:"``
    (private to this storage, gone at ``aclose``). Sessions of different ``namespace``
    values in one file never see each other. Every call ends within ``timeout`` seconds:
    a write waits that long at most for another process's lock, then fails; reads have a
    connection of their own and never wait for writes.
    ``synchronous="full"`` makes every commit survive a power cut, not only a crash of
    the process (the default, ``"normal"``).

    It keeps an owner index (`satchel.OwnerIndex`): a session written with
    ``write_owned`` is linked to its owner in its own row, so the link is written,
    expired and deleted with it, and ``invalidate_owned`` ends every session of an owner
    in one statement.

    The file is opened, switched to WAL and given its schema on first use; aiosqlite is
    imported then. `aclose` closes the connections, and the next call opens them again,
    so one storage serves an app started and stopped several times (a private
    ``":memory:"`` database starts empty again). A storage garbage-collected with its
    connections open emits a ``ResourceWarning`` naming its file. A file this storage
    creates is readable and writable by its owner only (0600), and so are the ``-wal``
    and ``-shm`` files next to it. Failures raise `satchel.StorageError` with SQLite's
    error chained.

    Examples:
        >>> storage = SQLiteStorage("sessions.db", namespace="shop")   # doctest: +SKIP
        >>> await storage.write(session_id, b"...", ttl=3600)            # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        namespace: str | None = None,
        timeout: float = 5.0,
        synchronous: str = "normal",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._init(make_config(os.fspath(path), namespace, timeout, synchronous), clock)

    def _init(self, cfg: Config, clock: Callable[[], float]) -> None:
        self._cfg = cfg
        self._clock = clock
        self._handle: tuple[_Pair, _Pair] | None = None  # (writer, reader)
        self._opening: asyncio.Lock | None = None
        self._pid = os.getpid()
        # one more at each aclose(): an open that began before it must not keep its connections
        self._generation = 0
        self._opened = False  # whether this storage has opened (or created) the file
        self._writes = 0
        self.capabilities = StorageCapabilities(
            persistent=cfg.path != MEMORY,
            max_value_size=16 * 1024 * 1024,
            event_loops=frozenset({"asyncio"}),  # aiosqlite answers through asyncio futures
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStorage:
        """The storage for ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or
        ``sqlite://:memory:``; ``?namespace=``, ``?timeout=`` and ``?synchronous=`` may
        also be given as keyword options (which win).

        A malformed URL or option raises `satchel.ConfigError` here, before any I/O.
        """
        clock = options.pop("clock", time.time)
        if not callable(clock):
            raise ConfigError("sqlite storage: clock must be a callable returning seconds")
        storage = cls.__new__(cls)
        storage._init(config(url, options), clock)
        return storage

    @property
    def path(self) -> str:
        """The database file (``":memory:"`` for a private in-memory database)."""
        return self._cfg.path

    @property
    def namespace(self) -> str:
        """The namespace this storage reads and writes (``""`` by default)."""
        return self._cfg.namespace

    # -- connection ----------------------------------------------------------------

    async def _open(self, deadline: float) -> tuple[_Pair, _Pair]:
        generation = self._generation
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._handle is not None:
                return self._handle
            self._refuse_if_closed_since(generation)
            writer = await self._start(deadline, self._cfg.synchronous)
            try:
                # Reads get their own connection and thread, so they never queue behind a
                # write that waits for another process's lock (WAL readers need no lock).
                # A private in-memory database exists only on the one connection.
                reader = writer if self._cfg.path == MEMORY else await self._start(deadline, None)
            except BaseException:
                await writer[0].close()
                raise
            try:
                self._refuse_if_closed_since(generation)  # aclose() ran while the file was opening
            except StorageError:
                await _close(writer, reader)
                raise
            self._handle = (writer, reader)
            self._opened = True
            return self._handle

    def _refuse_if_closed_since(self, generation: int) -> None:
        if self._generation != generation:
            raise StorageError(_closed(self._cfg.path))

    async def _start(self, deadline: float, synchronous: str | None) -> _Pair:
        import aiosqlite

        cfg = self._cfg
        try:
            # Set up on a worker thread first, so a failure leaves no aiosqlite thread
            # behind; aiosqlite then takes over the ready connection.
            db = await asyncio.to_thread(_sql.connect, cfg.path, cfg.timeout, deadline, synchronous)
        except _sql.SchemaTooNew as exc:
            raise StorageError(
                f"{cfg.path!r} holds sessions in schema version {exc.found!r}, newer than "
                f"this satchel-sqlite understands ({_sql.SCHEMA_VERSION}); upgrade "
                "satchel-sqlite, or point the storage at another file"
            ) from exc
        except (sqlite3.Error, OSError, _sql.DeadlinePassed) as exc:
            raise StorageError(_failure(cfg, exc, opening=True)) from exc
        conn = aiosqlite.Connection(lambda: db, iter_chunk_size=64)
        if not callable(getattr(conn, "_execute", None)):
            db.close()
            raise StorageError(
                f"aiosqlite {getattr(aiosqlite, '__version__', '?')} cannot run a function "
                "on its connection thread, which satchel-sqlite needs; install the "
                "aiosqlite version satchel-sqlite's requirements name"
            )
        # A storage nobody closed must not keep the interpreter from exiting; what a
        # killed thread leaves behind is what a crash leaves, and WAL recovers it.
        thread = conn if isinstance(conn, threading.Thread) else getattr(conn, "_thread", None)
        if isinstance(thread, threading.Thread):
            thread.daemon = True
        await conn
        return conn, db

    async def _run(self, fn: Callable[..., T], *args: Any, read: bool = False) -> T:
        # The timeout is a deadline for the whole call: opening, queueing, the lock.
        deadline = time.monotonic() + self._cfg.timeout
        pid = os.getpid()
        if self._pid != pid:
            # A worker forked after the parent used this storage inherits connections
            # whose threads did not come along. It opens its own; the parent's are left
            # to the parent (SQLite forbids using or closing a connection across fork).
            self._pid, self._handle, self._opening = pid, None, None
        handle = self._handle or await self._open(deadline)
        conn, db = handle[1] if read else handle[0]
        try:
            # One hop to the connection's thread per operation, the whole transaction
            # inside it. aiosqlite's public calls are one statement per hop, and another
            # task's statement could interleave with an open transaction between them.
            return await conn._execute(_sql.call, db, deadline, fn, *args)  # type: ignore[no-untyped-call,no-any-return]
        except (sqlite3.Error, _sql.DeadlinePassed) as exc:
            raise StorageError(_failure(self._cfg, exc)) from exc
        except ValueError as exc:  # aiosqlite: the connection was closed under us
            raise StorageError(_closed(self._cfg.path)) from exc

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    # -- SessionStorage --------------------------------------------------------------

    async def read(self, id: str) -> bytes | None:
        """The stored bytes, or ``None`` when absent or expired."""
        return await self._run(_sql.read, self._cfg.namespace, id, self._clock(), read=True)

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        """Store ``data`` under ``id`` (replacing it), expiring ``ttl`` seconds from now."""
        self._writes += 1
        purge = None
        if self._writes % _PURGE_EVERY == 0:
            purge = (self._clock(), _PURGE_LIMIT)
        params = (self._cfg.namespace, id, bytes(data), self._expiry(ttl))
        await self._run(_sql.change, _sql.UPSERT, params, purge)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        """Write only if the stored value is ``expected`` (``None``: only if absent).

        One conditional statement in one transaction, so it is atomic across processes.
        """
        return await self._write_if(id, data, ttl, expected, None)

    async def _write_if(
        self, id: str, data: bytes, ttl: float | None, expected: bytes | None, owner: str | None
    ) -> bool:
        return await self._run(
            _sql.write_if,
            self._cfg.namespace,
            id,
            bytes(data),
            self._expiry(ttl),
            None if expected is None else bytes(expected),
            self._clock(),
            owner,
        )

    async def invalidate(self, id: str) -> None:
        """Delete ``id``; an absent id is not an error."""
        await self._run(_sql.change, _sql.DELETE, (self._cfg.namespace, id), None)

    async def touch(self, id: str, ttl: float | None) -> None:
        """Move the expiry of ``id`` to ``ttl`` seconds from now; absent or expired: no-op."""
        params = (self._expiry(ttl), self._cfg.namespace, id, self._clock())
        await self._run(_sql.change, _sql.TOUCH, params, None)

    # -- OwnerIndex ----------------------------------------------------------------

    async def write_owned(
        self, id: str, data: bytes, ttl: float | None, *, owner: str, expected: bytes | None
    ) -> bool:
        """`write_if`, linking ``id`` to ``owner`` in the same statement.

        Returns whether the write happened; when it did not, nothing changed. A later
        plain `write` or `write_if` of ``id`` stores it unowned again. ``ValueError``
        for an owner that is not a string of 1 to 256 characters.
        """
        return await self._write_if(id, data, ttl, expected, check_owner(owner))

    async def touch_owned(self, id: str, ttl: float | None, *, owner: str) -> None:
        """`touch`: the link is a column of the session's row, so it moves with it."""
        check_owner(owner)
        await self.touch(id, ttl)

    async def list_owned(self, owner: str) -> list[OwnedEntry]:
        """The live sessions linked to ``owner`` in this namespace, in no particular order.

        ``expires`` is in Unix seconds on this storage's clock (``None``: never).
        """
        check_owner(owner)
        rows = await self._run(_sql.list_owned, self._cfg.namespace, owner, self._clock(), read=True)
        return [OwnedEntry(id, bytes(data), expires) for id, data, expires in rows]

    async def invalidate_owned(self, owner: str, *, keep: Collection[str] = ()) -> int:
        """Delete every live session linked to ``owner`` in this namespace, except the
        IDs in ``keep``; returns how many were deleted.

        One ``DELETE`` statement walking the owner index: every such session written
        before the call is gone when it returns, whatever other processes write
        meanwhile. Repeating it deletes nothing more and returns 0.
        """
        check_owner(owner)
        return await self._run(_sql.invalidate_owned, self._cfg.namespace, owner, list(keep), self._clock())

    async def purge(self, *, missing_ok: bool = True) -> int:
        """Delete every expired session in the file (all namespaces); returns how many.

        Batch by batch, each its own transaction holding the write lock about 10 ms, with
        a quarter of that off the lock after each, so other processes keep writing
        meanwhile. The work follows the rows it removes (and the rows due to expire
        within the next hour), not the rows stored; a file with nothing to purge is not
        written to.

        It never creates a missing file. A file that does not exist yet (an app's purge
        task that runs before the first session) has nothing to purge: 0. With
        ``missing_ok=False``, as ``satchel purge URL`` calls it, a missing file raises
        `satchel.StorageError` naming the absolute path looked at, since purging a file
        nobody writes (a relative path from the wrong working directory) would report
        "0 removed" forever.
        """
        path = self._cfg.path
        if path != MEMORY and not self._opened and not await asyncio.to_thread(os.path.exists, path):
            if missing_ok:
                return 0
            raise StorageError(_missing(path))
        now = self._clock()
        dead, band, pages = await self._run(_sql.purge_plan, now, read=True)
        if dead + band == 0:
            return 0
        removed = 0
        pace = _Pace()
        if _PURGE_DEAD_COST * dead + band <= _PURGE_PAGE_COST * pages:
            # Few: through the purge index. Its low end holds only dead rows; past `now`,
            # up to PURGE_AHEAD, sit the rest of the dead, among rows still alive.
            while True:
                size = pace.size
                batch = await pace.run(self._run(_sql.purge_dead, now, size))
                removed += batch
                if batch < size:
                    break
            after: _sql.IndexKey | None = _sql.band_start(now)
            while after is not None:
                batch, after = await pace.run(self._run(_sql.purge_band, now, after, pace.size))
                removed += batch
        else:
            # Many: along the primary key, each range's dead rows at once.
            start: tuple[str, str] | None = ("", "")
            while start is not None:
                batch, start = await pace.run(self._run(_sql.purge_range, now, start, pace.size))
                removed += batch
        return removed

    async def satchel_stored_expiry(self, id: str) -> float | None:
        """For the conformance kit: the expiry the row for ``id`` holds, expired or not.

        Unix seconds on this storage's clock, ``None`` for none; `LookupError` when this
        namespace has no row for ``id``.
        """
        row = await self._run(_expiry_row, self._cfg.namespace, id, read=True)
        if row is None:
            raise LookupError("no row for the id")
        return row[0]

    async def aclose(self) -> None:
        """Close the connections; the next call opens them again. Calling it twice is not
        an error. A call that was opening the file meanwhile fails with
        `satchel.StorageError` and keeps nothing open."""
        self._generation += 1
        # the next open may run on another event loop than this lock has waited in
        self._opening = None
        handle, self._handle = self._handle, None
        if handle is not None and self._pid == os.getpid():
            try:
                await _close(*handle)
            except sqlite3.Error as exc:
                raise StorageError(f"closing SQLite ({self._cfg.path!r}) failed: {exc}") from exc

    def __repr__(self) -> str:
        ns = f", namespace={self._cfg.namespace!r}" if self._cfg.namespace else ""
        return f"SQLiteStorage({self._cfg.path!r}{ns})"

    def __del__(self) -> None:
        # only in the process that opened the connections: a forked child never held them
        if getattr(self, "_handle", None) is not None and self._pid == os.getpid():
            warnings.warn(_unclosed(self), ResourceWarning, source=self, stacklevel=2)


class _Pace:
    """The size of `purge()`'s next batch, from the time the last one took; the pause
    after each (see _PURGE_HOLD)."""

    def __init__(self) -> None:
        self.size = _PURGE_BATCH

    async def run(self, batch: Awaitable[T]) -> T:
        start = time.monotonic()
        result = await batch
        took = time.monotonic() - start
        scale = min(2.0, max(0.5, _PURGE_HOLD / max(took, 1e-6)))
        self.size = min(_PURGE_MAX_BATCH, max(_PURGE_MIN_BATCH, int(self.size * scale)))
        await asyncio.sleep(took * _PURGE_YIELD)
        return result


async def _close(writer: _Pair, reader: _Pair) -> None:
    try:
        if reader is not writer:
            await reader[0].close()
    finally:
        await writer[0].close()


def _closed(path: str) -> str:
    return (
        f"the SQLite storage for {path!r} was closed (aclose) while this call was under way; "
        "the next call opens it again"
    )


def _unclosed(storage: SQLiteStorage) -> str:
    return (
        f"{storage!r} was garbage-collected with its connections open; await its aclose() "
        "when the app shuts down (SessionMiddleware does at lifespan shutdown)"
    )


def _missing(path: str) -> str:
    where = os.path.abspath(path)
    if os.path.isabs(path):
        hint = "check the path (relative paths follow the working directory, so give absolute ones)"
    else:
        hint = (
            f"the path {path!r} is relative, so it follows the working directory "
            f"({os.getcwd()!r}); give the absolute path instead: sqlite:///{where}"
        )
    return f"no SQLite database at {where!r}, so nothing to purge (purge does not create one); {hint}"


def _failure(cfg: Config, exc: Exception, *, opening: bool = False) -> str:
    path = cfg.path
    if isinstance(exc, _sql.DeadlinePassed) or _sql.is_busy(exc):
        return (
            f"SQLite ({path!r}) stayed locked by another connection for "
            f"timeout={cfg.timeout}s ({exc}); look for a long transaction on the file, "
            "or raise the timeout"
        )
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return (
            f"{path!r} is not a SQLite database, or it is corrupt ({exc}); point the "
            "storage at another file, or move this one away to start afresh"
        )
    if opening:
        where = os.path.dirname(os.path.abspath(path))
        return (
            f"cannot open SQLite database {path!r} ({exc}); check that the directory "
            f"{where!r} exists and this process may write there"
        )
    return f"SQLite ({path!r}) failed: {exc}; check the file, its directory's permissions and free disk space"


def _expiry_row(db: sqlite3.Connection, namespace: str, id: str) -> tuple[float | None] | None:
    """The ``expires_at`` of the row for ``id``, expired or not (``satchel_stored_expiry``)."""
    found: tuple[float | None] | None = db.execute(
        f"SELECT expires_at FROM {_sql.TABLE} WHERE namespace = ? AND id = ?",  # noqa: S608 - a constant
        (namespace, id),
    ).fetchone()
    return found
