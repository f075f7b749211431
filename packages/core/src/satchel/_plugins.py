"""The plugin registry: entry-point group ``satchel``, loaded lazily and each on its own.

pluggy and ``importlib.metadata`` are imported when the registry is first needed (the
first `open_storage`, `serializer`, `transformer` or `installed_plugins`), not by
``import satchel``. Plugins' commands are asked for only by the ``satchel`` command.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from . import _hookspecs
from ._exceptions import PluginError
from ._types import Serializer, SessionStorage, Transformer, record
from ._urls import redact_url

__all__ = [
    "Registry",
    "Commands",
    "Command",
    "PluginInfo",
    "open_storage",
    "serializer",
    "transformer",
    "registry",
    "installed_plugins",
    "reset_plugins",
]

log = logging.getLogger("satchel.plugins")

GROUP = "satchel"
Factory = Callable[..., Any] | str
T = TypeVar("T")

# Names users ask for before installing the package that provides them.
_PROVIDERS = {
    "sqlite": "satchel-sqlite",
    "redis": "satchel-redis",
    "rediss": "satchel-redis",
    "unix": "satchel-redis",
    "redis+sentinel": "satchel-redis",
    "redis+cluster": "satchel-redis",
    "mongodb": "satchel-mongo",
    "mongodb+srv": "satchel-mongo",
    "encrypt": "satchel-crypto",
}


@record
class _Entry:
    __match_args__ = ("factory", "provider", "resolved")
    __slots__ = __match_args__

    def __init__(self, factory: Factory, provider: str, resolved: Callable[..., Any] | None = None) -> None:
        self.factory = factory
        self.provider = provider
        self.resolved = resolved

    def resolve(self) -> Callable[..., Any]:
        if self.resolved is None:
            if callable(self.factory):
                self.resolved = self.factory
            else:
                module_name, _, attr = self.factory.partition(":")
                try:
                    obj: Any = importlib.import_module(module_name)
                    for part in attr.split("."):
                        obj = getattr(obj, part)
                except (ImportError, AttributeError) as exc:
                    raise PluginError(
                        f"{self.provider} registered {self.factory!r}, which cannot be "
                        f"imported ({exc}); reinstall or upgrade {self.provider.split()[0]}"
                    ) from exc
                self.resolved = obj
        return self.resolved


@record
class PluginInfo:
    """One installed plugin, as ``satchel plugins`` shows it.

    Attributes:
        distribution: the name of the distribution that provides it (``satchel-redis``).
        version: that distribution's version.
        schemes: the storage schemes it registered.
        serializers: the serializer names it registered.
        transformers: the transformer names it registered.
        commands: the ``satchel`` subcommands it added, once the ``satchel`` command has asked.
        error: why it failed to load, register or add its commands; ``None``: it did not.
    """

    __match_args__ = (
        "distribution",
        "version",
        "schemes",
        "serializers",
        "transformers",
        "commands",
        "error",
    )
    __slots__ = __match_args__

    def __init__(
        self,
        distribution: str,
        version: str,
        schemes: list[str] | None = None,
        serializers: list[str] | None = None,
        transformers: list[str] | None = None,
        commands: list[str] | None = None,
        error: str | None = None,
    ) -> None:
        self.distribution = distribution
        self.version = version
        self.schemes: list[str] = [] if schemes is None else schemes
        self.serializers: list[str] = [] if serializers is None else serializers
        self.transformers: list[str] = [] if transformers is None else transformers
        self.commands: list[str] = [] if commands is None else commands
        self.error = error

    def failed(self, message: str) -> None:
        self.error = message if self.error is None else f"{self.error}; {message}"


@record
class Command:
    """A subcommand of ``satchel`` that a plugin added."""

    __match_args__ = ("name", "help", "entry")
    __slots__ = __match_args__

    def __init__(self, name: str, help: str, entry: _Entry) -> None:
        self.name = name
        self.help = help
        self.entry = entry


class Commands:
    """What plugins fill through the ``satchel_add_commands`` hook: subcommands of ``satchel``.

    Examples:
        >>> @satchel.hookimpl
        ... def satchel_add_commands(commands: satchel.Commands) -> None:
        ...     commands.add("vacuum", "satchel_mine._cli:vacuum", help="compact the store")
    """

    def __init__(self, reserved: Collection[str] = ()) -> None:
        self._reserved = frozenset(reserved)
        self._provider = "satchel"
        self.table: dict[str, Command] = {}

    def add(self, name: str, run: Factory, *, help: str) -> None:
        """Add ``satchel NAME``, listed by ``satchel --help`` with ``help`` (one line).

        ``run`` is ``"module:function"`` (or the function): it is called with the arguments
        after ``NAME``, a ``list[str]``, and returns the exit status. Its module is imported
        only when the command runs, so it may import what it needs at the top. The command
        parses its own arguments, ``--help`` included.
        """
        import re  # only the satchel command adds commands

        if not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", name):
            raise PluginError(
                f"{self._provider} adds the command {name!r}; a command is a lower-case word of at "
                "most 32 letters, digits and '-', such as 'vacuum'"
            )
        if name in self._reserved:
            raise PluginError(f"{self._provider} adds the command {name!r}, which is satchel's own")
        other = self.table.get(name)
        if other is not None and other.entry.provider != self._provider:
            raise PluginError(
                f"the command {name!r} is added by both {other.entry.provider} and "
                f"{self._provider}; uninstall one of them"
            )
        self.table[name] = Command(name, " ".join(help.split()), _Entry(run, self._provider))


class Registry:
    """What plugins fill: storage schemes, serializer and transformer names."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, _Entry]] = {
            "storage": {},
            "serializer": {},
            "transformer": {},
        }
        self._provider = "satchel"
        self.plugins: dict[str, PluginInfo] = {}
        self._hooks: Any = None  # the pluggy hook relay, for the command hook
        self._providers: dict[str, tuple[str, str]] = {}
        self._commands: Commands | None = None

    def storage(self, scheme: str, factory: Factory) -> None:
        """Register ``factory(url, **options) -> SessionStorage`` for ``scheme://`` URLs."""
        self._add("storage", scheme.lower(), factory)

    def serializer(self, name: str, factory: Factory) -> None:
        """Register ``factory(type, **options) -> Serializer`` under ``name``."""
        self._add("serializer", name, factory)

    def transformer(self, name: str, factory: Factory) -> None:
        """Register ``factory(**options) -> Transformer`` under ``name``."""
        self._add("transformer", name, factory)

    def _add(self, kind: str, name: str, factory: Factory) -> None:
        table = self._tables[kind]
        if name in table and table[name].provider != self._provider:
            raise PluginError(
                f"{kind} {name!r} is claimed by both {table[name].provider} and "
                f"{self._provider}; uninstall one of them"
            )
        table[name] = _Entry(factory, self._provider)
        info = self.plugins.get(self._provider)
        if info is not None:
            {"storage": info.schemes, "serializer": info.serializers}.get(kind, info.transformers).append(
                name
            )

    def _lookup(self, kind: str, name: str) -> _Entry:
        entry = self._tables[kind].get(name)
        if entry is not None:
            return entry
        installed = ", ".join(sorted(self._tables[kind])) or "none"
        hint = ""
        provider = _PROVIDERS.get(name)
        if provider is not None:
            broken = self.plugins.get(provider)
            hint = (
                f"; {provider} is installed but failed to load ({broken.error}): reinstall it"
                if broken is not None and broken.error
                else f"; install it with: pip install {provider}"
            )
        what = "storage scheme" if kind == "storage" else kind
        raise PluginError(f"no plugin provides the {what} {name!r}{hint} (installed: {installed})")

    def names(self, kind: str) -> list[str]:
        return sorted(self._tables[kind])

    def commands(self, reserved: Collection[str] = ()) -> dict[str, Command]:
        """The commands plugins add, asking them on first use. A plugin whose hook fails is
        left out, its error in `plugins`; the others' commands are kept."""
        if self._commands is None:
            commands = Commands(reserved)
            if self._hooks is not None:
                for impl in self._hooks.satchel_add_commands.get_hookimpls():
                    self._add_commands(commands, impl)
            self._commands = commands
        return self._commands.table

    def _add_commands(self, commands: Commands, impl: Any) -> None:
        dist_name, dist_version = self._providers.get(impl.plugin_name, (impl.plugin_name, "?"))
        info = self.plugins.setdefault(dist_name, PluginInfo(dist_name, dist_version))
        before = dict(commands.table)
        commands._provider = dist_name
        try:
            impl.function(commands=commands)
        except Exception as exc:
            commands.table = before  # all of a plugin's commands, or none
            message = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s %s failed to add its commands: %s", dist_name, dist_version, message)
            info.failed(f"adding its commands: {message}")
        else:
            info.commands = sorted(set(commands.table) - set(before))
        finally:
            commands._provider = "satchel"


def _dist_label(dist: Any) -> tuple[str, str]:
    try:
        return str(dist.metadata["Name"]), str(dist.version)
    except Exception:  # pragma: no cover - metadata of a broken install
        return "unknown distribution", "?"


def _load() -> Registry:
    import importlib.metadata

    import pluggy

    reg = Registry()
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(_hookspecs.specification())
    from . import _builtins

    pm.register(_builtins, name="satchel")
    version = importlib.metadata.version("satchel")
    reg.plugins["satchel"] = PluginInfo("satchel", version)
    providers: dict[str, tuple[str, str]] = {"satchel": ("satchel", version)}

    for ep in importlib.metadata.entry_points(group=GROUP):
        dist_name, dist_version = _dist_label(ep.dist) if ep.dist else (ep.name, "?")
        try:
            pm.load_setuptools_entrypoints(GROUP, name=ep.name)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s %s failed to load: %s", dist_name, dist_version, message)
            reg.plugins[dist_name] = PluginInfo(dist_name, dist_version, error=message)
            continue
        providers[ep.name] = (dist_name, dist_version)
        # listed even when it registers nothing here (a plugin that only adds commands)
        reg.plugins.setdefault(dist_name, PluginInfo(dist_name, dist_version))

    for impl in pm.hook.satchel_register.get_hookimpls():
        dist_name, dist_version = providers.get(impl.plugin_name, (impl.plugin_name, "?"))
        reg.plugins.setdefault(dist_name, PluginInfo(dist_name, dist_version))
        reg._provider = dist_name
        try:
            impl.function(registry=reg)
        except PluginError:
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            log.warning("plugin %s %s failed to register: %s", dist_name, dist_version, message)
            reg.plugins[dist_name].error = message
    reg._provider = "satchel"
    reg._hooks = pm.hook
    reg._providers = providers
    return reg


_registry: Registry | None = None
_lock = threading.Lock()


def registry() -> Registry:
    """The registry, loading the installed plugins on first use."""
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                _registry = _load()
    return _registry


def reset_plugins() -> None:
    """Forget the loaded plugins, so the next lookup scans the entry points again."""
    global _registry
    with _lock:
        _registry = None


def installed_plugins() -> list[PluginInfo]:
    """Every installed plugin with what it registered (or why it failed)."""
    return sorted(registry().plugins.values(), key=lambda p: (p.distribution != "satchel", p.distribution))


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    # a scheme with ':' or '@' is a password's end, which the error must not name
    if not sep or not scheme or ":" in scheme or "@" in scheme:
        raise PluginError(
            f"{redact_url(url)!r} is not a storage URL; write it as scheme://..., e.g. 'memory://' "
            "or 'sqlite:///sessions.db'"
        )
    return scheme.lower()


def open_storage(url: str, **options: Any) -> SessionStorage:
    """Open the storage for ``url`` through the installed plugins.

    Examples:
        >>> storage = open_storage("memory://")

    Raises `PluginError` when no installed plugin provides the scheme.
    """
    factory = registry()._lookup("storage", scheme_of(url)).resolve()
    return factory(url, **options)  # type: ignore[no-any-return]


def serializer(name: str, type: type[T], **options: Any) -> Serializer[T]:
    """The serializer registered as ``name`` (``"json"``, ``"msgpack"``...) for ``type``."""
    return registry()._lookup("serializer", name).resolve()(type, **options)  # type: ignore[no-any-return]


def transformer(name: str, **options: Any) -> Transformer:
    """The transformer registered as ``name`` (``"sign"``, ``"encrypt"``...), built with ``options``."""
    return registry()._lookup("transformer", name).resolve()(**options)  # type: ignore[no-any-return]
