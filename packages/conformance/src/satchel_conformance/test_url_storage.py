"""The kit against the storage ``--satchel-storage-url`` opens: what ``satchel conformance URL`` runs.

Each check gets a fresh namespace on that storage (``open_storage(url, namespace=...)``);
``reopen`` opens the same URL and namespace again, ``other_namespace`` a second one.
Afterwards the IDs a check wrote are invalidated, and the owners it linked sessions to (on a
storage with an owner index) have their sessions invalidated, so a persistent backend keeps nothing.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import pytest
import satchel
from satchel import SessionStorage

from satchel_conformance import Reopen, StorageContract
from satchel_conformance._storage import written_ids, written_owners


class _URL(str):
    """The storage URL, with its password masked wherever pytest shows its ``repr``: the
    arguments of a fixture or check in a traceback, an assertion's message."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(satchel.redact_url(self))


def _namespace() -> str:
    return f"satchel-conformance-{secrets.token_hex(6)}"


@contextlib.asynccontextmanager
async def _opened(url: str, namespace: str, kit: StorageContract) -> AsyncIterator[SessionStorage]:
    """The storage at ``url`` in ``namespace``; closed afterwards, the check's owners and IDs removed."""
    storage = satchel.open_storage(url, namespace=namespace)
    try:
        yield storage
    finally:
        await storage.aclose()
        cleaner = satchel.open_storage(url, namespace=namespace)
        try:
            if isinstance(cleaner, satchel.OwnerIndex):
                for owner in written_owners(kit):
                    await cleaner.invalidate_owned(owner)
            for id in written_ids(kit):
                await cleaner.invalidate(id)
        finally:
            await cleaner.aclose()


class TestStorageURL(StorageContract):
    """Every storage check, against the storage the URL opens."""

    @pytest.fixture
    def url(self, pytestconfig: pytest.Config) -> str:
        return _URL(pytestconfig.getoption("satchel_storage_url"))

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
