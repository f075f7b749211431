"""F8: a stateless value minted while the mapping had no idle timeout (max_age=None, so
expires=0 in the envelope) is accepted forever after the app sets a max_age: open_stateless
skips the idle check when expires is 0, and a client can keep replaying it beyond max_age."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from core_helpers import Clock
from review_helpers import KEY, apply, scope


class Cart(msgspec.Struct):
    items: list[str] = []


@pytest.mark.anyio
async def test_value_without_deadline_is_refused_once_max_age_is_configured() -> None:
    clock = Clock()
    before = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], max_age=None), clock=clock
    )
    jar: dict[str, str] = {}
    r = satchel.RequestSessions(before, scope(jar))
    r.set(Cart(items=["old"]))
    apply(jar, await r._commit())

    after = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], max_age=3600), clock=clock
    )
    clock.now += 365 * 24 * 3600  # a year later, far beyond max_age
    r = satchel.RequestSessions(after, scope(jar))
    assert await r.get(Cart) is None, "a year-old value without deadline still opens with max_age=3600"
