"""``satchel new-plugin NAME``: writes a storage plugin package to start from.

The files are package data under ``files/``, ``.tmpl`` texts in which ``{{name}}``,
``{{dist}}``, ``{{module}}`` and ``{{Class}}`` are replaced (plain ``str.replace``), as
are ``__name__`` and ``__module__`` in their paths.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

from .._exceptions import ConfigError

__all__ = ["write_plugin", "render"]

_FILES = Path(__file__).resolve().parent / "files"
# a URL scheme, a distribution name and a module name at once: no '_' (not in a scheme),
# no '-' (not in a module)
_NAME = re.compile(r"[a-z][a-z0-9]{1,31}")


def _names(name: str) -> dict[str, str]:
    return {
        "name": name,
        "dist": f"satchel-{name}",
        "module": f"satchel_{name}",
        "Class": f"{name.capitalize()}Storage",
    }


def render(name: str) -> dict[str, str]:
    """The package's files for ``name``: relative path -> text."""
    names = _names(name)
    out: dict[str, str] = {}
    for source in sorted(_FILES.rglob("*.tmpl")):
        relative = source.relative_to(_FILES).as_posix().removesuffix(".tmpl")
        relative = relative.replace("__module__", names["module"]).replace("__name__", name)
        text = source.read_text(encoding="utf-8")
        for key, value in names.items():
            text = text.replace("{{" + key + "}}", value)
        out[relative] = text
    return out


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} cannot name a plugin: give 2-32 lower-case letters and digits, starting "
            "with a letter (it becomes the URL scheme NAME://, the package satchel-NAME and the "
            "module satchel_NAME), e.g. satchel new-plugin files"
        )
    from .._plugins import registry

    taken = registry().names("storage")
    if name in taken:
        raise ConfigError(
            f"the storage scheme {name!r} is already provided by an installed plugin; choose "
            f"another name (installed: {', '.join(taken)})"
        )


def write_plugin(name: str, directory: str | None = None) -> Path:
    """Write the package for ``name`` into ``directory`` (default ``./satchel-NAME``),
    which must not exist yet; the directory written. All or nothing: on a failure no
    directory is left at the target (`ConfigError` for a file-system error)."""
    _check_name(name)
    target = Path(directory if directory is not None else f"satchel-{name}")
    if target.exists() or target.is_symlink():
        raise ConfigError(
            f"{os.path.abspath(target)!r} already exists; new-plugin writes a new directory only "
            "(give another --dir, or remove it)"
        )
    files = render(name)
    # written whole in a hidden sibling, then renamed into place: a failure partway leaves
    # no partial package behind to block the next run
    parent = target.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        staging.mkdir()  # the umask's mode, as the renamed package keeps it
    except OSError as exc:
        raise ConfigError(_unwritable(target, exc)) from exc
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.rename(staging, target)  # fails if a non-empty directory or a file appeared meanwhile
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ConfigError(_unwritable(target, exc)) from exc
        raise
    return target


def _unwritable(target: Path, exc: OSError) -> str:
    return (
        f"could not write {os.path.abspath(target)!r} ({type(exc).__name__}: {exc.strerror or exc}); "
        "nothing was written: check that its parent directory is writable and has room, or give "
        "another --dir"
    )
