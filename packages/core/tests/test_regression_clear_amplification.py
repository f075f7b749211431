"""F9: clear() without a prior get() calls storage.invalidate() once for EVERY
valid-shaped ID the client sends under the cookie name, with no cap, although reads are
capped at 3 candidates for exactly this reason. One request to a logout URL with a large
Cookie header costs hundreds of storage round trips (and deletes IDs the server never
verified belong to this client)."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
import pytest
import satchel


class Login(msgspec.Struct):
    user: str


class Counting(satchel.MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.invalidates = 0

    async def invalidate(self, id: str) -> None:
        self.invalidates += 1
        await super().invalidate(id)


@pytest.mark.anyio
async def test_clear_does_at_most_as_many_storage_calls_as_a_read() -> None:
    storage = Counting()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    cookie = "; ".join(f"SID={secrets.token_urlsafe(32)}" for _ in range(150))  # ~7 KB header
    scope: dict[str, Any] = {"type": "http", "headers": [(b"cookie", cookie.encode())]}
    s = satchel.RequestSessions(sessions, scope)
    s.clear(Login)
    await s._commit()
    assert storage.invalidates <= 3, f"{storage.invalidates} invalidate calls for one logout"
