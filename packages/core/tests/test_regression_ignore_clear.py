"""F14: under on_storage_error="ignore", a logout whose get() hit a failed read never
invalidates the session: get() marks the state loaded with no ID, so clear() has no ID to
kill and does not fall back to the IDs in the request. The cookie is deleted, nothing
raises, and a copy of the cookie keeps working: a silent, incomplete logout."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from review_helpers import apply, scope


class Login(msgspec.Struct):
    user: str


class FlakyRead(satchel.MemoryStorage):
    fail_reads = 0

    async def read(self, id: str) -> bytes | None:
        if self.fail_reads:
            self.fail_reads -= 1
            raise ConnectionError("read timed out")
        return await super().read(id)


@pytest.mark.anyio
async def test_logout_after_a_failed_read_still_kills_the_id() -> None:
    storage = FlakyRead()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, on_storage_error="ignore"))
    jar: dict[str, str] = {}
    r = satchel.RequestSessions(sessions, scope(jar))
    r.set(Login(user="ada"))
    apply(jar, await r._commit())
    copy = dict(jar)

    storage.fail_reads = 1  # one transient failure
    logout = satchel.RequestSessions(sessions, scope(jar))
    await logout.get(Login)  # e.g. to log who logs out; reads as "no session"
    logout.clear(Login)
    apply(jar, await logout._commit())  # no error: looks like a successful logout
    assert "SID" not in jar

    thief = satchel.RequestSessions(sessions, scope(copy))
    assert await thief.get(Login) is None, "the session survived the logout"
