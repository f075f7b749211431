"""The ``satchel`` command: ``plugins``, ``keygen``, ``purge URL``, ``sessions URL``,
``revoke URL``, ``conformance URL``."""

from __future__ import annotations

import argparse
import datetime
import inspect
import secrets
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from ._exceptions import SatchelError
from ._plugins import installed_plugins, open_storage
from ._urls import redact_url

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


def _owner_index(storage: object) -> Any:
    from ._exceptions import ConfigError
    from ._types import OwnerIndex

    if not isinstance(storage, OwnerIndex):
        raise ConfigError(
            f"{type(storage).__name__} keeps no owner index, so it cannot list or revoke by owner; "
            "the built-in memory, sqlite, redis and mongodb storages do"
        )
    return storage


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _sessions(args: argparse.Namespace) -> int:
    from ._codec import unpack_record

    async def run() -> int:
        storage = open_storage(args.url)
        try:
            entries = await _owner_index(storage).list_owned(args.owner)
        finally:
            await storage.aclose()
        shown = 0
        for entry in sorted(entries, key=lambda e: e.id):
            record = unpack_record(entry.data)
            if record is None or record.is_tombstone or record.owner != args.owner:
                continue
            shown += 1
            print(
                f"{entry.id}  {record.name}  created {_when(record.created)}  expires {_when(entry.expires)}"
            )
            for name, value in sorted(record.attributes.items()):
                print(f"    {name}: {value}")
        print(f"{shown} live session(s) of {args.owner!r}")
        return 0

    return anyio.run(run)


def _revoke(args: argparse.Namespace) -> int:
    from ._mapping import cookie
    from ._owners import revoke_session

    async def run() -> int:
        storage = open_storage(args.url)
        try:
            index = _owner_index(storage)
            if args.handle is None:
                ended = await index.invalidate_owned(args.owner)
            else:
                raw = await storage.read(args.handle) if _is_handle(args.handle) else None
                from ._codec import unpack_record

                record = unpack_record(raw) if raw is not None else None
                ended = 0
                if record is not None and not record.is_tombstone:
                    # the record's own mapping name, so the end is the request path's own
                    m = cookie(dict, record.name, storage=storage, owner=lambda value: args.owner)
                    ended = int(await revoke_session(m, args.owner, args.handle))
        finally:
            await storage.aclose()
        print(f"ended {ended} session(s) of {args.owner!r}")
        return 0

    return anyio.run(run)


def _is_handle(handle: str) -> bool:
    from ._mapping import Mapping

    return Mapping.is_handle(handle)


def _conformance(args: argparse.Namespace) -> int:
    try:
        from satchel_conformance._cli import run
    except ImportError:
        print("the conformance kit is not installed: pip install satchel-conformance", file=sys.stderr)
        return 2
    return int(run([args.url, *args.pytest_args]))


_VALUED = ("--owner", "--handle")


def _glue_values(argv: Sequence[str]) -> list[str]:
    """``--handle -x`` as ``--handle=-x``: a handle (base64url) or an owner may start with
    ``-``, which argparse would otherwise take for an option and refuse."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--":
            out.append(arg)
            out.extend(it)
            break
        if arg in _VALUED:
            value = next(it, None)
            out.append(arg if value is None else f"{arg}={value}")
        else:
            out.append(arg)
    return out


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
    listing = commands.add_parser("sessions", help="list the live sessions of one owner")
    listing.add_argument("url", help="storage URL, e.g. redis://127.0.0.1:6379/0")
    listing.add_argument("--owner", required=True, help="what the mapping's owner= gives, e.g. a user name")
    listing.set_defaults(run=_sessions)
    revoke = commands.add_parser("revoke", help="end every session of one owner, or one by its handle")
    revoke.add_argument("url", help="storage URL, e.g. redis://127.0.0.1:6379/0")
    revoke.add_argument("--owner", required=True, help="what the mapping's owner= gives, e.g. a user name")
    revoke.add_argument("--handle", help="end only this session (a handle that `satchel sessions` lists)")
    revoke.set_defaults(run=_revoke)
    kit = commands.add_parser("conformance", help="run the conformance kit against a storage URL")
    kit.add_argument("url", help="storage URL, e.g. memory:// or redis://127.0.0.1:6379/0")
    kit.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed to pytest")
    kit.set_defaults(run=_conformance)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["conformance"]:  # the kit's own arguments pass through untouched
        argv = _glue_values(argv)
    args = parser.parse_args(argv)
    if args.command == "keygen" and args.bytes < 32:
        parser.error("--bytes must be at least 32")
    try:
        return int(args.run(args))
    except SatchelError as exc:
        message = str(exc)
        url = getattr(args, "url", None)
        if url:  # a plugin's message that quotes the URL whole gets the redacted one
            message = message.replace(url, redact_url(url))
        print(f"satchel: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
