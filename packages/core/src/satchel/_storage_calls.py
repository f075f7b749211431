"""Where the core meets a storage: every call goes through `storage_errors`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import SessionConflict, StorageError

if TYPE_CHECKING:
    from ._mapping import Mapping

__all__ = ["storage_errors", "conflict"]


class storage_errors:
    """Turn whatever a storage raises inside the block into `StorageError`, cause chained.

    A storage that already raises `StorageError` (every built-in does) passes through. A
    class rather than a ``contextlib.contextmanager``: it wraps every storage call of every
    request, and a generator-based manager costs three times as much.
    """

    __slots__ = ("action", "m")

    def __init__(self, m: Mapping[Any], action: str) -> None:
        self.m = m
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, StorageError) or not isinstance(exc, Exception):
            return
        m = self.m
        raise StorageError(
            f"{self.action} for {m.transport} {m.name!r} failed in {m.storage!r}: {exc}; "
            "check that the storage is reachable"
        ) from exc


def conflict(m: Mapping[Any]) -> SessionConflict:
    """The error of a mapping with ``detect_conflicts=True`` that lost a compare-and-set."""
    return SessionConflict(
        f"session {m.name!r} changed in another request since this one read it; read it again and retry"
    )
