"""One behaviour suite for every framework integration, each app driven through its
framework's own test client: a stateless signed cart, a server-side login on SQLite."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from integrations.apps import FRAMEWORKS, Client, shop_sessions


@pytest.fixture(params=sorted(FRAMEWORKS))
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Client]:
    build, client_for = FRAMEWORKS[request.param]
    async with client_for(build(shop_sessions(tmp_path))) as client:
        yield client


@pytest.mark.anyio
async def test_a_stateless_session_set_is_read_on_the_next_request(client: Client) -> None:
    assert await client.get("/cart") is None
    assert await client.get("/add?item=apple") == ["apple"]
    assert await client.get("/add?item=pear") == ["apple", "pear"]
    assert await client.get("/cart") == ["apple", "pear"]


@pytest.mark.anyio
async def test_a_server_side_session_set_is_read_on_the_next_request(client: Client) -> None:
    assert await client.get("/me") is None
    await client.get("/login?user=ada")
    assert client.cookie("SID") is not None
    assert await client.get("/me") == "ada"


@pytest.mark.anyio
async def test_clear_ends_the_session(client: Client) -> None:
    await client.get("/login?user=ada")
    sid = client.cookie("SID")
    await client.get("/logout")
    assert client.cookie("SID") is None
    assert await client.get("/me") is None
    assert await client.get("/me", cookie=f"SID={sid}") is None, "the old cookie still worked"


@pytest.mark.anyio
async def test_regenerate_changes_the_id_and_the_old_cookie_no_longer_works(client: Client) -> None:
    await client.get("/login?user=ada")
    old = client.cookie("SID")
    await client.get("/regenerate")
    new = client.cookie("SID")
    assert new is not None
    assert old is not None
    assert new.split(".")[0] != old.split(".")[0]
    assert await client.get("/me") == "ada"
    assert await client.get("/me", cookie=f"SID={new}") == "ada"
    assert await client.get("/me", cookie=f"SID={old}") is None


@pytest.mark.anyio
async def test_a_websocket_reads_the_session_set_over_http(client: Client) -> None:
    assert await client.ws("/ws") is None
    await client.get("/login?user=ada")
    assert await client.ws("/ws") == "ada"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_core_and_the_integrations_package_import_no_framework() -> None:
    code = (
        "import sys, satchel, satchel.integrations\n"
        "print(sorted(m for m in ('fastapi', 'litestar', 'quart', 'starlette') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
