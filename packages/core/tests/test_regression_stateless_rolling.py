"""F7: a stateless rolling session whose idle deadline is capped by max_lifetime is sent
again on every request once less than max_age/2 of its lifetime is left: _commit_stateless
guesses when it was last sent as `expires - max_age`, which is wrong when `expires` came
from max_lifetime. Every response then carries a Set-Cookie (and is uncacheable) although
nothing changed and it was sent a moment ago."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from core_helpers import Clock
from review_helpers import KEY, apply, scope


class Cart(msgspec.Struct):
    items: list[str] = []


@pytest.mark.anyio
async def test_no_resend_right_after_a_resend() -> None:
    clock = Clock()
    sessions = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], max_age=100, max_lifetime=120),
        clock=clock,
    )
    jar: dict[str, str] = {}
    r = satchel.RequestSessions(sessions, scope(jar))
    r.set(Cart(items=["a"]))
    apply(jar, await r._commit())

    clock.now += 60  # past max_age/2 since it was sent: a resend is due
    r = satchel.RequestSessions(sessions, scope(jar))
    await r.get(Cart)
    headers = await r._commit()
    assert any(k == b"set-cookie" for k, _ in headers)
    apply(jar, headers)

    clock.now += 12  # 12 s after the resend; max_age is 100
    r = satchel.RequestSessions(sessions, scope(jar))
    await r.get(Cart)
    headers = await r._commit()
    assert not any(k == b"set-cookie" for k, _ in headers), "sent again 12 s after the last send"
