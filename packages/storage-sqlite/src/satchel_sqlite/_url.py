"""``sqlite://`` URLs and options, checked when the storage is built (no I/O here)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from satchel import ConfigError, redact_url

__all__ = ["Config", "MEMORY", "parse_url", "config"]

MEMORY = ":memory:"
_SYNCHRONOUS = ("normal", "full")
_OPTIONS = ("namespace", "timeout", "synchronous")
_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite://:memory:"
# SQLite counts its busy timeout in milliseconds, in a 32-bit int.
MAX_TIMEOUT = (2**31 - 1) // 1000


@dataclass(frozen=True)
class Config:
    """Where the file is and how to open it."""

    path: str
    namespace: str
    timeout: float
    synchronous: str


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """The file path and the query options of a ``sqlite://`` URL."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep:
        raise ConfigError(f"{redact_url(url)!r} is not a sqlite URL; write {_FORMS}")
    rest, _, query = rest.partition("?")
    if rest in (MEMORY, "/" + MEMORY):
        path = MEMORY
    elif rest.startswith("/"):
        # sqlite:///x.db leaves "/x.db" (relative x.db); sqlite:////x.db leaves "//x.db" (/x.db)
        path = unquote(rest[1:])
    elif rest:
        host = rest.partition("/")[0].rpartition("@")[2]  # not a user name or password
        raise ConfigError(
            f"{redact_url(url)!r} names a host ({host!r}), but SQLite is a local file; write {_FORMS}"
        )
    else:
        path = ""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        # the URL, not the field the parser names: a field can hold a password-like value
        raise ConfigError(f"{redact_url(url)!r} has a malformed query; write ?namespace=name") from None
    return path, dict(pairs)


def config(url: str, options: dict[str, object]) -> Config:
    """The checked configuration for ``url`` and keyword ``options`` (keywords win)."""
    path, query = parse_url(url)
    merged: dict[str, object] = {**query, **options}
    unknown = sorted(set(merged) - set(_OPTIONS))
    if unknown:
        raise ConfigError(
            f"sqlite storage: unknown option(s) {', '.join(unknown)}; the options are {', '.join(_OPTIONS)}"
        )
    return make_config(path, **merged, _source=url)


def make_config(
    path: str,
    namespace: object = None,
    timeout: object = 5.0,
    synchronous: object = "normal",
    _source: str | None = None,
) -> Config:
    """Check the path and the options one by one; each message says which value to change."""
    given = repr(redact_url(_source) if _source is not None else path)
    if not path:
        # sqlite3 would open a private temporary database: nothing would persist
        raise ConfigError(f"sqlite storage: {given} names no file; write {_FORMS}")
    if path.endswith("/"):
        raise ConfigError(
            f"sqlite storage: {given} names a directory; end it with a file name, e.g. sessions.db"
        )
    if namespace is None:
        namespace = ""
    if not isinstance(namespace, str):
        raise ConfigError(f"sqlite storage: namespace must be a string, not {namespace!r}")
    try:
        seconds = float(timeout)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if not (seconds > 0 and math.isfinite(seconds) and seconds <= MAX_TIMEOUT):
        raise ConfigError(
            f"sqlite storage: timeout={timeout!r} is not a positive number of seconds up to "
            f"{MAX_TIMEOUT} (how long a call may wait for another process's lock); e.g. timeout=5"
        )
    mode = str(synchronous).lower()
    if mode not in _SYNCHRONOUS:
        raise ConfigError(
            f"sqlite storage: synchronous={synchronous!r}; use 'normal' (survives a crash "
            "of the process) or 'full' (also survives a power cut, slower)"
        )
    return Config(path=path, namespace=namespace, timeout=seconds, synchronous=mode)
