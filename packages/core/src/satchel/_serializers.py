"""Serializers built on msgspec: typed decode with validation, JSON or MessagePack.

Session types may be msgspec Structs, dataclasses, attrs classes, TypedDicts or ``dict``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from ._exceptions import ConfigError, SerializationError

__all__ = ["JSONSerializer", "MsgPackSerializer"]

T = TypeVar("T")


class _MsgspecSerializer(Generic[T]):
    _module: Any

    def __init__(self, type: type[T]) -> None:
        self.type = type
        self._encoder = self._module.Encoder()
        try:
            self._decoder = self._module.Decoder(type)
        except TypeError as exc:
            raise ConfigError(
                f"{type!r} cannot be a session type ({exc}); use a msgspec Struct, a "
                "dataclass, an attrs class, a TypedDict or dict"
            ) from exc

    def encode(self, value: T) -> bytes:
        try:
            return self._encoder.encode(value)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError) as exc:
            raise SerializationError(f"cannot encode {type(value).__name__}: {exc}") from exc

    def decode(self, data: bytes) -> T:
        try:
            return self._decoder.decode(data)  # type: ignore[no-any-return]
        except (msgspec.DecodeError, TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(f"not a valid {self.type!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type!r})"


class JSONSerializer(_MsgspecSerializer[T]):
    """JSON through msgspec; decoding validates against the session type.

    Examples:
        >>> JSONSerializer(dict).decode(b'{"a": 1}')
        {'a': 1}
    """

    _module = msgspec.json


class MsgPackSerializer(_MsgspecSerializer[T]):
    """MessagePack through msgspec: smaller than JSON; decoding validates the type."""

    _module = msgspec.msgpack
