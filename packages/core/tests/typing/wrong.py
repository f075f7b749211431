"""Usages that ``mypy --strict`` must refuse: proof that the public types bite.

Checked by ``test_typing.py``; never run. Every line ending in ``# E: <code>`` must get
exactly that error from mypy, and no other line may get one. Nothing here uses
``type: ignore``.
"""

from __future__ import annotations

import msgspec
import satchel
from starlette.requests import Request

SECRET = "a-secret-of-at-least-thirty-two-bytes"


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


class HalfStorage:
    """Forgets touch() and aclose(): not a SessionStorage."""

    async def read(self, id: str) -> bytes | None:
        return None

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        pass

    async def invalidate(self, id: str) -> None:
        pass


class TextTransformer:
    """Works on str, not bytes: not a Transformer."""

    def encode(self, data: str) -> str:
        return data

    def decode(self, data: str) -> str | None:
        return data


class TwoArgDecode:
    """decode() takes one argument, the bytes; this one wants two."""

    def encode(self, data: bytes) -> bytes:
        return data

    def decode(self, data: bytes, strict: bool) -> bytes:
        return data


def numeric_id() -> int:
    return 42


storage: satchel.SessionStorage = HalfStorage()  # E: assignment
transformer: satchel.Transformer = TextTransformer()  # E: assignment
two_args: satchel.Transformer = TwoArgDecode()  # E: assignment
identity: satchel.IdentityGenerator = numeric_id  # E: assignment
serializer: satchel.Serializer[Login] = satchel.JSONSerializer(Cart)  # E: arg-type

satchel.cookie(Cart, "CART", max_age="1h", transformers=[satchel.Sign(SECRET)])  # E: arg-type
satchel.cookie(Cart, "CART", same_site="sometimes", transformers=[satchel.Sign(SECRET)])  # E: arg-type
satchel.cookie(Cart, "CART", transformers=satchel.Sign(SECRET))  # E: arg-type
satchel.cookie(Login, "SID", storage=HalfStorage())  # E: arg-type
satchel.header(Cart, "X-Cart", path="/", transformers=[satchel.Sign(SECRET)])  # E: call-arg
satchel.header(Login, "X-Sid", storage="memory://", on_storage_error="retry")  # E: arg-type
satchel.Sessions(Cart)  # E: arg-type
satchel.Sign(SECRET, [SECRET])  # E: call-arg


async def view(request: Request) -> None:
    s = satchel.sessions_of(request)
    login: Login = await s.get(Login)  # E: assignment
    cart: Cart | None = await s.get(Login)  # E: arg-type
    print((await s.get(Cart)).items)  # E: union-attr
    named: Cart | None = await s.get("CART")  # E: assignment
    wrong_factory = await s.get_or_set(Login, lambda: Cart())  # E: arg-type, return-value
    s.set(Login(user=1))  # E: arg-type
    s.clear()  # E: call-arg
    s.regenerate(Login, Cart)  # E: call-arg
    forgot_await = s.get(Cart).items  # E: attr-defined
    print(login, cart, named, wrong_factory, forgot_await)


def length(login: Login) -> int:
    return len(login.user)


satchel.cookie(Login, "SID", storage="memory://", owner=length)  # E: arg-type
satchel.cookie(Login, "SID", storage="memory://", owner="user")  # E: arg-type


async def account(request: Request) -> None:
    s = satchel.sessions_of(request)
    s.set(Login(user="ada"), attributes={"visits": 3})  # E: dict-item
    await s.revoke_owner(Login, True)  # E: call-arg
