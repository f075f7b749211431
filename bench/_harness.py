"""What the storage benches share: spreading requests over concurrent tasks and timing them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

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
