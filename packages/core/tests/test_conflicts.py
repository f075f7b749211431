"""Concurrent requests of one visitor: a write based on a stale read never silently wins.

With ``detect_conflicts=True`` a stale write raises SessionConflict, regenerate() included,
and a handler that catches it answers as it chooses. Without it, an ID that clear() or
regenerate() ended stays dead even when a request that read it before writes it back after.
"""

from __future__ import annotations

import httpx
import msgspec
import pytest
import satchel
import satchel.testing
from core_helpers import apply, live_keys
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str
    hits: int = 0


@pytest.mark.anyio
async def test_regenerate_on_a_stale_read_raises_conflict() -> None:
    """A request that read v1 and regenerates after another request wrote v2 raises
    SessionConflict: copying its stale v1 to the new ID and ending the old one would lose v2
    without a word (the same holds when the request did not change the session)."""
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", storage=storage, detect_conflicts=True))
    jar: dict[str, str] = {}
    first = sessions.detached(cookies=jar)
    first.set(Cart(items=["a"]))
    apply(jar, await first.commit())

    r1 = sessions.detached(cookies=jar)
    r2 = sessions.detached(cookies=jar)
    assert await r1.get(Cart) == Cart(items=["a"])
    c2 = await r2.get(Cart)
    assert c2 is not None
    r2.set(Cart(items=[*c2.items, "b"]))
    await r2.save()  # concurrent tab adds "b"

    r1.regenerate(Cart)  # e.g. a login in the first tab
    with pytest.raises(satchel.SessionConflict):
        await r1.commit()
    check = sessions.detached(cookies=jar)
    assert await check.get(Cart) == Cart(items=["a", "b"]), "the concurrent write was lost"


@pytest.mark.anyio
async def test_a_regenerate_conflict_caught_in_the_handler_leaves_the_session_as_it_was() -> None:
    """The handler catches the SessionConflict of save(): the response then changes no
    cookie, the old ID still opens the session, and the new ID written meanwhile is gone."""
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", storage=storage, detect_conflicts=True))
    jar: dict[str, str] = {}
    first = sessions.detached(cookies=jar)
    first.set(Cart(items=["a"]))
    apply(jar, await first.commit())

    r1 = sessions.detached(cookies=jar)
    assert await r1.get(Cart) == Cart(items=["a"])
    r2 = sessions.detached(cookies=jar)
    r2.set(Cart(items=["a", "b"]))
    await r2.save()
    r1.regenerate(Cart)
    with pytest.raises(satchel.SessionConflict):
        await r1.save()
    assert [h for h in await r1.commit() if h[0] == "set-cookie"] == []
    check = sessions.detached(cookies=jar)
    assert await check.get(Cart) == Cart(items=["a", "b"])
    assert len(live_keys(storage)) == 1, "the regenerated copy was left in storage"


@pytest.mark.anyio
async def test_handler_409_after_save_conflict_reaches_the_client() -> None:
    """The pattern of docs/concepts.md "Saving early": once `await s.save()` raised
    SessionConflict and the handler answered 409, the response start does not try the same
    write again (which would raise again and turn the 409 into a 500)."""
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


@pytest.mark.anyio
@pytest.mark.parametrize("action", ["clear", "regenerate"])
async def test_invalidated_id_stays_dead(action: str) -> None:
    """A request in flight (it read the session before a logout, changed it in place and
    writes after) does not bring the ID that clear() or regenerate() ended back to life, so a
    copy of the old cookie kept by someone else stays useless."""
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    jar: dict[str, str] = {}
    first = sessions.detached(cookies=jar)
    first.set(Login(user="alice"))
    apply(jar, await first.commit())
    old_cookie = dict(jar)

    poll = sessions.detached(cookies=old_cookie)  # e.g. a polling XHR
    login = await poll.get(Login)
    assert login is not None
    login.hits += 1  # changed in place

    logout = sessions.detached(cookies=old_cookie)
    getattr(logout, action)(Login)
    await logout.commit()

    await poll.commit()  # the in-flight request finishes after the logout

    stolen = sessions.detached(cookies=old_cookie)
    assert await stolen.get(Login) is None, f"the old ID works again after {action}()"
