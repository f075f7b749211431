"""satchel-mongo: server-side satchel sessions in MongoDB, through PyMongo's async client.

Examples:
    >>> import satchel
    >>> storage = satchel.open_storage("mongodb://localhost:27017/app?replicaSet=rs0")

Importing this package does not import PyMongo; opening a storage does.
"""

from ._storage import MongoStorage

__all__ = ["MongoStorage"]
