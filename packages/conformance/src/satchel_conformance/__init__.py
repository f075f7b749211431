"""satchel-conformance: the proof that a storage, serializer or transformer keeps satchel's contract.

Two ways in, one suite:

- ``satchel conformance URL`` (or ``pytest --pyargs satchel_conformance
  --satchel-storage-url=URL``) runs every storage check against a storage opened from a URL;
- a test module subclasses `StorageContract` (or `SerializerContract`,
  `TransformerContract`) and provides the fixtures it documents.

The names below load on first use, so the pytest plugin this package registers costs a
test run that does not use it nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._codecs import SerializerContract, TransformerContract
    from ._storage import Outage, RawRead, RawWrite, Reopen, StorageContract, StoredExpiry, Timing

__all__ = [
    "StorageContract",
    "SerializerContract",
    "TransformerContract",
    "Reopen",
    "RawRead",
    "RawWrite",
    "StoredExpiry",
    "Outage",
    "Timing",
]

_HOMES = {
    "StorageContract": "._storage",
    "Reopen": "._storage",
    "RawRead": "._storage",
    "RawWrite": "._storage",
    "StoredExpiry": "._storage",
    "Outage": "._storage",
    "Timing": "._storage",
    "SerializerContract": "._codecs",
    "TransformerContract": "._codecs",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'satchel_conformance' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
