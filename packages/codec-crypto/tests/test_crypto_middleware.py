"""End to end: encrypted cookies through satchel.SessionMiddleware on a Starlette app."""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Callable
from typing import Any, TypedDict

import attrs
import httpx
import msgspec
import pytest
import satchel
import satchel.testing
from satchel_crypto import Encrypt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

pytestmark = pytest.mark.anyio

SECRET = "sku-7f3a-price-1299"  # what the client must not be able to read
KEY, OLD = os.urandom(32), os.urandom(32)


class StructCart(msgspec.Struct):
    items: list[str] = []


@dataclasses.dataclass
class DataclassCart:
    items: list[str] = dataclasses.field(default_factory=list)


@attrs.define
class AttrsCart:
    items: list[str] = attrs.field(factory=list)


class TypedDictCart(TypedDict):
    items: list[str]


def _items(cart: Any) -> list[str]:
    return list(cart["items"] if isinstance(cart, dict) else cart.items)


KINDS: dict[str, tuple[Any, Callable[[list[str]], Any]]] = {
    "msgspec Struct": (StructCart, lambda items: StructCart(items=items)),
    "dataclass": (DataclassCart, lambda items: DataclassCart(items=items)),
    "attrs class": (AttrsCart, lambda items: AttrsCart(items=items)),
    "TypedDict": (TypedDictCart, lambda items: TypedDictCart(items=items)),
    "dict": (dict, lambda items: {"items": items}),
}


def make_app(
    transformer: satchel.Transformer,
    kind: str = "msgspec Struct",
    name: str = "CART",
) -> satchel.SessionMiddleware:
    type_, build = KINDS[kind]

    async def add(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        cart = await s.get(type_)
        items = [*(_items(cart) if cart is not None else []), request.path_params["item"]]
        s.set(build(items), key=type_)  # a TypedDict value is a plain dict: name its type
        return JSONResponse(items)

    async def show(request: Request) -> JSONResponse:
        cart = await satchel.sessions_of(request).get(type_)
        return JSONResponse(None if cart is None else _items(cart))

    app = Starlette(routes=[Route("/add/{item}", add), Route("/show", show)])
    sessions = satchel.Sessions(satchel.cookie(type_, name, transformers=[transformer]))
    return satchel.SessionMiddleware(app, sessions)


def client(app: Any, cookie: str | None = None, name: str = "CART") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"cookie": f"{name}={cookie}"} if cookie is not None else {},
    )


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("kind", list(KINDS))
async def test_every_session_type_round_trips_and_the_cookie_reveals_nothing(kind: str) -> None:
    app = make_app(Encrypt(KEY), kind)
    async with client(app) as http:
        first = await http.get("/add/apple")
        assert first.json() == ["apple"]
        second = await http.get(f"/add/{SECRET}")
        assert second.json() == ["apple", SECRET]
        assert (await http.get("/show")).json() == ["apple", SECRET]
        cookie = http.cookies["CART"]

    assert "set-cookie" in second.headers
    for needle in (SECRET, "apple", "items"):
        assert needle not in cookie
        assert needle.encode() not in _unb64(cookie)
    for response in (first, second):
        assert SECRET not in str(response.headers.get("set-cookie", ""))


async def test_a_signed_cookie_would_have_shown_the_content() -> None:
    # the contrast that makes the test above mean something: Sign hides nothing
    async with client(make_app(satchel.Sign(KEY))) as http:
        await http.get(f"/add/{SECRET}")
        assert SECRET.encode() in _unb64(http.cookies["CART"])


async def test_a_tampered_cookie_reads_as_no_session() -> None:
    app = make_app(Encrypt(KEY))
    async with client(app) as http:
        await http.get("/add/apple")
        cookie = http.cookies["CART"]
    raw = bytearray(_unb64(cookie))
    raw[len(raw) // 2] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    async with client(app, tampered) as http:
        response = await http.get("/show")
    assert response.status_code == 200
    assert response.json() is None


async def test_a_cookie_made_for_one_mapping_is_refused_by_another() -> None:
    async with client(make_app(Encrypt(KEY), name="CART")) as http:
        await http.get("/add/apple")
        cookie = http.cookies["CART"]
    other = make_app(Encrypt(KEY), name="WISHLIST")
    async with client(other, cookie, name="WISHLIST") as http:
        assert (await http.get("/show")).json() is None


async def test_rotation_end_to_end() -> None:
    # 1. a visitor's cookie made under the old key
    async with client(make_app(Encrypt(OLD))) as http:
        await http.get(f"/add/{SECRET}")
        old_cookie = http.cookies["CART"]

    # 2. the app now encrypts with KEY and still opens OLD: the session survives and the
    #    cookie is re-issued under KEY, even on a request that only reads it
    rotated = make_app(Encrypt(KEY, fallback_keys=[OLD]))
    async with client(rotated, old_cookie) as http:
        response = await http.get("/show")
    assert response.json() == [SECRET]
    assert "set-cookie" in response.headers, "a value under an old key was not re-issued"
    new_cookie = httpx.Cookies(response.cookies)["CART"]
    assert new_cookie != old_cookie

    # a cookie under the newest key is not re-issued on a read
    async with client(rotated, new_cookie) as http:
        response = await http.get("/show")
    assert response.json() == [SECRET]
    assert "set-cookie" not in response.headers

    # 3. the old key retired: the re-issued cookie opens, the old one is refused
    retired = make_app(Encrypt(KEY))
    async with client(retired, new_cookie) as http:
        assert (await http.get("/show")).json() == [SECRET]
    async with client(retired, old_cookie) as http:
        response = await http.get("/show")
    assert response.status_code == 200
    assert response.json() is None


async def test_compressed_sessions_round_trip_through_the_middleware() -> None:
    app = make_app(Encrypt(KEY, compress=True))
    async with client(app) as http:
        for i in range(40):
            await http.get(f"/add/item-number-{i:03d}")
        assert (await http.get("/show")).json() == [f"item-number-{i:03d}" for i in range(40)]
        compressed = http.cookies["CART"]
    async with client(make_app(Encrypt(KEY))) as http:
        for i in range(40):
            await http.get(f"/add/item-number-{i:03d}")
        plain = http.cookies["CART"]
    assert len(compressed) < len(plain) // 2


async def test_a_large_compressible_cart_is_never_silently_lost() -> None:
    """A value past the compression cap travels raw, so when the cookie is then too large
    set() raises SessionTooLarge: the cart is never silently lost, and a smaller one still works."""
    sessions = satchel.Sessions(satchel.cookie(dict, "CART", transformers=[Encrypt(KEY, compress=True)]))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    cart = {"items": [f"apple-{i % 50}" for i in range(9000)]}
    transport = httpx.ASGITransport(satchel.SessionMiddleware(app, sessions))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        with pytest.raises(satchel.SessionTooLarge):
            await satchel.testing.set_session(client, sessions, cart)
        small = {"items": [f"apple-{i % 50}" for i in range(300)]}
        await satchel.testing.set_session(client, sessions, small)
        assert await satchel.testing.get_session(client, sessions, dict) == small
