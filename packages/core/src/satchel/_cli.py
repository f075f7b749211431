"""The ``satchel`` command: ``plugins``, ``keygen``, ``purge URL``, ``conformance URL``."""

from __future__ import annotations

import argparse
import inspect
import secrets
import sys
from collections.abc import Sequence

import anyio

from ._exceptions import SatchelError
from ._plugins import installed_plugins, open_storage

__all__ = ["main"]


def _plugins(_: argparse.Namespace) -> int:
    rows = installed_plugins()
    for info in rows:
        print(f"{info.distribution} {info.version}")
        if info.error:
            print(f"  failed to load: {info.error}")
            continue
        for label, names in (
            ("schemes", info.schemes),
            ("serializers", info.serializers),
            ("transformers", info.transformers),
        ):
            if names:
                print(f"  {label}: {', '.join(sorted(names))}")
    return 1 if any(info.error for info in rows) else 0


def _keygen(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(args.bytes))
    return 0


def _purge(args: argparse.Namespace) -> int:
    async def run() -> int:
        storage = open_storage(args.url)
        try:
            purge = getattr(storage, "purge", None)
            if purge is None:
                print(f"{type(storage).__name__} expires entries by itself; nothing to purge")
                return 0
            # a storage that can tell a missing database from an empty one is asked to:
            # purging nothing, forever, from the wrong working directory must not look fine
            try:
                takes = set(inspect.signature(purge).parameters)
            except (TypeError, ValueError):  # a callable without a signature
                takes = set()
            removed = await (purge(missing_ok=False) if "missing_ok" in takes else purge())
            print(f"removed {removed} expired sessions")
            return 0
        finally:
            await storage.aclose()

    return anyio.run(run)


def _conformance(args: argparse.Namespace) -> int:
    try:
        from satchel_conformance._cli import run
    except ImportError:
        print("the conformance kit is not installed: pip install satchel-conformance", file=sys.stderr)
        return 2
    return int(run([args.url, *args.pytest_args]))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``satchel`` console script."""
    parser = argparse.ArgumentParser(prog="satchel", description="typed, async HTTP sessions")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plugins", help="list installed plugins and what they provide").set_defaults(
        run=_plugins
    )
    keygen = commands.add_parser("keygen", help="print a fresh random key for Sign or Encrypt")
    keygen.add_argument("--bytes", type=int, default=32, help="random bytes in the key (default 32)")
    keygen.set_defaults(run=_keygen)
    purge = commands.add_parser("purge", help="delete expired sessions from a storage")
    purge.add_argument("url", help="storage URL, e.g. sqlite:///sessions.db")
    purge.set_defaults(run=_purge)
    kit = commands.add_parser("conformance", help="run the conformance kit against a storage URL")
    kit.add_argument("url", help="storage URL, e.g. memory:// or redis://127.0.0.1:6379/0")
    kit.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest")
    kit.set_defaults(run=_conformance)
    args = parser.parse_args(argv)
    if args.command == "keygen" and args.bytes < 32:
        parser.error("--bytes must be at least 32")
    try:
        return int(args.run(args))
    except SatchelError as exc:
        print(f"satchel: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
