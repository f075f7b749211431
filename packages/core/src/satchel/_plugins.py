"""The plugin registry: entry-point group ``satchel``, loaded lazily and each on its own.

pluggy and ``importlib.metadata`` are imported when the registry is first needed (the
first `open_storage`, `serializer`, `transformer` or `installed_plugins`), not by
``import satchel``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import _hookspecs
from ._exceptions import PluginError
from ._types import Serializer, SessionStorage, Transformer
from ._urls import redact_url

__all__ = [
    "Registry",
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


@dataclass
class _Entry:
    factory: Factory
    provider: str
    resolved: Callable[..., Any] | None = None

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


@dataclass
class PluginInfo:
    """One installed plugin, as ``satchel plugins`` shows it."""

    distribution: str
    version: str
    schemes: list[str] = field(default_factory=list)
    serializers: list[str] = field(default_factory=list)
    transformers: list[str] = field(default_factory=list)
    error: str | None = None


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
