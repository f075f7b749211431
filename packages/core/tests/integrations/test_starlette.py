"""satchel.integrations.starlette: the app stays a Starlette app, its middleware sees the
sessions, and the lifespan closes the storages."""

import warnings

import msgspec
import satchel
from satchel.integrations.starlette import install
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

KEY = "_p6ZHpng5Rwf6pgfRJfaslYjyRlMdfUq0QlDazDhb-s"


class Login(msgspec.Struct):
    user: str


class RecordingStorage(satchel.MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1
        await super().aclose()


class SignInEveryone:
    """An app's own middleware that uses the sessions."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            satchel.sessions_of(scope).set(Login(user="guest"))
        await self.app(scope, receive, send)


async def me(request: Request) -> JSONResponse:
    login = await satchel.sessions_of(request).get(Login)
    return JSONResponse(None if login is None else login.user)


def test_the_apps_own_middleware_sees_the_sessions_and_shutdown_closes_the_storages() -> None:
    storage = RecordingStorage()
    app = Starlette(routes=[Route("/me", me)], middleware=[Middleware(SignInEveryone)])
    install(
        app, satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, transformers=[satchel.Sign(KEY)]))
    )
    with TestClient(app) as client:
        assert client.get("/me").json() == "guest"
        assert "SID" in client.cookies
        assert storage.closed == 0
    assert storage.closed == 1
