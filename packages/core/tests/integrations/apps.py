"""The same small shop, wired through each framework's integration, and a client for each
that speaks through that framework's own test client.

Every app answers:

- ``GET /add?item=x``: adds to the stateless, signed ``Cart``; returns the items;
- ``GET /cart``: the items, or ``null``;
- ``GET /login?user=ada``: sets the server-side ``Login`` (SQLite);
- ``GET /me``: the user, or ``null``;
- ``GET /logout``: clears the ``Login``;
- ``GET /regenerate``: gives the ``Login`` a new ID;
- websocket ``/ws``: sends the user, or ``null``, and closes.
"""

import contextlib
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import satchel

KEY = "_p6ZHpng5Rwf6pgfRJfaslYjyRlMdfUq0QlDazDhb-s"


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


def shop_sessions(tmp_path: Path) -> satchel.Sessions:
    return satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
        satchel.cookie(
            Login, "SID", storage=f"sqlite:///{tmp_path / 'sessions.db'}", transformers=[satchel.Sign(KEY)]
        ),
    )


class Client:
    """What the behaviour suite needs of a test client."""

    async def get(self, path: str, *, cookie: str | None = None) -> Any:
        """The JSON body of ``GET path``; with ``cookie``, that Cookie header instead of the jar."""
        raise NotImplementedError

    async def ws(self, path: str) -> Any:
        """The first JSON message of the websocket at ``path``, the jar's cookies sent."""
        raise NotImplementedError

    def cookie(self, name: str) -> str | None:
        raise NotImplementedError


# -- FastAPI -----------------------------------------------------------------------------


def fastapi_app(sessions: satchel.Sessions) -> Any:
    from fastapi import FastAPI, WebSocket
    from satchel.integrations.fastapi import OptionalSession, Session, SessionsDep, install

    api = FastAPI()

    @api.get("/add")
    async def add(item: str, s: SessionsDep, cart: OptionalSession[Cart]) -> list[str]:
        items = [*(cart or Cart()).items, item]
        s.set(Cart(items=items))
        return items

    @api.get("/cart")
    async def show(cart: OptionalSession[Cart]) -> list[str] | None:
        return None if cart is None else cart.items

    @api.get("/login")
    async def login(user: str, s: SessionsDep) -> None:
        s.set(Login(user=user))

    @api.get("/me")
    async def me(login: OptionalSession[Login]) -> str | None:
        return None if login is None else login.user

    @api.get("/logout")
    async def logout(login: Session[Login], s: SessionsDep) -> None:
        s.clear(Login)

    @api.get("/regenerate")
    async def regenerate(login: Session[Login], s: SessionsDep) -> None:
        s.regenerate(Login)

    @api.websocket("/ws")
    async def ws(websocket: WebSocket, login: OptionalSession[Login]) -> None:
        await websocket.accept()
        await websocket.send_json(None if login is None else login.user)
        await websocket.close()

    install(api, sessions)
    return api


# -- Starlette ---------------------------------------------------------------------------


def starlette_app(sessions: satchel.Sessions) -> Any:
    from satchel.integrations.starlette import install
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def add(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        items = [*(await s.get(Cart) or Cart()).items, request.query_params["item"]]
        s.set(Cart(items=items))
        return JSONResponse(items)

    async def show(request: Request) -> JSONResponse:
        cart = await satchel.sessions_of(request).get(Cart)
        return JSONResponse(None if cart is None else cart.items)

    async def login(request: Request) -> JSONResponse:
        satchel.sessions_of(request).set(Login(user=request.query_params["user"]))
        return JSONResponse(None)

    async def me(request: Request) -> JSONResponse:
        login = await satchel.sessions_of(request).get(Login)
        return JSONResponse(None if login is None else login.user)

    async def logout(request: Request) -> JSONResponse:
        satchel.sessions_of(request).clear(Login)
        return JSONResponse(None)

    async def regenerate(request: Request) -> JSONResponse:
        satchel.sessions_of(request).regenerate(Login)
        return JSONResponse(None)

    async def ws(websocket: WebSocket) -> None:
        login = await satchel.sessions_of(websocket).get(Login)
        await websocket.accept()
        await websocket.send_json(None if login is None else login.user)
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/add", add),
            Route("/cart", show),
            Route("/login", login),
            Route("/me", me),
            Route("/logout", logout),
            Route("/regenerate", regenerate),
            WebSocketRoute("/ws", ws),
        ]
    )
    install(app, sessions)
    return app


class StarletteClient(Client):
    """Starlette's TestClient (FastAPI's is the same), entered: the lifespan runs."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def get(self, path: str, *, cookie: str | None = None) -> Any:
        headers = {} if cookie is None else {"cookie": cookie}  # a Cookie header wins over the jar
        response = self.client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def ws(self, path: str) -> Any:
        with self.client.websocket_connect(path) as socket:
            return socket.receive_json()

    def cookie(self, name: str) -> str | None:
        value: str | None = self.client.cookies.get(name)
        return value


@contextlib.asynccontextmanager
async def starlette_client(app: Any) -> AsyncIterator[Client]:
    with warnings.catch_warnings():
        # this starlette asks for its own httpx fork; the httpx installed works the same
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    with TestClient(app) as client:
        yield StarletteClient(client)


# -- Litestar ----------------------------------------------------------------------------


def litestar_app(sessions: satchel.Sessions) -> Any:
    from litestar import Litestar, get, websocket
    from litestar.connection import WebSocket
    from litestar.di import NamedDependency
    from litestar.params import FromQuery

    Sessions = NamedDependency[satchel.RequestSessions]
    from satchel.integrations.litestar import SatchelPlugin, session

    @get("/add")
    async def add(
        item: FromQuery[str],
        sessions: Sessions,
        cart: NamedDependency[Cart | None],
    ) -> list[str]:
        items = [*(cart or Cart()).items, item]
        sessions.set(Cart(items=items))
        return items

    @get("/cart")
    async def show(cart: NamedDependency[Cart | None]) -> list[str] | None:
        return None if cart is None else cart.items

    @get("/login")
    async def login(user: FromQuery[str], sessions: Sessions) -> None:
        sessions.set(Login(user=user))

    @get("/me")
    async def me(maybe_login: NamedDependency[Login | None]) -> str | None:
        return None if maybe_login is None else maybe_login.user

    @get("/logout")
    async def logout(login: NamedDependency[Login], sessions: Sessions) -> None:
        sessions.clear(Login)

    @get("/regenerate")
    async def regenerate(login: NamedDependency[Login], sessions: Sessions) -> None:
        sessions.regenerate(Login)

    @websocket("/ws")
    async def ws(socket: WebSocket[Any, Any, Any], maybe_login: NamedDependency[Login | None]) -> None:
        await socket.accept()
        await socket.send_json(None if maybe_login is None else maybe_login.user)
        await socket.close()

    return Litestar(
        [add, show, login, me, logout, regenerate, ws],
        plugins=[SatchelPlugin(sessions)],
        dependencies={
            "cart": session(Cart, required=False),
            "login": session(Login),
            "maybe_login": session(Login, required=False),
        },
    )


class LitestarClient(StarletteClient):
    async def get(self, path: str, *, cookie: str | None = None) -> Any:
        headers = {} if cookie is None else {"cookie": cookie}
        response = self.client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        # Litestar sends None as no body and a str as it is, even when it says JSON
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    async def ws(self, path: str) -> Any:
        # Litestar's test client connects to ws:// whatever the base URL, so its jar keeps
        # the Secure cookies back: send them as a browser on https would
        cookie = "; ".join(f"{name}={value}" for name, value in self.client.cookies.items())
        with self.client.websocket_connect(path, headers={"cookie": cookie}) as socket:
            return socket.receive_json()


@contextlib.asynccontextmanager
async def litestar_client(app: Any) -> AsyncIterator[Client]:
    from litestar.testing import TestClient

    # testserver.local, the client's default host, is a host like any other: the cookies
    # are Secure, so the client talks https
    with TestClient(app, base_url="https://testserver.local") as client:
        yield LitestarClient(client)


# -- Quart -------------------------------------------------------------------------------


def quart_app(sessions: satchel.Sessions) -> Any:
    from quart import Quart, request, websocket
    from satchel.integrations.quart import current_sessions, install

    app = Quart(__name__)

    @app.get("/add")
    async def add() -> Any:
        s = current_sessions()
        items = [*(await s.get(Cart) or Cart()).items, request.args["item"]]
        s.set(Cart(items=items))
        return items

    @app.get("/cart")
    async def show() -> Any:
        cart = await current_sessions().get(Cart)
        return {"value": None if cart is None else cart.items}

    @app.get("/login")
    async def login() -> Any:
        current_sessions().set(Login(user=request.args["user"]))
        return {"value": None}

    @app.get("/me")
    async def me() -> Any:
        login = await current_sessions().get(Login)
        return {"value": None if login is None else login.user}

    @app.get("/logout")
    async def logout() -> Any:
        current_sessions().clear(Login)
        return {"value": None}

    @app.get("/regenerate")
    async def regenerate() -> Any:
        current_sessions().regenerate(Login)
        return {"value": None}

    @app.websocket("/ws")
    async def ws() -> None:
        login = await current_sessions().get(Login)
        await websocket.accept()
        await websocket.send_json(None if login is None else login.user)

    install(app, sessions)
    return app


class QuartClient(Client):
    def __init__(self, client: Any) -> None:
        self.client = client

    async def get(self, path: str, *, cookie: str | None = None) -> Any:
        jar = self.client.cookie_jar
        if cookie is not None:
            self.client.cookie_jar = None  # or Quart's client adds the jar's Cookie header too
        try:
            response = await self.client.get(path, headers={} if cookie is None else {"cookie": cookie})
        finally:
            self.client.cookie_jar = jar
        assert response.status_code == 200, await response.get_data(as_text=True)
        body = await response.get_json()
        # Quart answers a list as JSON but None only wrapped: unwrap what the handlers wrapped
        return body["value"] if isinstance(body, dict) else body

    async def ws(self, path: str) -> Any:
        async with self.client.websocket(path) as socket:
            return await socket.receive_json()

    def cookie(self, name: str) -> str | None:
        for item in self.client.cookie_jar:
            if item.name == name:
                value: str | None = item.value
                return value
        return None


@contextlib.asynccontextmanager
async def quart_client(app: Any) -> AsyncIterator[Client]:
    async with app.test_app() as running:
        yield QuartClient(running.test_client())


FRAMEWORKS: dict[str, tuple[Callable[[satchel.Sessions], Any], Callable[[Any], Any]]] = {
    "fastapi": (fastapi_app, starlette_client),
    "starlette": (starlette_app, starlette_client),
    "litestar": (litestar_app, litestar_client),
    "quart": (quart_app, quart_client),
}
