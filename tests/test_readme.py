"""The README's example, taken from the README itself, runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_examples() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    return [str(block) for block in blocks]


def readme_example() -> str:
    return readme_examples()[0]


@pytest.mark.anyio
async def test_readme_example_runs_as_written() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(readme_example(), str(README), "exec"), namespace)  # noqa: S102 - our own README
    app = namespace["app"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://localhost") as client:
        assert (await client.get("/add/apple")).json() == ["apple"]
        assert (await client.get("/add/pear")).json() == ["apple", "pear"]
        assert (await client.get("/login/ada")).json() == "ok"
        first_sid = client.cookies["SID"]
        # signing in again starts a new session: a new ID
        assert (await client.get("/login/bob")).json() == "ok"
        assert client.cookies["SID"].split(".")[0] != first_sid.split(".")[0]
        assert (await client.get("/logout")).json() == "bye"
        assert "SID" not in client.cookies


@pytest.mark.anyio
async def test_readme_sign_out_everywhere_runs_as_written() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(readme_examples()[1], str(README), "exec"), namespace)  # noqa: S102 - our own README
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def sign_in(request: Request) -> JSONResponse:
        await namespace["sign_in"](request)
        return JSONResponse("ok")

    async def devices(request: Request) -> JSONResponse:
        listed = await namespace["devices"](request)
        return JSONResponse([[info.attributes["device"], info.current] for info in listed])

    app = namespace["satchel"].SessionMiddleware(
        Starlette(routes=[Route("/in", sign_in), Route("/devices", devices)]), namespace["accounts"]
    )

    def browser(device: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="https://testserver", headers={"user-agent": device}
        )

    async with browser("phone") as phone, browser("laptop") as laptop:
        await phone.get("/in")
        await laptop.get("/in")
        assert sorted((await laptop.get("/devices")).json()) == [["laptop", True], ["phone", False]]
        assert await namespace["password_changed"]("ada") == 2
        assert (await phone.get("/devices")).json() == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
