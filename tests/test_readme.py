"""The README's example, taken from the README itself, runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    return str(blocks[0])


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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
