from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def build(app: Any, base_url: str = "http://testserver") -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture(params=["fused", "generic"])
def both_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test twice: with the common configuration's fused path (satchel/_lane.py), and
    with every mapping built in the test going through the generic steps alone."""
    import satchel._mapping

    monkeypatch.setattr(satchel._mapping, "LANES", request.param == "fused")
    return str(request.param)
