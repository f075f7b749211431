"""The example of docs/request-session.md, taken from the page itself, runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "request-session.md"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_oauth_state_example_runs_as_written() -> None:
    [block] = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    page: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block, str(PAGE), "exec"), page)  # noqa: S102 - our own docs
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(page["app"]), base_url="https://testserver"
    ) as c:
        redirect = await c.get("/login")
        assert len(redirect.headers.get_list("set-cookie")) == 1
        assert (await c.get("/callback?state=forged")).status_code == 400
        redirect = await c.get("/login")
        assert (await c.get(redirect.headers["location"])).json() == {"signed_in": "ada"}
        async with page["sessions"].detached(cookies={"session": c.cookies["session"]}) as s:
            assert await s.get(dict) == {"user": "ada"}  # the state was popped
        [deletion] = (await c.get("/logout")).headers.get_list("set-cookie")
        assert deletion.startswith("session=;")
        assert "session" not in c.cookies
