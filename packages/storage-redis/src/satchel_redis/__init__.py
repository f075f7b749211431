"""satchel-redis: session storage in Redis (or Valkey): standalone, Sentinel and Cluster.

Examples:
    >>> import satchel
    >>> storage = satchel.open_storage("redis://127.0.0.1:6379/0?namespace=shop")

The plugin registers the schemes ``redis``, ``rediss``, ``unix``, ``redis+sentinel``
and ``redis+cluster``; redis-py is imported when a storage is first opened.
"""

from ._storage import RedisClusterStorage, RedisStorage

__all__ = ["RedisStorage", "RedisClusterStorage"]
