"""Test helpers: put a session into a test client, or read one out, without a handler.

They run the same code as the middleware, so what they set is exactly what a handler
would have set (signed, stored, with the same cookie attributes)::

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="https://testserver") as client:
        await satchel.testing.set_session(client, sessions, Login(user="ada"))
        response = await client.get("/account")
        assert await satchel.testing.get_session(client, sessions, Login) == Login(user="ada")

``client`` is anything with an httpx-style ``cookies`` jar, ``headers`` and ``base_url``
(httpx clients, and test clients built on them).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, overload

from ._codec import store_key
from ._cookies import parse_cookie_header
from ._detached import DetachedSessions
from ._sessions import Key, Sessions

__all__ = ["set_session", "get_session", "clear_session", "store_key", "Clock"]

T = TypeVar("T")


class _Client(Protocol):
    @property
    def cookies(self) -> Any: ...
    @property
    def headers(self) -> Any: ...
    @property
    def base_url(self) -> Any: ...


def _request(client: _Client, sessions: Sessions) -> DetachedSessions:
    import httpx  # only tests need it

    url = client.base_url
    probe = httpx.Request("GET", url)
    client.cookies.set_cookie_header(probe)  # exactly the cookies the client would send
    cookies = parse_cookie_header(
        [probe.headers["cookie"].encode("latin-1")] if "cookie" in probe.headers else []
    )
    headers = [
        (m.name, client.headers[m.name])
        for m in sessions.mappings
        if m.transport == "header" and m.name in client.headers
    ]
    # the server an in-process client reports, so Secure is decided as for its requests
    return sessions.detached(
        cookies=[(name, value) for name, values in cookies.items() for value in values],
        headers=headers,
        scheme=url.scheme,
        server=(url.host, url.port),
    )


async def _apply(client: _Client, request: DetachedSessions) -> None:
    import httpx

    for name, text in await request.commit():
        if name == "set-cookie":
            # through the client's own jar, as if a response had carried it
            response = httpx.Response(
                200, headers=[("set-cookie", text)], request=httpx.Request("GET", client.base_url)
            )
            client.cookies.extract_cookies(response)
        elif text:
            client.headers[name] = text
        else:
            client.headers.pop(name, None)


async def set_session(client: _Client, sessions: Sessions, value: object, *, key: Key | None = None) -> None:
    """Make ``value`` the client's session, as if a handler had called ``set(value)``."""
    request = _request(client, sessions)
    request.set(value, key=key)
    await _apply(client, request)


async def clear_session(client: _Client, sessions: Sessions, key: Key) -> None:
    """End the client's session of ``key``, as if a handler had called ``clear(key)``."""
    request = _request(client, sessions)
    request.clear(key)
    await _apply(client, request)


@overload
async def get_session(client: _Client, sessions: Sessions, key: type[T]) -> T | None: ...
@overload
async def get_session(client: _Client, sessions: Sessions, key: str) -> object | None: ...
async def get_session(client: _Client, sessions: Sessions, key: Key) -> object | None:
    """The client's session of ``key`` (a type or mapping name), or ``None``."""
    return await _request(client, sessions).get(key)


class Clock:
    """Unix time that a test moves by hand: pass it as ``Sessions(clock=...)`` or a
    storage's ``clock=`` to expire sessions without waiting.

    Examples:
        >>> clock = Clock()
        >>> sessions = satchel.Sessions(satchel.cookie(Cart, "CART", ...), clock=clock)
        >>> clock.advance(3600)
    """

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
