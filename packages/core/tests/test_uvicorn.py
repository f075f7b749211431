"""The core through a real uvicorn server on a loopback port, with real HTTP and websocket clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import satchel
from core_helpers import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect

KEY = "HmoCscqJM8itvXbaFijGxc-PFL4tCMh3lpG1-uzoUsQ"


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


def shop(*mappings: satchel.Mapping[Any], lifespan_log: list[str] | None = None) -> satchel.SessionMiddleware:
    async def add(request: Request) -> Response:
        s = satchel.sessions_of(request)
        cart = await s.get(Cart) or Cart()
        s.set(Cart(items=[*cart.items, request.query_params["item"]]))
        return JSONResponse(None)

    async def cart(request: Request) -> Response:
        got = await satchel.sessions_of(request).get(Cart)
        return JSONResponse(None if got is None else got.items)

    async def login(request: Request) -> Response:
        s = satchel.sessions_of(request)
        s.set(Login(user=request.query_params["user"]))
        s.regenerate(Login)
        return JSONResponse(None)

    async def whoami(websocket: WebSocket) -> None:
        s = satchel.sessions_of(websocket)
        got = await s.get(Login)
        if websocket.query_params.get("remember"):
            s.set(Cart(items=["from the socket"]))
        await websocket.accept()
        await websocket.send_json(None if got is None else got.user)
        await websocket.close()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if lifespan_log is not None:
            lifespan_log.append("app startup")
        yield
        if lifespan_log is not None:
            lifespan_log.append("app shutdown")

    routes = [
        Route("/add", add),
        Route("/cart", cart),
        Route("/login", login),
        WebSocketRoute("/whoami", whoami),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return satchel.SessionMiddleware(app, satchel.Sessions(*mappings))


# These tests talk plain http to a real server, as a developer does on their machine: the
# cookies say secure=False, or the client would (rightly) keep them to https.
def stateless_cart(secure: bool | None = False) -> satchel.Mapping[Cart]:
    return satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], secure=secure)


def server_side_login(storage: satchel.SessionStorage) -> satchel.Mapping[Login]:
    return satchel.cookie(Login, "SID", storage=storage, transformers=[satchel.Sign(KEY)], secure=False)


def test_cookie_round_trip_over_the_wire() -> None:
    app = shop(stateless_cart(), server_side_login(satchel.MemoryStorage()))
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        first = client.get("/add", params={"item": "apple"})
        assert first.status_code == 200
        (set_cookie,) = first.headers.get_list("set-cookie")
        assert set_cookie.startswith("CART=")
        assert "Secure" not in set_cookie
        assert "HttpOnly" in set_cookie
        assert "SameSite=Lax" in set_cookie
        assert "Cookie" in first.headers["vary"]
        client.get("/add", params={"item": "pear"})
        assert client.get("/cart").json() == ["apple", "pear"]
    # a fresh client has no cookie, so no cart
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        assert client.get("/cart").json() is None


def test_plain_http_behind_a_proxy_still_gets_secure_cookies_whatever_the_host_header() -> None:
    """A proxy that terminates TLS forwards plain http, often from a loopback address and
    with the upstream's address as Host: secure=None still means Secure there.

    A local Host header is no reason to leave Secure out.
    """
    app = shop(stateless_cart(secure=None))
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        for forwarded_host in (host, "localhost", "127.0.0.1:8000", "[::1]:8000"):
            response = client.get("/add", params={"item": "apple"}, headers={"host": forwarded_host})
            assert "; Secure" in response.headers["set-cookie"], forwarded_host


def test_websocket_handshake_reads_the_session_set_over_http() -> None:
    app = shop(stateless_cart(), server_side_login(satchel.MemoryStorage()))
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        client.get("/login", params={"user": "ada"})
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        assert cookie.startswith("SID=")

        with connect(f"ws://{host}/whoami", additional_headers={"Cookie": cookie}) as ws:
            assert msgspec.json.decode(ws.recv()) == "ada"
            assert ws.response is not None
            assert ws.response.headers.get_all("set-cookie") == [], "a session only read is not sent"

        with connect(f"ws://{host}/whoami") as ws:
            assert msgspec.json.decode(ws.recv()) is None

        # a session set before accept travels on the handshake response
        with connect(f"ws://{host}/whoami?remember=1", additional_headers={"Cookie": cookie}) as ws:
            assert msgspec.json.decode(ws.recv()) == "ada"
            assert ws.response is not None
            (set_cookie,) = ws.response.headers.get_all("set-cookie")
        carried = set_cookie.partition(";")[0]
        assert carried.startswith("CART=")
        assert client.get("/cart", headers={"cookie": carried}).json() == ["from the socket"]


class RecordingStorage(satchel.MemoryStorage):
    """A real MemoryStorage that records when it is closed."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name = name
        self.log = log

    async def aclose(self) -> None:
        self.log.append(f"aclose {self.name}")
        await super().aclose()


class Other(msgspec.Struct):
    note: str


def test_lifespan_shutdown_closes_every_storage_once_after_the_app() -> None:
    log: list[str] = []
    shared = RecordingStorage("shared", log)
    own = RecordingStorage("own", log)
    app = shop(
        stateless_cart(),
        server_side_login(shared),
        satchel.header(Other, "X-Other", storage=shared),
        satchel.cookie(dict, "PREFS", storage=own),
        lifespan_log=log,
    )
    with serve(app) as host, httpx.Client(base_url=f"http://{host}") as client:
        client.get("/login", params={"user": "ada"})
        assert log == ["app startup"]
    assert log[:2] == ["app startup", "app shutdown"], "the app's own lifespan still runs, first"
    assert sorted(log[2:]) == ["aclose own", "aclose shared"]
