"""The extension points: storage, serializer, transformer, identity generator."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

__all__ = [
    "SessionStorage",
    "CompareAndSet",
    "OwnerIndex",
    "OwnedEntry",
    "Purgeable",
    "StorageCapabilities",
    "capabilities_of",
    "Serializer",
    "Transformer",
    "BindableTransformer",
    "Reissue",
    "IdentityGenerator",
    "record",
    "frozen_record",
]

T = TypeVar("T")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**options: object) -> Callable[[T], T]:
        """Only type checkers read it (Python 3.10's `typing` does not have it)."""
        return lambda cls: cls


# satchel's small data classes are written out, `record` and `frozen_record` adding what
# a dataclass would: importing `dataclasses`, and the code it generates for each class,
# cost `import satchel` about 1 ms apiece (bench/bench_import.py). The fields are named
# by `__match_args__`, in the order `__init__` takes them, and are the `__slots__`.


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in self.__match_args__)


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is self.__class__:
        return _values(self) == _values(other)
    return NotImplemented  # type: ignore[no-any-return]


def _repr(self: Any) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
    return f"{type(self).__qualname__}({fields})"


def _reduce(self: Any) -> tuple[type, tuple[Any, ...]]:
    return type(self), _values(self)  # so copy and pickle call __init__ with the fields


def _hash(self: Any) -> int:
    return hash(_values(self))


def _refuse_assignment(self: Any, name: str, value: object) -> None:
    raise AttributeError(f"cannot assign to field {name!r}: {type(self).__qualname__} is frozen")


def _refuse_deletion(self: Any, name: str) -> None:
    raise AttributeError(f"cannot delete field {name!r}: {type(self).__qualname__} is frozen")


def record(cls: type[T]) -> type[T]:
    """Class decorator: ``==`` and ``repr`` from the fields, as a dataclass has; unhashable."""
    for name, method in (("__eq__", _eq), ("__repr__", _repr), ("__reduce__", _reduce)):
        setattr(cls, name, method)
    setattr(cls, "__hash__", None)  # noqa: B010 - mutable and compared by value
    return cls


@dataclass_transform(frozen_default=True)
def frozen_record(cls: type[T]) -> type[T]:
    """Class decorator: a `record` whose fields cannot be assigned or deleted, hashed by
    its fields. ``__init__`` sets them with ``object.__setattr__``; type checkers read the
    class as a frozen dataclass, so they refuse an assignment too."""
    record(cls)
    for name, method in (
        ("__hash__", _hash),
        ("__setattr__", _refuse_assignment),
        ("__delattr__", _refuse_deletion),
    ):
        setattr(cls, name, method)
    return cls


@runtime_checkable
class SessionStorage(Protocol):
    """Protocol: where server-side session data lives, keyed by session ID.

    Every method is required. ``ttl`` is in seconds; ``None`` means no expiry.
    Backend failures raise `satchel.StorageError` with the cause chained.

    Added in version 0.1.
    """

    async def read(self, id: str) -> bytes | None:
        """The stored bytes, or ``None`` when absent or expired."""
        ...

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        """Store ``data`` under ``id``, replacing what was there, expiring after ``ttl``."""
        ...

    async def invalidate(self, id: str) -> None:
        """Delete ``id``; deleting an absent id is not an error."""
        ...

    async def touch(self, id: str, ttl: float | None) -> None:
        """Extend the expiry of ``id`` to ``ttl`` from now, keeping its data; absent: no-op."""
        ...

    async def aclose(self) -> None:
        """Release what the storage holds (connections, files, pools); calling it twice is
        not an error. Not final: the next call opens the storage again, so an app can
        start and stop several times in one process."""
        ...


@runtime_checkable
class CompareAndSet(Protocol):
    """Protocol: optional storage capability behind conflict detection.

    Added in version 0.1.
    """

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        """Write only if the stored value is ``expected`` (``None``: only if absent).

        Atomic on the server. Returns whether the write happened.
        """
        ...


@frozen_record
class OwnedEntry:
    """One session of an owner, as `OwnerIndex.list_owned` reports it.

    Attributes:
        id: the key the session is stored under (what ``write_owned`` was given).
        data: the stored bytes.
        expires: when it expires, in Unix seconds (wall clock); ``None``: never.

    Added in version 0.2.
    """

    __match_args__ = ("id", "data", "expires")
    __slots__ = __match_args__
    id: str
    data: bytes
    expires: float | None

    def __init__(self, id: str, data: bytes, expires: float | None) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "expires", expires)


@runtime_checkable
class OwnerIndex(Protocol):
    """Protocol: optional storage capability: every session linked to its owner.

    It lets an app list and end all of one owner's sessions ("sign out everywhere").
    A storage that offers it also offers `CompareAndSet`. ``owner`` is a non-empty
    string of at most 256 characters, any characters; the storage keeps owners of
    different namespaces apart, as it keeps IDs.

    The link from an owner to a session is written in the same atomic step as the
    session, expires with it, and is gone once the session is invalidated or expired:
    ``list_owned`` and ``invalidate_owned`` never report a session that ``read`` would
    not return. The index holds nothing for sessions that have ended, beyond what the
    storage cleans up on its own within the session's TTL.

    Added in version 0.2.
    """

    async def write_owned(
        self, id: str, data: bytes, ttl: float | None, *, owner: str, expected: bytes | None
    ) -> bool:
        """`CompareAndSet.write_if`, linking ``id`` to ``owner`` in the same atomic step.

        Returns whether the write happened; when it did not, nothing changed.
        """
        ...

    async def touch_owned(self, id: str, ttl: float | None, *, owner: str) -> None:
        """`SessionStorage.touch`, moving the link's expiry with the session's."""
        ...

    async def list_owned(self, owner: str) -> list[OwnedEntry]:
        """The live sessions linked to ``owner``, in no particular order."""
        ...

    async def invalidate_owned(self, owner: str, *, keep: Collection[str] = ()) -> int:
        """Delete every session linked to ``owner`` except the IDs in ``keep``; how many.

        Every such session that exists when the call starts is gone when it returns; a
        session written during the call may survive. Safe to repeat (then it returns 0).
        """
        ...


@runtime_checkable
class Purgeable(Protocol):
    """Protocol: optional storage capability: delete expired entries now.

    For a storage that keeps expired entries until something removes them (SQLite rows,
    MongoDB documents between two passes of its TTL monitor). ``satchel purge URL``
    calls it; a storage whose backend drops expired entries by itself (Redis) or as it
    goes (memory) need not offer it.

    Its scope is the whole store the storage opened, every namespace in it (the SQLite
    file, the MongoDB collection), not only the storage's own namespace: an expired entry
    is no one's, and one purge job per store is what an operator schedules. It never
    removes a live entry, of any namespace.

    Added in version 0.2.
    """

    async def purge(self) -> int:
        """Delete every entry of the store that has expired by the time the call starts.

        Returns how many it deleted. Entries a background sweeper removed first are not
        counted; repeating it returns 0 unless more expired meanwhile.
        """
        ...


@frozen_record
class StorageCapabilities:
    """What honestly varies between storages, declared as data.

    A storage declares it as a ``capabilities`` attribute. One that declares nothing is
    held to the strictest reading: these defaults.

    Attributes:
        persistent: data survives ``aclose()`` and reopening the same URL.
        max_value_size: the largest value, in bytes, the storage accepts.
        event_loops: the async libraries the storage runs on (``"asyncio"``, ``"trio"``).

    Added in version 0.1.
    """

    __match_args__ = ("persistent", "max_value_size", "event_loops")
    __slots__ = __match_args__
    persistent: bool
    max_value_size: int
    event_loops: frozenset[str]

    def __init__(
        self,
        persistent: bool = True,
        max_value_size: int = 16 * 1024 * 1024,
        event_loops: frozenset[str] = frozenset({"asyncio", "trio"}),
    ) -> None:
        object.__setattr__(self, "persistent", persistent)
        object.__setattr__(self, "max_value_size", max_value_size)
        object.__setattr__(self, "event_loops", event_loops)


_STRICTEST = StorageCapabilities()


def capabilities_of(storage: object) -> StorageCapabilities:
    """The capabilities ``storage`` declares, or the strictest reading if it declares none."""
    caps = getattr(storage, "capabilities", None)
    return caps if isinstance(caps, StorageCapabilities) else _STRICTEST


class Serializer(Protocol[T]):
    """Protocol: turns a session value into bytes and back, validating on the way in.

    Added in version 0.1.
    """

    def encode(self, value: T) -> bytes:
        """The bytes for ``value``."""
        ...

    def decode(self, data: bytes) -> T:
        """The value for ``data``; raises `satchel.SerializationError` and nothing else."""
        ...


@runtime_checkable
class Transformer(Protocol):
    """Protocol: a reversible step applied to what travels (sign, digest, encrypt).

    ``decode`` returns ``None`` to refuse a value (tampered, foreign, expired key);
    it never raises.

    Added in version 0.1.
    """

    def encode(self, data: bytes) -> bytes:
        """Outgoing: protect ``data``."""
        ...

    def decode(self, data: bytes) -> bytes | None:
        """Incoming: the original bytes, or ``None`` to refuse."""
        ...


@runtime_checkable
class BindableTransformer(Transformer, Protocol):
    """Protocol: a transformer that derives per-mapping keys.

    A mapping calls ``bind(context)`` once, at construction, with a string naming the
    transport and the mapping (``"cookie:CART"``), and uses the transformer it returns;
    so a value cut for one mapping never opens under another.

    Added in version 0.1.
    """

    def bind(self, context: str) -> Transformer:
        """A transformer whose keys are derived for ``context``."""
        ...


class Reissue(bytes):
    """What ``Transformer.decode`` returns for a value accepted under a fallback key.

    It is ordinary ``bytes``; the marker tells the mapping to send the value again,
    protected under the newest key, at the end of the request.

    Added in version 0.1.
    """

    __slots__ = ()


IdentityGenerator = Callable[[], str]
"""A callable that returns a fresh session ID. See `satchel.token_id`."""
