"""F6: on_storage_error="ignore" still turns a read-only request into a failure when the
storage call the core makes on its own for that read fails: the rolling-expiry touch()
(and the invalidate() of an entry found past max_lifetime) raise StorageError at response
start, although the handler only read and asked for outages to read as "no session"."""

from __future__ import annotations

import httpx
import msgspec
import pytest
import satchel
from core_helpers import Clock
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


class Login(msgspec.Struct):
    user: str


class FlakyStorage(satchel.MemoryStorage):
    down = False

    async def touch(self, id: str, ttl: float | None) -> None:
        if self.down:
            raise ConnectionError("storage went away")
        await super().touch(id, ttl)

    async def read(self, id: str) -> bytes | None:
        return await super().read(id)


@pytest.mark.anyio
async def test_read_only_request_survives_a_failed_touch_under_ignore() -> None:
    clock = Clock()
    storage = FlakyStorage(clock=clock)
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=storage, max_age=100, on_storage_error="ignore"),
        clock=clock,
    )

    async def login(request: Request) -> PlainTextResponse:
        satchel.sessions_of(request).set(Login(user="ada"))
        return PlainTextResponse("ok")

    async def page(request: Request) -> PlainTextResponse:
        found = await satchel.sessions_of(request).get(Login)
        return PlainTextResponse(found.user if found else "anonymous")

    app = satchel.SessionMiddleware(Starlette(routes=[Route("/login", login), Route("/", page)]), sessions)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/login")).status_code == 200
        clock.now += 60  # past max_age / 2: this read will touch
        storage.down = True
        response = await client.get("/")
        assert response.status_code == 200, "a read-only page failed under on_storage_error='ignore'"
