"""F11: the docs' own pattern (concepts.md "Saving early") does not work: after
`await s.save()` raises SessionConflict and the handler returns a 409, the middleware
tries the same write again at response start, raises SessionConflict again, and the
client gets a 500 instead of the handler's 409."""

from __future__ import annotations

import httpx
import msgspec
import pytest
import satchel
import satchel.testing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Cart(msgspec.Struct):
    items: list[str] = []


@pytest.mark.anyio
async def test_handler_409_after_save_conflict_reaches_the_client() -> None:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", storage=storage, detect_conflicts=True))

    async def start(request: Request) -> JSONResponse:
        satchel.sessions_of(request).set(Cart(items=["a"]))
        return JSONResponse({})

    async def add(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        cart = await s.get(Cart) or Cart()
        # another tab writes in between
        sid = satchel.testing.store_key(request.cookies["CART"].rpartition(".")[0])
        raw = await storage.read(sid)
        assert raw is not None
        from satchel._codec import pack_record, unpack_record

        rec = unpack_record(raw)
        assert rec is not None
        await storage.write(
            sid, pack_record(rec.name, rec.created, msgspec.msgpack.encode(Cart(items=["x"]))), None
        )
        s.set(Cart(items=[*cart.items, "b"]))
        try:
            await s.save()
        except satchel.SessionConflict:
            return JSONResponse({"error": "the cart changed in another tab; try again"}, status_code=409)
        return JSONResponse({})

    app = satchel.SessionMiddleware(Starlette(routes=[Route("/", start), Route("/add", add)]), sessions)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/")
        response = await client.get("/add")
        assert response.status_code == 409, f"got {response.status_code}"
