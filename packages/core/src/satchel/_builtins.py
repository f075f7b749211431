"""The core's own registrations, through the same hook every plugin uses."""

from __future__ import annotations

from ._hookspecs import hookimpl
from ._plugins import Registry


@hookimpl
def satchel_register(registry: Registry) -> None:
    registry.storage("memory", "satchel._memory:MemoryStorage.from_url")
    registry.serializer("json", "satchel._serializers:JSONSerializer")
    registry.serializer("msgpack", "satchel._serializers:MsgPackSerializer")
    registry.transformer("sign", "satchel._transformers:Sign")
    registry.transformer("digest", "satchel._transformers:Digest")
