"""F1: on a server-side mapping, set() before any get() is undone by a later get():
get() loads the stored value over the one just set, returns the OLD value, and the
OLD value is what gets written back. The set is lost."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from review_helpers import request


class Login(msgspec.Struct):
    user: str


@pytest.mark.anyio
async def test_get_after_set_returns_the_value_just_set_and_it_is_saved() -> None:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    jar: dict[str, str] = {}

    async def login_alice(s: satchel.RequestSessions) -> None:
        s.set(Login(user="alice"))

    await request(sessions, jar, login_alice)

    async def switch_to_bob_then_read(s: satchel.RequestSessions) -> Login | None:
        s.set(Login(user="bob"))  # no get() before the set
        return await s.get(Login)

    seen = await request(sessions, jar, switch_to_bob_then_read)
    assert seen == Login(user="bob"), f"get() right after set() returned {seen!r}"

    async def read(s: satchel.RequestSessions) -> Login | None:
        return await s.get(Login)

    assert await request(sessions, jar, read) == Login(user="bob")


@pytest.mark.anyio
async def test_get_or_set_after_set_keeps_the_set_value() -> None:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    jar: dict[str, str] = {}

    async def login_alice(s: satchel.RequestSessions) -> None:
        s.set(Login(user="alice"))

    await request(sessions, jar, login_alice)

    async def handler(s: satchel.RequestSessions) -> None:
        s.set(Login(user="bob"))
        await s.get_or_set(Login, lambda: Login(user="anon"))  # e.g. a helper further down

    await request(sessions, jar, handler)

    async def read(s: satchel.RequestSessions) -> Login | None:
        return await s.get(Login)

    assert await request(sessions, jar, read) == Login(user="bob")
