"""Every python block of docs/quickstart.md runs as pasted, and does what the page says."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
APPS = [b for b in BLOCKS if "\napp = " in b]


def run(block: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "quickstart_example"}
    exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


@pytest.fixture(autouse=True)
def session_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the page reads its key from the environment, as it tells the reader to
    monkeypatch.setenv("SESSION_KEY", secrets.token_urlsafe(32))
    monkeypatch.chdir(tmp_path)  # relative sqlite paths land here


def test_the_page_has_the_blocks_these_tests_know() -> None:
    # a new block must get a check here: the counts catch one added without it
    assert len(APPS) == 3
    assert len([b for b in BLOCKS if "def signed_in" in b]) == 1
    assert len(BLOCKS) == 4


@pytest.mark.anyio
@pytest.mark.parametrize("block", APPS, ids=["starlette", "fastapi", "asgi"])
async def test_each_framework_example_counts_visits(block: str) -> None:
    app = run(block)["app"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://localhost") as client:
        counts = [re.findall(r"\d+", (await client.get("/")).text)[-1] for _ in range(3)]
    assert counts == ["1", "2", "3"]


@pytest.mark.anyio
async def test_the_server_side_example_signs_in_and_out(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    [block] = [b for b in BLOCKS if "def signed_in" in b]
    page = run(block)
    satchel, login_type = page["satchel"], page["Login"]

    async def sign_in(request: Request) -> JSONResponse:
        await page["signed_in"](request, request.path_params["user"])
        return JSONResponse("ok")

    async def sign_out(request: Request) -> JSONResponse:
        await page["signed_out"](request)
        return JSONResponse("bye")

    async def who(request: Request) -> JSONResponse:
        login = await satchel.sessions_of(request).get(login_type)
        return JSONResponse(login and login.user)

    routes = [Route("/in/{user}", sign_in), Route("/out", sign_out), Route("/who", who)]
    app = satchel.SessionMiddleware(Starlette(routes=routes), page["sessions"])
    try:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            await client.get("/in/ada")
            assert (await client.get("/who")).json() == "ada"
            await client.get("/out")
            assert "SID" not in client.cookies
            assert (await client.get("/who")).json() is None
    finally:
        # ASGITransport sends no lifespan, so the middleware never closes the storage as a
        # server's shutdown would: close it on this loop. Left open, its aiosqlite threads
        # would be stopped by a garbage collection in some later test, and would answer on
        # that test's loop, maybe after it has closed ("Event loop is closed").
        await page["sessions"].aclose()
    assert (tmp_path / "sessions.db").exists()  # the session was stored, not carried


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
