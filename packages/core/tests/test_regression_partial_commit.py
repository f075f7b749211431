"""F13: with two server-side mappings, a storage failure while committing the second one
happens after the first one's regenerate already wrote its new ID and invalidated the old
one; the response fails, so the client never receives the new ID and its still-held old ID
is dead: the visitor is logged out by an unrelated storage failure ("nothing is
half-written" does not hold across mappings)."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from review_helpers import apply, scope


class Login(msgspec.Struct):
    user: str


class Cart(msgspec.Struct):
    items: list[str] = []


class Down(satchel.MemoryStorage):
    down = False

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        if self.down:
            raise ConnectionError("cart store is down")
        await super().write(id, data, ttl)


@pytest.mark.anyio
async def test_failed_commit_of_one_mapping_keeps_the_other_session() -> None:
    logins = satchel.MemoryStorage()
    carts = Down()
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=logins),
        satchel.cookie(Cart, "CART", storage=carts),
    )
    jar: dict[str, str] = {}
    r = satchel.RequestSessions(sessions, scope(jar))
    r.set(Login(user="ada"))
    apply(jar, await r._commit())

    carts.down = True
    r = satchel.RequestSessions(sessions, scope(jar))
    assert await r.get(Login) == Login(user="ada")
    r.regenerate(Login)
    r.set(Cart(items=["a"]))
    with pytest.raises(satchel.StorageError):
        await r._commit()  # the response fails: no Set-Cookie reaches the client

    after = satchel.RequestSessions(sessions, scope(jar))
    assert await after.get(Login) == Login(user="ada"), "logged out by the cart store's failure"
