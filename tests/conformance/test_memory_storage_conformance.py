"""The kit, as a backend's own test module would use it, against the core's MemoryStorage."""

from __future__ import annotations

import math
import time

import pytest
import satchel
from satchel_conformance import StorageContract, StoredExpiry


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> satchel.MemoryStorage:
        return satchel.MemoryStorage()

    @pytest.fixture
    def other_namespace(self) -> satchel.MemoryStorage:
        # MemoryStorage has no namespaces: two instances are the nearest thing
        return satchel.MemoryStorage()

    @pytest.fixture
    def stored_expiry(self, storage: satchel.MemoryStorage) -> StoredExpiry:
        """The deadline in the storage's dict (on its monotonic clock), as Unix seconds."""

        async def stored_expiry(id: str) -> float | None:
            _, deadline, _ = storage._data[id]  # a KeyError is a LookupError: nothing held
            return None if deadline == math.inf else time.time() + (deadline - time.monotonic())

        return stored_expiry
