"""satchel-sqlite's plugin hook: registers the ``sqlite`` storage scheme.

Registration only: aiosqlite is imported when a storage is first opened.
"""

from __future__ import annotations

import satchel


@satchel.hookimpl
def satchel_register(registry: satchel.Registry) -> None:
    registry.storage("sqlite", "satchel_sqlite._storage:SQLiteStorage.from_url")
