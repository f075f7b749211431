"""Storage URLs: what satchel reads from them, and what it hands on to redis-py.

``redis://``, ``rediss://`` and ``unix://`` URLs are redis-py's own; satchel only takes
its options out of the query. ``redis+sentinel://`` and ``redis+cluster://`` name
several hosts, which redis-py's URL parser does not do, so they are read here::

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?options]
    redis+cluster://[[user]:password@]host:port[,host:port...][/][?options]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from satchel import ConfigError

__all__ = ["Options", "split_options", "Hosts", "parse_hosts"]

# Options satchel reads itself; everything else in a query goes to redis-py.
_FLOATS = ("timeout", "socket_timeout", "socket_connect_timeout")
_INTS = ("max_connections",)
_OURS = ("namespace", *_FLOATS, *_INTS)


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
        """What every redis-py client gets: socket timeouts (each defaulting to the
        operation timeout), the pool size when given, and the unknown options."""
        kwargs: dict[str, Any] = {
            "socket_timeout": self.socket_timeout or self.timeout,
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
    if number <= 0:
        raise ConfigError(f"{name}={value!r} must be positive")
    return number


def split_options(url: str, options: dict[str, Any]) -> tuple[str, Options]:
    """``url`` without satchel's query options, and those options merged with ``options``.

    Keyword arguments win over the query. Unknown keyword arguments are passed to the
    redis-py client as they are.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OURS}
    rest = [(k, v) for k, v in query if k not in _OURS]
    merged: dict[str, Any] = {**ours, **options}
    found = Options(
        namespace=merged.pop("namespace", None) or None,
        retry=merged.pop("retry", None),
        client=merged.pop("client", None),
    )
    for name in _FLOATS:
        if merged.get(name) is not None:
            setattr(found, name, _number(name, merged.pop(name), float))
        merged.pop(name, None)
    for name in _INTS:
        if merged.get(name) is not None:
            setattr(found, name, _number(name, merged.pop(name), int))
        merged.pop(name, None)
    found.extra = merged
    stripped = urlunsplit(parts._replace(query=urlencode(rest)))
    return stripped, found


@dataclass
class Hosts:
    """A multi-host URL: the hosts, credentials and path segments."""

    hosts: list[tuple[str, int]]
    username: str | None
    password: str | None
    path: list[str]
    query: dict[str, str]


def parse_hosts(url: str, *, default_port: int) -> Hosts:
    """Read ``scheme://[user:pass@]h1:p1,h2:p2/path?query``."""
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
    return Hosts(
        hosts=hosts,
        username=username,
        password=password,
        path=[unquote(p) for p in path_part.split("/") if p],
        query=dict(parse_qsl(query, keep_blank_values=True)),
    )
