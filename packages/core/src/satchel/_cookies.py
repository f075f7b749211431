"""Cookie transport: reading the Cookie header(s), writing Set-Cookie, attribute rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Literal

from ._exceptions import ConfigError

__all__ = [
    "CookieAttributes",
    "cookie_bytes",
    "cookie_values",
    "parse_cookie_header",
    "secure_by_default",
    "COOKIE_BUDGET",
]

SameSite = Literal["lax", "strict", "none"]

COOKIE_BUDGET = 4096
"""What browsers keep of one cookie: name, value and attributes together (RFC 6265 minimum)."""

# What an in-process test transport puts in the scope's "server"; a real server puts the
# address of its own socket there (an IP address, or a socket path), never a host name.
_TEST_TRANSPORTS = frozenset({"testserver", "testserver.local", "localhost"})
# RFC 6265: a cookie name is a token (visible ASCII but separators); attribute values are
# visible ASCII without ';'
_TOKEN = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('()<>@,;:\\"/[]?={}')
_ATTRIBUTE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {";"}


def secure_by_default(scheme: str, server: Any) -> bool:
    """Whether ``secure=None`` means ``Secure`` for a request with this ASGI scope's
    ``scheme`` and ``server``.

    Always, but for plain ``http`` through an in-process test client (the scope's server
    is ``testserver``, ``testserver.local`` or ``localhost``, names no real server
    reports). Nothing a client or a proxy sends (``Host``, ``X-Forwarded-*``) is looked
    at: behind a proxy that terminates TLS the scope says ``http`` and the server's
    address is often a loopback one, and the cookie must still be ``Secure``. Browsers
    accept ``Secure`` cookies from ``http://localhost`` and ``http://127.0.0.1``, so
    local development works too.
    """
    if scheme not in ("http", "ws"):
        return True
    return not (server and server[0] in _TEST_TRANSPORTS)


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


def cookie_values(headers: Iterable[tuple[bytes, bytes]], name: str) -> list[str]:
    """The values of cookie ``name`` in the request's ``Cookie`` headers, in the order sent:
    ``parse_cookie_header(...).get(name, [])``, without splitting the other cookies out.

    Every value sent under the name is kept, as there (a planted cookie cannot hide the
    real one).
    """
    return [value.decode("latin-1") for value in cookie_bytes(headers, name.encode("latin-1"))]


# what str.strip() removes from a Cookie header read as latin-1: the header stays bytes
_SPACE = bytes(c for c in range(256) if chr(c).isspace())


def cookie_bytes(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """`cookie_values`, in bytes as the headers came (``name`` encoded as latin-1)."""
    found: list[bytes] = []
    # find(), not ``in``: bytes' ``in`` tries its operand as an int first, and formats the
    # TypeError that refuses it, at every test
    for key, raw in headers:
        if key != b"cookie" or raw.find(name) < 0:  # not one, or one of a page with no session yet
            continue
        for chunk in raw.split(b";"):
            if chunk.find(name) < 0:
                continue
            label, sep, value = chunk.partition(b"=")
            if not sep or label.strip(_SPACE) != name:
                continue
            value = value.strip(_SPACE)
            if value[:1] == b'"' and len(value) >= 2 and value[-1] == 0x22:
                value = value[1:-1]
            found.append(value)
    return found


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_http_date(at: float) -> str:
    """``email.utils.formatdate(at, usegmt=True)``, byte for byte (the same conversion,
    the same fields), without importing the ``email`` package on ``import satchel``."""
    t = datetime.fromtimestamp(at, timezone.utc)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


_EPOCH = format_http_date(0)


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
        self._prefix = f"{name}=".encode("latin-1")
        # set_cookie's last ((expiry, max-age, secure), the tail after the value)
        self._last: tuple[tuple[int, int, bool] | None, bytes] = (None, b"")
        self._tail_secure = self._tail + "; Secure"
        # What every Set-Cookie of this mapping adds around the value, at most.
        self.overhead = len(f"{name}=; Max-Age=9999999999; Expires={_EPOCH}")
        self.overhead += len(self._tail) + len("; Secure")

    def wants_secure(self, default: bool) -> bool:
        """``Secure`` or not, given what ``secure=None`` means for this request."""
        return default if self.secure is None else self.secure

    def set_cookie(self, value: str, max_age: float | None, now: float, secure: bool) -> bytes:
        if max_age is None:
            return f"{self.name}={value}{self._tail_secure if secure else self._tail}".encode("latin-1")
        seconds = max(0, int(max_age))
        # everything after the value, the same for every request of the same second: the
        # last one is kept (formatting it cost more than the rest of the response's headers),
        # as one tuple read once, so threads sharing the mapping never mix two of them
        at = (int(now) + seconds, seconds, secure)
        last = self._last
        if last[0] != at:
            tail = self._tail_secure if secure else self._tail
            expires = format_http_date(at[0])
            last = self._last = (at, f"; Max-Age={seconds}; Expires={expires}{tail}".encode("latin-1"))
        return self._prefix + value.encode("latin-1") + last[1]

    def delete_cookie(self, secure: bool) -> bytes:
        tail = self._tail_secure if secure else self._tail
        return f"{self.name}=; Max-Age=0; Expires={_EPOCH}{tail}".encode("latin-1")
