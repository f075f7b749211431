"""Registers the Redis schemes; imports neither redis-py nor the storage module."""

from __future__ import annotations

import satchel

_STANDALONE = "satchel_redis:RedisStorage.from_url"


@satchel.hookimpl
def satchel_register(registry: satchel.Registry) -> None:
    for scheme in ("redis", "rediss", "unix", "redis+sentinel"):
        registry.storage(scheme, _STANDALONE)
    registry.storage("redis+cluster", "satchel_redis:RedisClusterStorage.from_url")
