"""The public surface is pinned: what ``satchel`` exports is what ``__all__`` says, each
export names ``satchel`` as its module (so tracebacks and reprs show what users import), and
the plugins shipped here reach the core through public names only."""

from __future__ import annotations

import ast
import inspect
import types
from pathlib import Path

import pytest
import satchel

PACKAGES = Path(__file__).resolve().parents[2]


def test_all_and_the_public_names_agree() -> None:
    public = {
        name
        for name, value in vars(satchel).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert len(satchel.__all__) == len(set(satchel.__all__)), "a name is listed twice in __all__"
    assert public - set(satchel.__all__) == set(), "public in satchel but missing from __all__"
    assert set(satchel.__all__) - public == set(), "listed in __all__ but not defined"


@pytest.mark.parametrize("name", satchel.__all__)
def test_an_export_reports_satchel_as_its_module(name: str) -> None:
    value = getattr(satchel, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert value.__module__ == "satchel"


def test_a_storage_error_reads_as_satchel_storage_error_in_a_traceback() -> None:
    with pytest.raises(satchel.StorageError) as caught:
        raise satchel.StorageError("the store is down")
    assert "satchel.StorageError: the store is down" in caught.exconly()


def _private_core_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("satchel._"):
            found.append(f"{path.relative_to(PACKAGES)}:{node.lineno} from {node.module}")
        elif isinstance(node, ast.Import):
            found += [
                f"{path.relative_to(PACKAGES)}:{node.lineno} import {a.name}"
                for a in node.names
                if a.name.startswith("satchel._")
            ]
    return found


def test_the_shipped_plugins_use_only_the_cores_public_names() -> None:
    sources = [p for p in PACKAGES.glob("*/src/*/**/*.py") if not p.is_relative_to(PACKAGES / "core")]
    assert sources, "no plugin sources found"
    assert [hit for p in sources for hit in _private_core_imports(p)] == []


@pytest.mark.parametrize("factory", [satchel.cookie, satchel.header], ids=lambda f: f.__name__)
def test_every_parameter_of_cookie_and_header_is_documented(factory: object) -> None:
    doc = inspect.getdoc(factory) or ""
    args = doc.partition("Args:")[2].partition("Examples:")[0]
    undocumented = [
        name for name in inspect.signature(factory).parameters if f"\n    {name}:" not in f"\n{args}"
    ]
    assert undocumented == []
