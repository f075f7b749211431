"""``satchel conformance URL [pytest args]``: the whole storage suite against one URL.

This module is also the package's ``satchel`` entry point: its hook adds the command, and
imports nothing heavy (pytest, hypothesis and the checks load when the command runs).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import satchel

__all__ = ["run", "satchel_add_commands"]

_HYPOTHESIS_HOME = "HYPOTHESIS_STORAGE_DIRECTORY"

USAGE = """\
usage: satchel conformance URL [kit options] [pytest options]

Run every storage conformance check against the storage URL opens through the installed
satchel plugins, e.g. `satchel conformance memory://` or
`satchel conformance redis://localhost:6379/0 --satchel-ttl=1 -x`.
Each check gets its own namespace on that storage. The exit code is 0 only when every
check that applies passed; the summary lists each check, and why any was skipped.
A relative local path that does not exist yet is refused, rather than created under the
working directory and left behind.
"""


@satchel.hookimpl
def satchel_add_commands(commands: satchel.Commands) -> None:
    commands.add(
        "conformance", "satchel_conformance._cli:run", help="run the conformance kit against a storage URL"
    )


class _Options:
    """Records what the kit's ``pytest_addoption`` declares, so ``--help`` lists the same options."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def getgroup(self, *args: object, **kwargs: object) -> _Options:
        return self

    def addoption(self, *names: str, **attrs: Any) -> None:
        self.seen.append((names[0], attrs))


def usage() -> str:
    """The command's help: what it does, the kit's own options, and that the rest goes to pytest."""
    from ._pytest_plugin import pytest_addoption

    options = _Options()
    pytest_addoption(options)  # type: ignore[arg-type]  # duck-typed: getgroup and addoption
    lines = [USAGE, "kit options:"]
    for name, attrs in options.seen:
        if name == "--satchel-storage-url":  # the URL argument itself
            continue
        flag = f"  {name}={attrs.get('metavar') or 'VALUE'}"
        lines.append(f"{flag:<30}{attrs.get('help', '')}")
    lines += [
        "",
        "pytest options: every other argument is passed to pytest as it is (-x, -v, -k EXPR, ...);",
        "run `pytest --help` for the list.",
    ]
    return "\n".join(lines) + "\n"


def run(argv: list[str]) -> int:
    """Run the storage suite against ``argv[0]``, passing the rest to pytest; pytest's exit code."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    url, *extra = argv
    if url.startswith("-") or "://" not in url:
        from satchel import redact_url

        print(f"satchel conformance: {redact_url(url)!r} is not a storage URL\n\n{usage()}", file=sys.stderr)
        return 2

    collect_only = any(a in ("--collect-only", "--co") for a in extra)
    problem = None if collect_only else _probe(url)
    if problem is not None:
        from satchel import redact_url

        # the storage's own message: if it quotes the URL whole, the redacted one instead
        print(f"satchel conformance: {problem.replace(url, redact_url(url))}", file=sys.stderr)
        return 2

    import pytest

    here = Path(__file__).resolve().parent
    args = [
        "-c", str(here / "kit.ini"),
        "--rootdir", str(here),
        "-p", "no:cacheprovider",
        # this package is imported before pytest starts, so its __init__ cannot be rewritten
        "-W", "ignore:Module already imported:pytest.PytestAssertRewriteWarning",
        "--pyargs", "satchel_conformance",
        f"--satchel-storage-url={url}",
        *extra,
    ]  # fmt: skip
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        args += ["-p", "satchel_conformance._pytest_plugin", "-p", "anyio.pytest_plugin"]
    # hypothesis keeps caches under the working directory; the kit leaves none behind
    with tempfile.TemporaryDirectory(prefix="satchel-conformance-") as scratch:
        saved = os.environ.get(_HYPOTHESIS_HOME)
        os.environ[_HYPOTHESIS_HOME] = scratch
        try:
            return int(pytest.main(args))
        finally:
            if saved is None:
                del os.environ[_HYPOTHESIS_HOME]
            else:
                os.environ[_HYPOTHESIS_HOME] = saved


def _nowhere_yet(storage: object) -> str | None:
    """Why the kit refuses to create a storage's local data under the working directory.

    A storage that keeps its data in a local file or folder names it as ``path`` (as
    ``satchel purge`` reads it too). A relative one that does not exist yet would be created
    wherever the command happens to run, filled by the checks, and left behind.
    """
    path = getattr(storage, "path", None)
    if not isinstance(path, (str, os.PathLike)) or not satchel.capabilities_of(storage).persistent:
        return None
    where = os.fspath(path)
    if os.path.isabs(where) or os.path.exists(where):
        return None
    return (
        f"the storage would keep its data at {where!r}, relative to the working directory, "
        f"where nothing is yet: the checks would create {os.path.abspath(where)!r} and leave it "
        "behind. Give an absolute path in the URL (see the storage's docs for how), or create it "
        "first"
    )


def _probe(url: str) -> str | None:
    """Why the kit cannot run against ``url`` (no plugin, a bad URL, a storage that does not
    answer), said once instead of in every check; ``None`` when one read works."""
    import anyio
    import satchel

    step = "opening the storage"

    async def read_once() -> None:
        nonlocal step
        storage = satchel.open_storage(url)
        refused = _nowhere_yet(storage)
        if refused is not None:
            await storage.aclose()
            raise satchel.ConfigError(refused)
        step = "a first read"
        try:
            await storage.read(satchel.token_id())
            step = "closing the storage after a first read"
        finally:
            await storage.aclose()

    try:
        anyio.run(read_once)
    except satchel.ConfigError as exc:
        return str(exc)
    except satchel.StorageError as exc:
        return f"{step} failed, so no check can run: {exc}"
    except Exception as exc:  # a storage that breaks its contract: still one line
        return (
            f"{step} failed with {type(exc).__name__}, not satchel.StorageError (the storage "
            f"breaks its contract there), so no check can run: {exc}"
        )
    return None
