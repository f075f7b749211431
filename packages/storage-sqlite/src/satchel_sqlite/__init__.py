"""satchel-sqlite: server-side sessions in one SQLite file, safe under several workers.

Examples:
    >>> import satchel
    >>> storage = satchel.open_storage("sqlite:///sessions.db")   # doctest: +SKIP

or directly:

Examples:
    >>> from satchel_sqlite import SQLiteStorage
    >>> storage = SQLiteStorage("sessions.db", namespace="shop")   # doctest: +SKIP
"""

from ._storage import SQLiteStorage

__all__ = ["SQLiteStorage"]
