from __future__ import annotations

import msgspec
import pytest
import satchel
from review_helpers import KEY, request


class Login(msgspec.Struct):
    user: str


@pytest.mark.anyio
@pytest.mark.parametrize("server", [True, False])
async def test_async_factory_is_awaited_and_saved(server: bool) -> None:
    kw = {"storage": satchel.MemoryStorage()} if server else {"transformers": [satchel.Sign(KEY)]}
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", **kw))  # type: ignore[arg-type]
    jar: dict[str, str] = {}

    async def make() -> Login:
        return Login(user="anon")

    async def h(s: satchel.RequestSessions) -> object:
        return await s.get_or_set("SID", make)

    assert await request(sessions, jar, h) == Login(user="anon")

    async def r(s: satchel.RequestSessions) -> object:
        return await s.get(Login)

    assert await request(sessions, jar, r) == Login(user="anon")
