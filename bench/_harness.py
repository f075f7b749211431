"""What the storage benches share: spreading requests over concurrent tasks and timing
them, and the session and handler their middleware contenders serve."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import satchel

Request = Callable[[str], Awaitable[None]]


async def run(request: Request, ids: list[str], tasks: int) -> float:
    """Microseconds per request for ``ids`` spread over ``tasks`` concurrent tasks."""
    chunks = [ids[i::tasks] for i in range(tasks)]

    async def worker(chunk: list[str]) -> None:
        for id in chunk:
            await request(id)

    start = time.perf_counter()
    await asyncio.gather(*(worker(chunk) for chunk in chunks))
    return (time.perf_counter() - start) / len(ids) * 1e6


COOKIE = "CART"
MAX_AGE = 14 * 24 * 3600


class Cart(msgspec.Struct):
    """The session of the core and HTTP benches: about 200 bytes as MessagePack."""

    user: str
    roles: list[str]
    items: list[str]
    coupon: str | None = None
    visits: int = 0


FIRST = Cart(
    user="u-5c1e0d2a-7f3b",
    roles=["customer", "beta"],
    items=[f"SKU-{i:04d}-blue-m" for i in range(7)],
    coupon="WINTER10",
)
FIRST_DICT: dict[str, Any] = msgspec.to_builtins(FIRST)


class Login(msgspec.Struct):
    """The session the storage benches' middleware contenders read and write."""

    user: str
    visits: int = 0


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Any) -> None:
    pass


async def respond(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def read_write_handler(scope: Any, receive: Any, send: Any) -> None:
    """Read the login, count the visit, write it back."""
    s = satchel.sessions_of(scope)
    login = await s.get(Login)
    assert login is not None, "the bench's session was not found"
    s.set(Login(user=login.user, visits=login.visits + 1))
    await respond(send)
