"""The plugin hook. A plugin module implements it with ``@satchel.hookimpl``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ._plugins import Registry

__all__ = ["hookimpl", "hookspec", "satchel_register"]

hookspec = pluggy.HookspecMarker("satchel")
hookimpl = pluggy.HookimplMarker("satchel")
"""Marks a plugin's ``satchel_register`` function."""


@hookspec
def satchel_register(registry: Registry) -> None:
    """Register storages, serializers and transformers by name.

    Registration only: synchronous, no I/O, and the driver is not imported here (give
    factories as ``"module:attr"`` strings). The order plugins register in means nothing.
    """
