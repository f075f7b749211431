"""Sanity checks (expected to pass): set/clear/set and regenerate without get."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from core_helpers import live_keys
from review_helpers import request


class Login(msgspec.Struct):
    user: str


@pytest.mark.anyio
async def test_set_clear_set_and_regenerate_without_get() -> None:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    jar: dict[str, str] = {}

    async def a(s: satchel.RequestSessions) -> None:
        s.set(Login(user="a"))

    await request(sessions, jar, a)
    old = dict(jar)

    async def b(s: satchel.RequestSessions) -> None:
        s.set(Login(user="b"))
        s.clear(Login)
        s.set(Login(user="c"))

    await request(sessions, jar, b)
    assert jar["SID"] != old["SID"]
    assert len(storage) == 1

    async def rd(s: satchel.RequestSessions) -> object:
        return await s.get(Login)

    assert await request(sessions, old, rd) is None
    assert await request(sessions, jar, rd) == Login(user="c")
    before = dict(jar)

    async def regen(s: satchel.RequestSessions) -> None:
        s.regenerate(Login)

    await request(sessions, jar, regen)
    assert jar["SID"] != before["SID"]
    assert await request(sessions, before, rd) is None
    assert await request(sessions, jar, rd) == Login(user="c")
    assert len(live_keys(storage)) == 1  # and a tombstone where the old ID was
