"""The kit, as a backend's own test module would use it, against the core's MemoryStorage."""

from __future__ import annotations

import pytest
import satchel
from satchel_conformance import StorageContract


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> satchel.MemoryStorage:
        return satchel.MemoryStorage()

    @pytest.fixture
    def other_namespace(self) -> satchel.MemoryStorage:
        # MemoryStorage has no namespaces: two instances are the nearest thing
        return satchel.MemoryStorage()
