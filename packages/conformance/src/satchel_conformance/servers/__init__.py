"""Find a server for tests: env URL, then a binary on PATH, then testcontainers, else skip.

``mongo_compatible`` is a fourth way, for development only: a MongoDB wire-compatible
server installed from PyPI (not MongoDB itself; see its module).

Each finder is a context manager taking a scratch directory; it yields a URL, or raises
`Unavailable` whose message says which of the three to provide. The pytest
fixtures in `satchel_conformance.servers.fixtures` turn that into a skip with the
same message. Only the standard library is imported here.
"""

from __future__ import annotations

from ._common import Unavailable, free_port, paused, wait_for_port
from ._mongo import mongodb
from ._mongo_compatible import mongo_compatible
from ._redis import redis, redis_cluster, redis_sentinel

__all__ = [
    "Unavailable",
    "free_port",
    "wait_for_port",
    "paused",
    "redis",
    "redis_cluster",
    "redis_sentinel",
    "mongodb",
    "mongo_compatible",
]
