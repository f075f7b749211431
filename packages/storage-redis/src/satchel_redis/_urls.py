"""Storage URLs: what satchel reads from them, and what it hands on to redis-py.

``redis://``, ``rediss://`` and ``unix://`` URLs are redis-py's own; satchel only takes
its options out of the query. ``redis+sentinel://`` and ``redis+cluster://`` name
several hosts, which redis-py's URL parser does not do, so they are read here::

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?options]
    redis+cluster://[[user]:password@]host:port[,host:port...][/][?options]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from satchel import ConfigError, redact_url

__all__ = ["OWN_OPTIONS", "Options", "split_options", "Hosts", "parse_hosts"]

# Options satchel reads itself, with the type of each number; everything else in a
# query goes to redis-py.
_NUMBERS: dict[str, type[float] | type[int]] = {
    "timeout": float,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "max_connections": int,
}
OWN_OPTIONS = ("namespace", *_NUMBERS)


@dataclass
class Options:
    """The storage's own options, from keyword arguments and the URL's query."""

    namespace: str | None = None
    timeout: float = 5.0
    socket_timeout: float | None = None
    socket_connect_timeout: float | None = None
    max_connections: int | None = None
    retry: Any = None
    client: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def client_kwargs(self) -> dict[str, Any]:
        """What every redis-py client gets: the socket timeouts, the pool size when
        given, and the unknown options.

        No socket timeout unless one is given: the operation's deadline (see
        ``_RedisBase._run``) bounds every read and write already, and with one redis-py
        sends each command through ``asyncio.wait_for`` (a task and an event-loop turn
        more per command). The connect timeout (the operation timeout unless given) stays:
        it is paid once per connection, not per command.
        """
        kwargs: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout or self.timeout,
        }
        if self.max_connections is not None:
            kwargs["max_connections"] = self.max_connections
        return {**kwargs, **self.extra}


def _number(name: str, value: Any, kind: type[float] | type[int]) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a number; write e.g. {name}=2") from None
    # NaN would pass "<= 0" and disable the deadline; infinity is no deadline either
    if not (number > 0 and math.isfinite(number)):
        raise ConfigError(f"{name}={value!r} must be a positive, finite number")
    return number


def _check_path(scheme: str, path: str) -> None:
    """Refuse a path redis-py would ignore or misread (it falls back to db 0 silently)."""
    segments = [p for p in path.split("/") if p]
    shape = "a database number"
    if scheme in ("redis", "rediss"):
        ok = len(segments) <= 1 and all(p.isascii() and p.isdigit() for p in segments)
        example = f"{scheme}://127.0.0.1:6379/0"
    elif scheme == "redis+sentinel":
        ok = len(segments) <= 2 and all(p.isascii() and p.isdigit() for p in segments[1:])
        shape = "a service name and a database number"
        example = "redis+sentinel://127.0.0.1:26379/mymaster/0"
    elif scheme == "redis+cluster":
        # a cluster has only database 0
        ok = segments in ([], ["0"])
        shape = "database 0 or nothing"
        example = "redis+cluster://127.0.0.1:7000"
    else:
        return
    if not ok:
        # the message names the path only: the URL may hold a password
        raise ConfigError(f"the path {path!r} of a {scheme}:// URL is not {shape}; write e.g. {example}")


def _refuse_misplaced_at(url: str) -> None:
    """Refuse an '@' after the hosts: a user name or password with an unescaped '/', '?'
    or '#' ends the hosts early, and the rest of it would be read as a path, a host or an
    option name, and named in messages."""
    rest = url.partition("://")[2]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    if end == 0:  # unix:///path/to/socket: no hosts, and a path may hold an '@'
        return
    path, _, query = rest[end:].partition("?")
    if "@" in path or any("@" in item.partition("=")[0] for item in re.split("[&;]", query)):
        raise ConfigError(
            f"{redact_url(url)!r} has an '@' after its hosts; percent-encode any '/', '?', '#' "
            "or '@' in the user name and password, e.g. with urllib.parse.quote(password, safe='')"
        )


def split_options(url: str, options: dict[str, Any]) -> tuple[str, Options]:
    """``url`` without satchel's query options, and those options merged with ``options``.

    Keyword arguments win over the query. Unknown keyword arguments are passed to the
    redis-py client as they are. A URL that cannot be read, or whose path is not a
    database number, is a ``ConfigError``; so is one with an '@' after its hosts (see
    `_refuse_misplaced_at`). Messages name the URL only through ``satchel.redact_url``.
    """
    _refuse_misplaced_at(url)
    # the query is cut off by hand: urlsplit refuses some multi-host netlocs
    base, _, query_string = url.partition("?")
    scheme, _, rest_of_url = base.partition("://")
    scheme = scheme.lower()
    if scheme in ("redis", "rediss"):
        try:
            urlsplit(base).port  # noqa: B018 - reading it checks that the port is a number
        except ValueError as exc:
            raise ConfigError(f"cannot read the {scheme}:// URL: {exc}") from exc
    _check_path(scheme, rest_of_url.partition("/")[2])
    query = parse_qsl(query_string, keep_blank_values=True)
    ours = {k: v for k, v in query if k in OWN_OPTIONS}
    rest = [(k, v) for k, v in query if k not in OWN_OPTIONS]
    merged: dict[str, Any] = {**ours, **options}
    found = Options(
        namespace=merged.pop("namespace", None) or None,
        retry=merged.pop("retry", None),
        client=merged.pop("client", None),
    )
    for name, kind in _NUMBERS.items():
        value = merged.pop(name, None)
        if value is not None:
            setattr(found, name, _number(name, value, kind))
    found.extra = merged
    return f"{base}?{urlencode(rest)}" if rest else base, found


@dataclass
class Hosts:
    """A multi-host URL: the hosts, credentials and path segments."""

    hosts: list[tuple[str, int]]
    username: str | None
    password: str | None
    path: list[str]

    def credentials(self) -> dict[str, str]:
        """The username and password the URL gives, for the client's keyword arguments."""
        given = {"username": self.username, "password": self.password}
        return {k: v for k, v in given.items() if v is not None}


def parse_hosts(url: str, *, default_port: int) -> Hosts:
    """Read ``scheme://[user:pass@]h1:p1,h2:p2/path``; after `split_options` has taken
    satchel's own options, any query left is refused: these clients are not built from a
    URL, so redis-py's options go as keyword arguments."""
    scheme, sep, rest = url.partition("://")
    netloc, _, tail = rest.partition("/")
    path_part, _, query = tail.partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    hosts: list[tuple[str, int]] = []
    for item in filter(None, netloc.split(",")):
        if item.startswith("["):  # IPv6 literal
            host, _, port = item[1:].partition("]")
            port = port.lstrip(":")
        else:
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            hosts.append((host or "localhost", int(port) if port else default_port))
        except ValueError:
            raise ConfigError(f"{item!r} in {scheme}:// URL is not host:port") from None
    if not sep or not hosts:
        raise ConfigError(
            f"{scheme}:// URL needs at least one host, e.g. {scheme}://127.0.0.1:{default_port}"
        )
    if query:
        names = ", ".join(sorted(dict(parse_qsl(query, keep_blank_values=True))))
        raise ConfigError(
            f"{scheme}:// URLs take only {', '.join(OWN_OPTIONS)} in the query; "
            f"pass {names} as keyword arguments instead"
        )
    return Hosts(
        hosts=hosts,
        username=username,
        password=password,
        path=[unquote(p) for p in path_part.split("/") if p],
    )
