"""``MemoryStorage``: sessions in this process's memory, for tests and single-process apps."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

from ._types import StorageCapabilities

__all__ = ["MemoryStorage"]

_NEVER = float("inf")
_PURGE_BATCH = 16


class MemoryStorage:
    """Server-side sessions in a dict, with TTL, touch and compare-and-set.

    Expired entries are dropped on read and purged a few at a time on every write, so
    memory stays bounded by the sessions that are alive. Data does not outlive the
    process, and a second worker process does not see it: use SQLite or Redis there.

    ``clock`` returns seconds (monotonic); tests may pass their own to move time.
    """

    capabilities = StorageCapabilities(
        persistent=False,
        max_value_size=64 * 1024 * 1024,
        event_loops=frozenset({"asyncio", "trio"}),
    )

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes, float]] = {}
        self._expiries: list[tuple[float, str]] = []

    @classmethod
    def from_url(cls, url: str, **options: object) -> MemoryStorage:
        """``memory://``: a fresh, empty store (options are not used)."""
        return cls()

    def __len__(self) -> int:
        return len(self._data)

    def _deadline(self, ttl: float | None) -> float:
        return _NEVER if ttl is None else self._clock() + ttl

    def _get(self, id: str) -> bytes | None:
        entry = self._data.get(id)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._data[id]
            return None
        return entry[0]

    def _put(self, id: str, data: bytes, ttl: float | None) -> None:
        deadline = self._deadline(ttl)
        self._data[id] = (bytes(data), deadline)
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
                del self._data[id]
        # touches and overwrites leave stale heap entries; keep the heap near the live size
        if len(heap) > 2 * len(self._data) + 64:
            self._expiries = [(d, i) for i, (_, d) in self._data.items() if d != _NEVER]
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
        self._data.pop(id, None)

    async def touch(self, id: str, ttl: float | None) -> None:
        data = self._get(id)
        if data is not None:
            self._put(id, data, ttl)

    async def aclose(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"MemoryStorage(<{len(self._data)} sessions>)"
