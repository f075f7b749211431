"""The middleware at the ASGI level: websocket handshakes, lifespan, other scopes, crashed handlers."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import msgspec
import pytest
import satchel
from core_helpers import KEY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("both_paths")]


class Cart(msgspec.Struct):
    items: list[str] = []


class Order(msgspec.Struct):
    paid: bool = False


class ClosingStorage(satchel.MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def sessions_with(storage: satchel.SessionStorage) -> satchel.Sessions:
    return satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
        satchel.header(dict, "X-Api", storage=storage),
    )


async def run(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue = list(incoming)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize("touch", [False, True])
async def test_the_app_gets_a_send_that_is_a_coroutine_function(touch: bool) -> None:
    """asgiref's AsyncToSync (what WsgiToAsgi hands a WSGI app) warns on every request when
    the send it wraps is not a coroutine function."""
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(inspect.iscoroutinefunction(send))
        if touch:
            satchel.sessions_of(scope).set(Cart(items=["a"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = satchel.SessionMiddleware(app, sessions_with(satchel.MemoryStorage()))
    sent = await run(middleware, {"type": "http", "headers": [], "path": "/"}, [])
    assert seen == [True]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert any(k == b"set-cookie" for k, _ in sent[0]["headers"]) is touch


async def test_websocket_accept_carries_the_session_cookie() -> None:
    sessions = sessions_with(satchel.MemoryStorage())

    async def ws_app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        s = satchel.sessions_of(scope)
        cart = await s.get(Cart) or Cart()
        s.set(Cart(items=[*cart.items, "ws"]))
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    app = satchel.SessionMiddleware(ws_app, sessions)
    scope = {"type": "websocket", "scheme": "ws", "headers": [(b"host", b"localhost")], "path": "/"}
    sent = await run(app, scope, [{"type": "websocket.connect"}])
    headers = dict(sent[0]["headers"])
    assert sent[0]["type"] == "websocket.accept"
    cookie = headers[b"set-cookie"].decode()
    assert cookie.startswith("CART=")
    value = cookie.split(";")[0].split("=", 1)[1]
    # the next handshake sees the session
    scope["headers"] = [(b"host", b"localhost"), (b"cookie", f"CART={value}".encode())]
    sent = await run(app, scope, [{"type": "websocket.connect"}])
    second = dict(sent[0]["headers"])[b"set-cookie"].decode().split(";")[0].split("=", 1)[1]
    request = satchel.RequestSessions(
        sessions, {"type": "http", "headers": [(b"cookie", f"CART={second}".encode())]}
    )
    assert await request.get(Cart) == Cart(items=["ws", "ws"])


async def test_sessions_is_an_async_context_manager_that_closes_storages() -> None:
    storage = ClosingStorage()
    async with sessions_with(storage):
        pass
    assert storage.closed == 1


async def test_an_http_response_without_session_use_is_passed_through_unchanged() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": b""})

    wrapped = satchel.SessionMiddleware(app, sessions_with(satchel.MemoryStorage()))
    sent = await run(wrapped, {"type": "http", "headers": [(b"cookie", b"CART=x")]}, [])
    assert sent[0] == {"type": "http.response.start", "status": 204, "headers": [(b"x-a", b"1")]}


async def test_sessions_of_accepts_a_request_object_with_a_scope() -> None:
    class Request:
        def __init__(self, scope: dict[str, Any]) -> None:
            self.scope = scope

    seen: list[satchel.RequestSessions] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(satchel.sessions_of(Request(scope)))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await run(satchel.SessionMiddleware(app, sessions_with(satchel.MemoryStorage())), {"type": "http"}, [])
    assert isinstance(seen[0], satchel.RequestSessions)


async def test_crashed_handler_does_not_persist_its_session_change() -> None:
    """A handler that raises after changing a session gets the app's 500 (from Starlette's
    ServerErrorMiddleware, inside SessionMiddleware) without the half-done change: no storage
    write and no Set-Cookie, as "nothing is half-written" says."""
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
