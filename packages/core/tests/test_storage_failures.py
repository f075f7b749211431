"""A storage that fails: what a visitor keeps, and what ``on_storage_error="ignore"`` promises.

Under "ignore" an outage reads as no session, for the storage calls the core makes on its own
too, and a logout still ends the session. A failure while committing one mapping never costs
the visitor the session of another.
"""

from __future__ import annotations

import httpx
import msgspec
import pytest
import satchel
from core_helpers import Clock, apply
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


class Login(msgspec.Struct):
    user: str


class Cart(msgspec.Struct):
    items: list[str] = []


class FlakyRead(satchel.MemoryStorage):
    fail_reads = 0

    async def read(self, id: str) -> bytes | None:
        if self.fail_reads:
            self.fail_reads -= 1
            raise ConnectionError("read timed out")
        return await super().read(id)


class FlakyStorage(satchel.MemoryStorage):
    down = False

    async def touch(self, id: str, ttl: float | None) -> None:
        if self.down:
            raise ConnectionError("storage went away")
        await super().touch(id, ttl)

    async def read(self, id: str) -> bytes | None:
        return await super().read(id)


class Down(satchel.MemoryStorage):
    down = False

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        if self.down:
            raise ConnectionError("cart store is down")
        await super().write(id, data, ttl)


@pytest.mark.anyio
async def test_logout_after_a_failed_read_still_kills_the_id() -> None:
    """Under "ignore", a logout whose get() hit a failed read (so it read as no session)
    still ends the session by the IDs the request sent: otherwise the cookie is deleted,
    nothing raises, and a copy of it keeps working, a silent and incomplete logout."""
    storage = FlakyRead()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, on_storage_error="ignore"))
    jar: dict[str, str] = {}
    r = sessions.detached(cookies=jar)
    r.set(Login(user="ada"))
    apply(jar, await r.commit())
    copy = dict(jar)

    storage.fail_reads = 1  # one transient failure
    logout = sessions.detached(cookies=jar)
    await logout.get(Login)  # e.g. to log who logs out; reads as "no session"
    logout.clear(Login)
    apply(jar, await logout.commit())  # no error: looks like a successful logout
    assert "SID" not in jar

    thief = sessions.detached(cookies=copy)
    assert await thief.get(Login) is None, "the session survived the logout"


@pytest.mark.anyio
async def test_read_only_request_survives_a_failed_touch_under_ignore() -> None:
    """Under "ignore", a request that only reads does not fail when a storage call the core
    makes on its own for that read fails: the rolling-expiry touch() (as the invalidate() of
    an entry found past max_lifetime) is skipped at response start, not raised."""
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


@pytest.mark.anyio
async def test_failed_commit_of_one_mapping_keeps_the_other_session() -> None:
    """With two server-side mappings, a storage failure while committing the second does not
    leave the first one's regenerate half-done: the failed response never gives the client
    the new ID, so the old ID it still holds must keep working ("nothing is half-written"
    holds across mappings, and an unrelated store's outage logs nobody out)."""
    logins = satchel.MemoryStorage()
    carts = Down()
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=logins),
        satchel.cookie(Cart, "CART", storage=carts),
    )
    jar: dict[str, str] = {}
    r = sessions.detached(cookies=jar)
    r.set(Login(user="ada"))
    apply(jar, await r.commit())

    carts.down = True
    r = sessions.detached(cookies=jar)
    assert await r.get(Login) == Login(user="ada")
    r.regenerate(Login)
    r.set(Cart(items=["a"]))
    with pytest.raises(satchel.StorageError):
        await r.commit()  # the response fails: no Set-Cookie reaches the client

    after = sessions.detached(cookies=jar)
    assert await after.get(Login) == Login(user="ada"), "logged out by the cart store's failure"
