"""Helpers for the review tests: drive RequestSessions directly with a cookie jar."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import satchel

KEY = "rA8sQ6X3bylCwaXoGhPbetHMg_0skXag3pBX9xoJSC0"


def scope(
    cookies: dict[str, str] | None = None, headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    hs: list[tuple[bytes, bytes]] = [(b"host", b"testserver")]
    if cookies:
        hs.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    hs += headers or []
    return {"type": "http", "scheme": "http", "headers": hs, "path": "/"}


def apply(jar: dict[str, str], headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        if name == b"set-cookie":
            c = SimpleCookie()
            c.load(value.decode())
            for k, morsel in c.items():
                if morsel["max-age"] == "0":
                    jar.pop(k, None)
                else:
                    jar[k] = morsel.value


async def request(sessions: satchel.Sessions, jar: dict[str, str], handler: Any) -> Any:
    rs = satchel.RequestSessions(sessions, scope(jar))
    result = await handler(rs)
    apply(jar, await rs._commit())
    return result
