"""A value grown in place past what its transport carries, found only at response start,
is treated the same on cookie, header and encrypted mappings: the handler's answer stands
(no error page), the change is not sent, it is logged once, and the last good value stays."""

from __future__ import annotations

import os

import httpx
import msgspec
import pytest
import satchel
from satchel_crypto import Encrypt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SIGN_KEY = "_p6ZHpng5Rwf6pgfRJfaslYjyRlMdfUq0QlDazDhb-s"


class Cart(msgspec.Struct):
    items: list[str] = []


MAPPINGS = {
    "signed cookie": lambda: satchel.cookie(Cart, "CART", transformers=[satchel.Sign(SIGN_KEY)]),
    "signed header": lambda: satchel.header(Cart, "X-Cart", transformers=[satchel.Sign(SIGN_KEY)]),
    "encrypted cookie": lambda: satchel.cookie(Cart, "CART", transformers=[Encrypt(os.urandom(32))]),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(MAPPINGS))
async def test_growth_in_place_past_the_budget_keeps_the_last_good_value(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    mapping = MAPPINGS[kind]()
    sessions = satchel.Sessions(mapping)

    async def add(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        s.set(Cart(items=["apple"]))
        return JSONResponse("ok")

    async def grow(request: Request) -> JSONResponse:
        cart = await satchel.sessions_of(request).get(Cart)
        assert cart is not None
        cart.items.append(os.urandom(6000).hex())  # only seen when the response starts
        return JSONResponse("grown")

    async def show(request: Request) -> JSONResponse:
        cart = await satchel.sessions_of(request).get(Cart)
        return JSONResponse(None if cart is None else cart.items)

    app = satchel.SessionMiddleware(
        Starlette(routes=[Route("/add", add), Route("/grow", grow), Route("/show", show)]), sessions
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="https://testserver") as client:
        first = await client.get("/add")
        if mapping.transport == "header":
            client.headers["X-Cart"] = first.headers["X-Cart"]
        with caplog.at_level("ERROR", logger="satchel"):
            response = await client.get("/grow")
        assert response.status_code == 200
        assert response.json() == "grown"
        assert "set-cookie" not in response.headers
        assert "x-cart" not in response.headers
        assert caplog.text.count("cannot be saved") == 1
        assert (await client.get("/show")).json() == ["apple"]
