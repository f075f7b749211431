"""Where the core meets a storage: every call goes through `storage_errors`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._exceptions import SessionConflict, StorageError

if TYPE_CHECKING:
    from ._mapping import Mapping

__all__ = ["storage_errors", "conflict"]


@contextlib.contextmanager
def storage_errors(m: Mapping[Any], action: str) -> Iterator[None]:
    """Turn whatever a storage raises inside the block into `StorageError`, cause chained.

    A storage that already raises `StorageError` (every built-in does) passes through.
    """
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(
            f"{action} for {m.transport} {m.name!r} failed in {m.storage!r}: {exc}; "
            "check that the storage is reachable"
        ) from exc


def conflict(m: Mapping[Any]) -> SessionConflict:
    """The error of a mapping with ``detect_conflicts=True`` that lost a compare-and-set."""
    return SessionConflict(
        f"session {m.name!r} changed in another request since this one read it; read it again and retry"
    )
