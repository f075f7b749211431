"""The plugin hook. A plugin module implements it with ``@satchel.hookimpl``.

pluggy is imported when the registry is first built, not by ``import satchel``:
`hookimpl` builds pluggy's marker the first time it marks a function (plugin modules are
imported by the registry), and the registry marks the hook's specification when it loads.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    import types

    import pluggy

    from ._plugins import Commands, Registry

__all__ = ["PROJECT", "hookimpl", "satchel_register", "satchel_add_commands", "specification"]

PROJECT = "satchel"
_F = TypeVar("_F", bound=Callable[..., object])


class HookimplMarker:
    """``pluggy.HookimplMarker("satchel")``, created (and pluggy imported) on first use."""

    def __init__(self) -> None:
        self._marker: pluggy.HookimplMarker | None = None
        self._lock = threading.Lock()

    def _pluggy(self) -> pluggy.HookimplMarker:
        if self._marker is None:
            with self._lock:
                if self._marker is None:
                    import pluggy

                    self._marker = pluggy.HookimplMarker(PROJECT)
        return self._marker

    @overload
    def __call__(
        self,
        function: _F,
        hookwrapper: bool = ...,
        optionalhook: bool = ...,
        tryfirst: bool = ...,
        trylast: bool = ...,
        specname: str | None = ...,
        wrapper: bool = ...,
    ) -> _F: ...

    @overload
    def __call__(
        self,
        function: None = ...,
        hookwrapper: bool = ...,
        optionalhook: bool = ...,
        tryfirst: bool = ...,
        trylast: bool = ...,
        specname: str | None = ...,
        wrapper: bool = ...,
    ) -> Callable[[_F], _F]: ...

    def __call__(self, function: Any = None, *args: Any, **options: Any) -> Any:
        return self._pluggy()(function, *args, **options)

    def __repr__(self) -> str:
        return f"satchel.hookimpl (pluggy.HookimplMarker({PROJECT!r}))"


hookimpl = HookimplMarker()
"""Marks a plugin's hook functions: ``@satchel.hookimpl``.

The hooks are ``satchel_register`` and ``satchel_add_commands``. It is pluggy's
``HookimplMarker("satchel")`` and takes the same options; pluggy is imported the first
time it marks a function, not by ``import satchel``.
"""


def satchel_register(registry: Registry) -> None:
    """Register storages, serializers and transformers by name.

    Registration only: synchronous, no I/O, and the driver is not imported here (give
    factories as ``"module:attr"`` strings). The order plugins register in means nothing.
    """


def satchel_add_commands(commands: Commands) -> None:
    """Add subcommands to the ``satchel`` command: ``commands.add(name, "module:attr", help=...)``.

    Called only by the ``satchel`` command, never by an app. Registration only, as for
    `satchel_register`: the command's module is named as a string, so it is imported when
    its command runs, not by ``satchel --help`` or by another command.
    """


def specification() -> types.ModuleType:
    """This module, its hooks marked as pluggy's specifications (imports pluggy)."""
    import pluggy

    mark = pluggy.HookspecMarker(PROJECT)
    mark(satchel_register)
    mark(satchel_add_commands)
    return sys.modules[__name__]
