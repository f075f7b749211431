"""The plugin registry: entry points loaded each on its own, clashes and failures named."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Iterator

import pytest
import satchel
from core_helpers import KEY
from satchel import _plugins


class FakeDist:
    def __init__(self, name: str, version: str = "9.9") -> None:
        self.metadata = {"Name": name}
        self.version = version


def module_plugin(name: str, body: str) -> str:
    """A real module, importable by name, holding a plugin's hook implementation."""
    module = types.ModuleType(name)
    exec(f"import satchel\n{body}", module.__dict__)  # noqa: S102 - test-defined source
    sys.modules[name] = module
    return name


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[importlib.metadata.EntryPoint]]:
    """Installed entry points of group ``satchel`` replaced by the test's own list."""
    eps: list[importlib.metadata.EntryPoint] = []

    def fake(**kwargs: str) -> list[importlib.metadata.EntryPoint]:
        return eps if kwargs.get("group") == "satchel" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [_Dist(eps)])
    _plugins.reset_plugins()
    yield eps
    _plugins.reset_plugins()


class _Dist:
    """A distribution carrying the given entry points, as pluggy reads them."""

    def __init__(self, eps: list[importlib.metadata.EntryPoint]) -> None:
        self._eps = eps
        self.metadata = {"name": "fake-dist"}
        self.version = "9.9"

    @property
    def entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return self._eps


def ep(name: str, module: str, dist: str) -> importlib.metadata.EntryPoint:
    point = importlib.metadata.EntryPoint(name=name, value=module, group="satchel")
    return point._for(FakeDist(dist))  # type: ignore[attr-defined,no-any-return]


REGISTER_TOY = """
@satchel.hookimpl
def satchel_register(registry):
    registry.storage("toy", "satchel:MemoryStorage.from_url")
"""


def test_builtins_register_through_the_hook() -> None:
    _plugins.reset_plugins()
    core = next(p for p in satchel.installed_plugins() if p.distribution == "satchel")
    assert core.schemes == ["memory"]
    assert set(core.serializers) == {"json", "msgpack"}
    assert set(core.transformers) == {"sign", "digest"}


def test_a_plugin_registers_a_scheme(entry_points: list[importlib.metadata.EntryPoint]) -> None:
    entry_points.append(ep("toy", module_plugin("toy_plugin_a", REGISTER_TOY), "satchel-toy"))
    assert isinstance(satchel.open_storage("toy://"), satchel.MemoryStorage)
    toy = next(p for p in satchel.installed_plugins() if p.distribution == "satchel-toy")
    assert toy.schemes == ["toy"]


def test_two_plugins_claiming_one_scheme_are_both_named(
    entry_points: list[importlib.metadata.EntryPoint],
) -> None:
    entry_points.append(ep("one", module_plugin("toy_plugin_b", REGISTER_TOY), "satchel-one"))
    entry_points.append(ep("two", module_plugin("toy_plugin_c", REGISTER_TOY), "satchel-two"))
    with pytest.raises(satchel.PluginError, match=r"satchel-one.*satchel-two|satchel-two.*satchel-one"):
        satchel.open_storage("toy://")


def test_a_broken_plugin_is_reported_and_does_not_break_the_others(
    entry_points: list[importlib.metadata.EntryPoint],
) -> None:
    entry_points.append(ep("broken", "no_such_module_anywhere", "satchel-broken"))
    entry_points.append(ep("toy", module_plugin("toy_plugin_d", REGISTER_TOY), "satchel-toy"))
    assert isinstance(satchel.open_storage("toy://"), satchel.MemoryStorage)
    broken = next(p for p in satchel.installed_plugins() if p.distribution == "satchel-broken")
    assert broken.error is not None
    assert "no_such_module_anywhere" in broken.error
    assert broken.version == "9.9"


def test_a_plugin_that_fails_in_its_hook_is_reported(
    entry_points: list[importlib.metadata.EntryPoint],
) -> None:
    body = """
@satchel.hookimpl
def satchel_register(registry):
    raise RuntimeError("boom")
"""
    entry_points.append(ep("bad", module_plugin("toy_plugin_e", body), "satchel-bad"))
    bad = next(p for p in satchel.installed_plugins() if p.distribution == "satchel-bad")
    assert bad.error == "RuntimeError: boom"
    assert isinstance(satchel.open_storage("memory://"), satchel.MemoryStorage)


def test_a_factory_string_is_imported_only_when_first_used(
    entry_points: list[importlib.metadata.EntryPoint],
) -> None:
    body = """
@satchel.hookimpl
def satchel_register(registry):
    registry.storage("lazy", "toy_driver_never_imported:Storage.from_url")
"""
    entry_points.append(ep("lazy", module_plugin("toy_plugin_f", body), "satchel-lazy"))
    assert "toy_driver_never_imported" not in sys.modules
    with pytest.raises(satchel.PluginError, match=r"satchel-lazy.*cannot be imported"):
        satchel.open_storage("lazy://")


def test_unknown_scheme_names_the_package_for_known_schemes(
    entry_points: list[importlib.metadata.EntryPoint],
) -> None:
    with pytest.raises(satchel.PluginError, match="pip install satchel-mongo"):
        satchel.open_storage("mongodb://localhost")


def test_named_serializers_and_transformers_resolve() -> None:
    _plugins.reset_plugins()
    ser = satchel.serializer("json", dict)
    assert ser.decode(ser.encode({"a": 1})) == {"a": 1}
    sign = satchel.transformer("sign", key=KEY)
    assert sign.decode(sign.encode(b"x")) == b"x"
