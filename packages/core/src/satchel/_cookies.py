"""Cookie transport: reading the Cookie header(s), writing Set-Cookie, attribute rules."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Literal

from ._exceptions import ConfigError

__all__ = ["CookieAttributes", "parse_cookie_header", "is_local_host", "COOKIE_BUDGET"]

SameSite = Literal["lax", "strict", "none"]

COOKIE_BUDGET = 4096
"""What browsers keep of one cookie: name, value and attributes together (RFC 6265 minimum)."""

_LOCAL_NAMES = ("localhost", "testserver")
# RFC 6265: a cookie name is a token (visible ASCII but separators); attribute values are
# visible ASCII without ';'
_TOKEN = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('()<>@,;:\\"/[]?={}')
_ATTRIBUTE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {";"}


def is_local_host(host: str) -> bool:
    """Whether ``host`` (without port) is this machine, where browsers treat http as secure.

    ``testserver`` is the host name test clients use by default.
    """
    host = host.lower().rstrip(".")
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_cookie_header(values: Iterable[bytes]) -> dict[str, list[str]]:
    """Every cookie in the request, in the order sent, several headers joined.

    A name sent more than once keeps every value (a more specific path comes first),
    so a planted cookie cannot hide the real one.
    """
    jar: dict[str, list[str]] = {}
    for raw in values:
        for chunk in raw.decode("latin-1").split(";"):
            name, sep, value = chunk.partition("=")
            if not sep:
                continue
            name = name.strip()
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if name:
                jar.setdefault(name, []).append(value)
    return jar


@functools.lru_cache(maxsize=16)
def _http_date(at: int) -> str:
    # one date per second and max_age: formatting it costs more than the rest of the header
    return formatdate(at, usegmt=True)


class CookieAttributes:
    """The attributes of one cookie mapping, checked once, at configuration time."""

    def __init__(
        self,
        name: str,
        *,
        path: str,
        domain: str | None,
        secure: bool | None,
        http_only: bool,
        same_site: SameSite | None,
        partitioned: bool,
    ) -> None:
        if not name or not all(c in _TOKEN for c in name):
            raise ConfigError(f"cookie name {name!r} is not a valid token; use letters, digits, - or _")
        if same_site is not None and same_site not in ("lax", "strict", "none"):
            raise ConfigError(f"same_site={same_site!r}; use 'lax', 'strict' or 'none'")
        if not all(c in _ATTRIBUTE for c in path or "") or not all(c in _ATTRIBUTE for c in domain or ""):
            raise ConfigError(f"cookie {name!r}: path and domain must be visible ASCII without ';'")
        needs_secure = []
        if name.startswith("__Host-"):
            needs_secure.append("the __Host- prefix")
            if path != "/":
                raise ConfigError(f"cookie {name!r}: the __Host- prefix requires path='/'")
            if domain is not None:
                raise ConfigError(f"cookie {name!r}: the __Host- prefix forbids a domain; drop domain=")
        elif name.startswith("__Secure-"):
            needs_secure.append("the __Secure- prefix")
        if same_site == "none":
            needs_secure.append("same_site='none'")
        if partitioned:
            needs_secure.append("partitioned=True")
        if needs_secure:
            if secure is False:
                raise ConfigError(
                    f"cookie {name!r}: {' and '.join(needs_secure)} requires secure=True; drop secure=False"
                )
            secure = True
        self.name = name
        self.path = path
        self.domain = domain
        self.secure = secure
        self.http_only = http_only
        self.same_site = same_site
        self.partitioned = partitioned
        tail = [f"Path={path}"]
        if domain:
            tail.append(f"Domain={domain}")
        if http_only:
            tail.append("HttpOnly")
        if same_site:
            tail.append(f"SameSite={same_site.capitalize()}")
        if partitioned:
            tail.append("Partitioned")
        self._tail = "; " + "; ".join(tail)
        self._tail_secure = self._tail + "; Secure"
        # What every Set-Cookie of this mapping adds around the value, at most.
        self.overhead = len(f"{name}=; Max-Age=9999999999; Expires={formatdate(0, usegmt=True)}")
        self.overhead += len(self._tail) + len("; Secure")

    def wants_secure(self, scope_scheme: str, host: Callable[[], str]) -> bool:
        if self.secure is not None:
            return self.secure
        return scope_scheme in ("https", "wss") or not is_local_host(host())

    def set_cookie(self, value: str, max_age: float | None, now: float, secure: bool) -> bytes:
        tail = self._tail_secure if secure else self._tail
        if max_age is None:
            return f"{self.name}={value}{tail}".encode("latin-1")
        seconds = max(0, int(max_age))
        expires = _http_date(int(now) + seconds)
        return f"{self.name}={value}; Max-Age={seconds}; Expires={expires}{tail}".encode("latin-1")

    def delete_cookie(self, secure: bool) -> bytes:
        tail = self._tail_secure if secure else self._tail
        return f"{self.name}=; Max-Age=0; Expires={formatdate(0, usegmt=True)}{tail}".encode("latin-1")
