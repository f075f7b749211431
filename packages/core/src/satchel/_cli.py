"""The ``satchel`` command: ``plugins``, ``keygen``, ``purge URL``, ``sessions URL``,
``revoke URL``, ``new-plugin NAME``, and the commands plugins add (``satchel_add_commands``).

Plugins are not asked for commands when a core command runs (those that open a storage URL
still load the hook modules to find its scheme); for ``--help``, ``--version`` and any other
command they are, and a plugin's command module is imported only when it runs.
"""

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
from ._plugins import Command, installed_plugins, open_storage, registry
from ._urls import redact_url

__all__ = ["main"]


def _plugins(_: argparse.Namespace) -> int:
    registry().commands(reserved=_CORE)  # so each plugin's commands, or its failure, are listed
    rows = installed_plugins()
    for info in rows:
        print(f"{info.distribution} {info.version}")
        if info.error:
            print(f"  failed to load: {info.error}")
        for label, names in (
            ("schemes", info.schemes),
            ("serializers", info.serializers),
            ("transformers", info.transformers),
            ("commands", info.commands),
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
            from ._types import Purgeable

            if not isinstance(storage, Purgeable):
                print(f"{type(storage).__name__} expires entries by itself; nothing to purge")
                return 0
            # a storage that can tell a missing database from an empty one is asked to:
            # purging nothing, forever, from the wrong working directory must not look fine
            try:
                takes = set(inspect.signature(storage.purge).parameters)
            except (TypeError, ValueError):  # a callable without a signature
                takes = set()
            purge = storage.purge
            removed = await (purge(missing_ok=False) if "missing_ok" in takes else purge())  # type: ignore[call-arg]
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


def _refuse_missing(storage: object, doing: str) -> None:
    """A storage whose local data (its ``path``) is not there has no sessions to list or end,
    and opening it would create an empty one: most likely the path is wrong."""
    import os

    from ._exceptions import ConfigError
    from ._types import capabilities_of

    path = getattr(storage, "path", None)
    if not isinstance(path, (str, os.PathLike)) or not capabilities_of(storage).persistent:
        return
    where = os.fspath(path)
    if os.path.exists(where):
        return
    relative = (
        ""
        if os.path.isabs(where)
        else f"; {where!r} is relative, so it follows the working directory: give the absolute path"
    )
    raise ConfigError(
        f"nothing is stored at {os.path.abspath(where)!r}, so there are no sessions to {doing} "
        f"(this command creates nothing){relative}"
    )


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _sessions(args: argparse.Namespace) -> int:
    from ._codec import unpack_record

    async def run() -> int:
        storage = open_storage(args.url)
        try:
            _refuse_missing(storage, "list")
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
            _refuse_missing(storage, "end")
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

    return Mapping._is_handle(handle)


def _new_plugin(args: argparse.Namespace) -> int:
    from ._template import write_plugin

    target = write_plugin(args.name, args.dir)
    print(f"wrote {target}: its README.md says how to test it and what to replace")
    return 0


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


_CORE = ("plugins", "keygen", "purge", "sessions", "revoke", "new-plugin")


def _version_lines() -> list[str]:
    import importlib.metadata

    lines = [f"satchel {importlib.metadata.version('satchel')}"]
    try:
        plugins = installed_plugins()
    except SatchelError as exc:  # two plugins claiming one name: still say which satchel
        return [*lines, f"satchel: {exc}"]
    lines += [f"{p.distribution} {p.version}" for p in plugins if p.distribution != "satchel"]
    return lines


class _Version(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help=kwargs.get("help"))

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print("\n".join(_version_lines()))
        parser.exit()


def _parser(added: dict[str, Command], broken: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="satchel",
        description="typed, async HTTP sessions",
        epilog="\n".join(broken) or None,
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, max_help_position=30),
    )
    parser.add_argument(
        "--version", action=_Version, help="print the version of satchel and of each installed plugin"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("plugins", help="list installed plugins and what they provide").set_defaults(
        run=_plugins
    )
    keygen = commands.add_parser("keygen", help="print a fresh random key for Sign or Encrypt")
    keygen.add_argument("--bytes", type=int, default=32, help="random bytes in the key (default 32)")
    keygen.set_defaults(run=_keygen)
    purge = commands.add_parser("purge", help="delete expired sessions from a storage")
    purge.add_argument("url", help="storage URL, e.g. sqlite:////var/lib/app/sessions.db")
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
    new = commands.add_parser(
        "new-plugin",
        help="write a storage plugin package to start from (it passes the kit as written)",
        description="Write the package satchel-NAME (module satchel_NAME, URL scheme NAME://): "
        "a storage keeping one file per session in a directory, its plugin hook, a test "
        "module that runs the storage checks, and a README. Replace the storage with yours.",
    )
    new.add_argument("name", help="2-32 lower-case letters and digits, e.g. 'files'")
    new.add_argument("--dir", help="where to write the package (default ./satchel-NAME); must not exist")
    new.set_defaults(run=_new_plugin)
    for name, command in sorted(added.items()):
        commands.add_parser(name, help=f"{command.help} [{command.entry.provider}]", add_help=False)
    return parser


def _added_commands() -> tuple[dict[str, Command], list[str]]:
    """The plugins' commands, and a line for each plugin that failed to load or to add them."""
    try:
        reg = registry()
        added = reg.commands(reserved=_CORE)
    except SatchelError as exc:  # the registry could not load: the core's commands still work
        return {}, [f"no plugin command is available: {exc}"]
    broken = [
        f"{info.distribution} {info.version} failed to load, so its commands (if any) are missing: "
        f"{info.error}"
        for info in reg.plugins.values()
        if info.error
    ]
    return added, broken


def _run_added(command: Command, argv: list[str]) -> int:
    try:
        run = command.entry.resolve()
        return int(run(argv))
    except SatchelError as exc:
        print(f"satchel {command.name}: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``satchel`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    added: dict[str, Command] = {}
    broken: list[str] = []
    first = argv[0] if argv else ""
    if first not in _CORE:  # help, a version, a plugin's command or a typo
        added, broken = _added_commands()
        if first in added:  # its arguments are its own, passed untouched
            return _run_added(added[first], argv[1:])
        if first and not first.startswith("-"):
            for line in broken:
                print(f"satchel: {line}", file=sys.stderr)
    parser = _parser(added, broken)
    args = parser.parse_args(_glue_values(argv))
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
