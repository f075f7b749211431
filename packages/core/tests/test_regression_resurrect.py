"""F5: a logout (clear) or regenerate is undone by a request of the same visitor that was
in flight: it read the session before the logout and writes it back after, with a plain
write() to the OLD ID, so the ID that clear()/regenerate() invalidated is valid again
(a copy of the cookie kept by someone else works again). MemoryStorage has write_if, so
the core could have refused to resurrect it."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from review_helpers import apply, scope


class Login(msgspec.Struct):
    user: str
    hits: int = 0


@pytest.mark.anyio
@pytest.mark.parametrize("action", ["clear", "regenerate"])
async def test_invalidated_id_stays_dead(action: str) -> None:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    jar: dict[str, str] = {}
    first = satchel.RequestSessions(sessions, scope(jar))
    first.set(Login(user="alice"))
    apply(jar, await first._commit())
    old_cookie = dict(jar)

    poll = satchel.RequestSessions(sessions, scope(old_cookie))  # e.g. a polling XHR
    login = await poll.get(Login)
    assert login is not None
    login.hits += 1  # changed in place

    logout = satchel.RequestSessions(sessions, scope(old_cookie))
    getattr(logout, action)(Login)
    await logout._commit()

    await poll._commit()  # the in-flight request finishes after the logout

    stolen = satchel.RequestSessions(sessions, scope(old_cookie))
    assert await stolen.get(Login) is None, f"the old ID works again after {action}()"
