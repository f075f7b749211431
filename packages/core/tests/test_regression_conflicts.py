"""F4: detect_conflicts=True does not protect regenerate(): a request that read v1,
regenerates after another request wrote v2, copies its stale v1 to the new ID and
invalidates the old one without any compare. v2 is silently lost, no SessionConflict.
(Also: the same stale carry-over happens for an unchanged session, since the regenerate
path writes with expected=None on the new ID and invalidates the old one blindly.)"""

from __future__ import annotations

import msgspec
import pytest
import satchel
from core_helpers import live_keys
from review_helpers import scope


class Cart(msgspec.Struct):
    items: list[str] = []


def apply_to(jar: dict[str, str], headers: list[tuple[bytes, bytes]]) -> None:
    from review_helpers import apply

    apply(jar, headers)


@pytest.mark.anyio
async def test_regenerate_on_a_stale_read_raises_conflict() -> None:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", storage=storage, detect_conflicts=True))
    jar: dict[str, str] = {}
    first = satchel.RequestSessions(sessions, scope(jar))
    first.set(Cart(items=["a"]))
    apply_to(jar, await first._commit())

    r1 = satchel.RequestSessions(sessions, scope(jar))
    r2 = satchel.RequestSessions(sessions, scope(jar))
    assert await r1.get(Cart) == Cart(items=["a"])
    c2 = await r2.get(Cart)
    assert c2 is not None
    r2.set(Cart(items=[*c2.items, "b"]))
    await r2.save()  # concurrent tab adds "b"

    r1.regenerate(Cart)  # e.g. a login in the first tab
    with pytest.raises(satchel.SessionConflict):
        await r1._commit()
    check = satchel.RequestSessions(sessions, scope(jar))
    assert await check.get(Cart) == Cart(items=["a", "b"]), "the concurrent write was lost"


@pytest.mark.anyio
async def test_a_regenerate_conflict_caught_in_the_handler_leaves_the_session_as_it_was() -> None:
    """The handler catches the SessionConflict of save(): the response then changes no
    cookie, the old ID still opens the session, and the new ID written meanwhile is gone."""
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", storage=storage, detect_conflicts=True))
    jar: dict[str, str] = {}
    first = satchel.RequestSessions(sessions, scope(jar))
    first.set(Cart(items=["a"]))
    apply_to(jar, await first._commit())

    r1 = satchel.RequestSessions(sessions, scope(jar))
    assert await r1.get(Cart) == Cart(items=["a"])
    r2 = satchel.RequestSessions(sessions, scope(jar))
    r2.set(Cart(items=["a", "b"]))
    await r2.save()
    r1.regenerate(Cart)
    with pytest.raises(satchel.SessionConflict):
        await r1.save()
    assert [h for h in await r1._commit() if h[0] == b"set-cookie"] == []
    check = satchel.RequestSessions(sessions, scope(jar))
    assert await check.get(Cart) == Cart(items=["a", "b"])
    assert len(live_keys(storage)) == 1, "the regenerated copy was left in storage"
