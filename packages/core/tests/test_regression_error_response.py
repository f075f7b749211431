"""F12: when a handler raises after changing a session, the app's error handler (Starlette's
ServerErrorMiddleware, inside SessionMiddleware) sends a 500 and the middleware commits the
half-done change with it: storage write + Set-Cookie on the 500. Django skips saving on 5xx;
"nothing is half-written" suggests the same here."""

from __future__ import annotations

import httpx
import msgspec
import pytest
import satchel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


class Order(msgspec.Struct):
    paid: bool = False


@pytest.mark.anyio
async def test_crashed_handler_does_not_persist_its_session_change() -> None:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Order, "ORDER", storage=storage))

    async def pay(request: Request) -> PlainTextResponse:
        satchel.sessions_of(request).set(Order(paid=True))
        raise RuntimeError("payment provider timed out")  # after marking the session paid

    app = satchel.SessionMiddleware(Starlette(routes=[Route("/pay", pay)]), sessions)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/pay")
    assert response.status_code == 500
    assert "set-cookie" not in response.headers, "the 500 carries the half-done session"
    assert len(storage) == 0, "the half-done session was written to storage"
