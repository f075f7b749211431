"""F2: a value changed in place after set() (or after get_or_set() created it) is not
saved: set() serializes eagerly and marks the state dirty, and at response start
_changed() skips re-serializing dirty states, so the snapshot taken at set() is written.
The docs promise in-place changes count; this is the most common get_or_set pattern."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from review_helpers import KEY, request


class Cart(msgspec.Struct):
    items: list[str] = []


def server() -> satchel.Sessions:
    return satchel.Sessions(satchel.cookie(Cart, "CART", storage=satchel.MemoryStorage()))


def stateless() -> satchel.Sessions:
    return satchel.Sessions(satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]))


async def read(s: satchel.RequestSessions) -> Cart | None:
    return await s.get(Cart)


@pytest.mark.anyio
@pytest.mark.parametrize("make", [server, stateless], ids=["server-side", "stateless"])
async def test_get_or_set_then_append_is_saved(make) -> None:  # type: ignore[no-untyped-def]
    sessions = make()
    jar: dict[str, str] = {}

    async def add_apple(s: satchel.RequestSessions) -> None:
        cart = await s.get_or_set(Cart, Cart)
        cart.items.append("apple")

    await request(sessions, jar, add_apple)
    assert await request(sessions, jar, read) == Cart(items=["apple"])


@pytest.mark.anyio
@pytest.mark.parametrize("make", [server, stateless], ids=["server-side", "stateless"])
async def test_set_then_mutate_is_saved(make) -> None:  # type: ignore[no-untyped-def]
    sessions = make()
    jar: dict[str, str] = {}

    async def handler(s: satchel.RequestSessions) -> None:
        cart = Cart()
        s.set(cart)
        cart.items.append("pear")

    await request(sessions, jar, handler)
    assert await request(sessions, jar, read) == Cart(items=["pear"])


@pytest.mark.anyio
async def test_change_in_place_then_regenerate_is_saved() -> None:
    """The login pattern: read, change in place, regenerate. regenerate marks the state dirty,
    so _changed() does not re-serialize and the value as READ is copied to the new ID."""
    sessions = server()
    jar: dict[str, str] = {}

    async def start(s: satchel.RequestSessions) -> None:
        s.set(Cart(items=["a"]))

    await request(sessions, jar, start)

    async def login(s: satchel.RequestSessions) -> None:
        cart = await s.get(Cart)
        assert cart is not None
        cart.items.append("b")
        s.regenerate(Cart)

    await request(sessions, jar, login)
    assert await request(sessions, jar, read) == Cart(items=["a", "b"])
