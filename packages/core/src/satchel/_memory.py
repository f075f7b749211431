"""``MemoryStorage``: sessions in this process's memory, for tests and single-process apps."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Collection

from ._types import OwnedEntry, StorageCapabilities

__all__ = ["MemoryStorage"]

_NEVER = float("inf")
_PURGE_BATCH = 16


class MemoryStorage:
    """Server-side sessions in a dict, with TTL, touch, compare-and-set and an owner index.

    Expired entries are dropped on read and purged a few at a time on every write, so
    memory stays bounded by the sessions that are alive. Data does not outlive the
    process, and a second worker process does not see it: use SQLite or Redis there.
    It holds nothing to release, so `aclose` keeps the sessions: an app started again
    in the same process (a test suite, a reloader) finds them still there.

    ``clock`` returns seconds (monotonic); tests may pass their own to move time.
    """

    capabilities = StorageCapabilities(
        persistent=False,
        max_value_size=64 * 1024 * 1024,
        event_loops=frozenset({"asyncio", "trio"}),
    )

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # id -> (data, deadline on self._clock, owner or None)
        self._data: dict[str, tuple[bytes, float, str | None]] = {}
        self._expiries: list[tuple[float, str]] = []
        self._owners: dict[str, set[str]] = {}

    @classmethod
    def from_url(cls, url: str, **options: object) -> MemoryStorage:
        """``memory://``: a fresh, empty store (options are not used)."""
        return cls()

    def __len__(self) -> int:
        return len(self._data)

    def _deadline(self, ttl: float | None) -> float:
        return _NEVER if ttl is None else self._clock() + ttl

    def _entry(self, id: str) -> tuple[bytes, float, str | None] | None:
        entry = self._data.get(id)
        if entry is not None and entry[1] <= self._clock():
            self._drop(id)
            return None
        return entry

    def _get(self, id: str) -> bytes | None:
        entry = self._entry(id)
        return None if entry is None else entry[0]

    def _drop(self, id: str) -> None:
        entry = self._data.pop(id, None)
        owner = entry[2] if entry is not None else None
        if owner is not None:
            linked = self._owners[owner]
            linked.discard(id)
            if not linked:
                del self._owners[owner]

    def _put(self, id: str, data: bytes, ttl: float | None, owner: str | None = None) -> None:
        deadline = self._deadline(ttl)
        self._drop(id)
        self._data[id] = (bytes(data), deadline, owner)
        if owner is not None:
            self._owners.setdefault(owner, set()).add(id)
        if deadline != _NEVER:
            heapq.heappush(self._expiries, (deadline, id))
        self._purge()

    def _purge(self) -> None:
        now = self._clock()
        heap = self._expiries
        for _ in range(_PURGE_BATCH):
            if not heap or heap[0][0] > now:
                break
            deadline, id = heapq.heappop(heap)
            entry = self._data.get(id)
            if entry is not None and entry[1] == deadline:
                self._drop(id)
        # touches and overwrites leave stale heap entries; keep the heap near the live size
        if len(heap) > 2 * len(self._data) + 64:
            self._expiries = [(e[1], i) for i, e in self._data.items() if e[1] != _NEVER]
            heapq.heapify(self._expiries)

    async def read(self, id: str) -> bytes | None:
        return self._get(id)

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        self._put(id, data, ttl)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        if self._get(id) != expected:
            return False
        self._put(id, data, ttl)
        return True

    async def invalidate(self, id: str) -> None:
        self._drop(id)

    async def touch(self, id: str, ttl: float | None) -> None:
        entry = self._entry(id)
        if entry is not None:
            self._put(id, entry[0], ttl, entry[2])

    # -- OwnerIndex ----------------------------------------------------------------

    async def write_owned(
        self, id: str, data: bytes, ttl: float | None, *, owner: str, expected: bytes | None
    ) -> bool:
        if self._get(id) != expected:
            return False
        self._put(id, data, ttl, owner)
        return True

    async def touch_owned(self, id: str, ttl: float | None, *, owner: str) -> None:
        await self.touch(id, ttl)  # the link lives in the entry: it moves with it

    async def list_owned(self, owner: str) -> list[OwnedEntry]:
        found = []
        wall, now = time.time(), self._clock()
        for id in list(self._owners.get(owner, ())):
            entry = self._entry(id)
            if entry is not None:
                expires = None if entry[1] == _NEVER else wall + (entry[1] - now)
                found.append(OwnedEntry(id, entry[0], expires))
        return found

    async def invalidate_owned(self, owner: str, *, keep: Collection[str] = ()) -> int:
        linked = list(self._owners.get(owner, ()))
        doomed = [id for id in linked if id not in keep and self._entry(id) is not None]
        for id in doomed:
            self._drop(id)
        return len(doomed)

    async def aclose(self) -> None:
        """Nothing to release: the sessions stay, and the storage stays usable."""

    def __repr__(self) -> str:
        return f"MemoryStorage(<{len(self._data)} sessions>)"
