"""The kit against the storage ``--satchel-storage-url`` opens: what ``satchel conformance URL`` runs.

Each check gets a fresh namespace on that storage (``open_storage(url, namespace=...)``);
``reopen`` opens the same URL and namespace again, ``other_namespace`` a second one.
Afterwards the IDs a check wrote are invalidated, so a persistent backend keeps nothing.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
import satchel
from satchel import SessionStorage

from satchel_conformance import Reopen, StorageContract
from satchel_conformance._storage import written_ids


def _namespace() -> str:
    return f"satchel-conformance-{secrets.token_hex(6)}"


@contextlib.asynccontextmanager
async def _opened(url: str, namespace: str, kit: StorageContract) -> AsyncIterator[SessionStorage]:
    """The storage at ``url`` in ``namespace``; closed afterwards, and the check's IDs removed."""
    storage = satchel.open_storage(url, namespace=namespace)
    try:
        yield storage
    finally:
        await storage.aclose()
        cleaner = satchel.open_storage(url, namespace=namespace)
        try:
            for id in written_ids(kit):
                await cleaner.invalidate(id)
        finally:
            await cleaner.aclose()


class TestStorageURL(StorageContract):
    """Every storage check, against the storage the URL opens."""

    @pytest.fixture
    def url(self, pytestconfig: pytest.Config) -> str:
        return str(pytestconfig.getoption("satchel_storage_url"))

    @pytest.fixture
    def namespace(self) -> str:
        return _namespace()

    @pytest.fixture
    async def storage(self, url: str, namespace: str) -> AsyncIterator[SessionStorage]:
        async with _opened(url, namespace, self) as storage:
            yield storage

    @pytest.fixture
    def reopen(self, url: str, namespace: str) -> Reopen:
        async def reopen() -> SessionStorage:
            return satchel.open_storage(url, namespace=namespace)

        return reopen

    @pytest.fixture
    async def other_namespace(self, url: str) -> AsyncIterator[SessionStorage]:
        async with _opened(url, _namespace(), self) as storage:
            yield storage
