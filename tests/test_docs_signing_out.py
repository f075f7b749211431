"""The example of docs/signing-out-everywhere.md, taken from the page itself, runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "signing-out-everywhere.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def run(block: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def browser(app: Any, device: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="https://testserver", headers={"user-agent": device}
    )


@pytest.mark.anyio
async def test_the_account_page_example_runs_as_written() -> None:
    example = run(blocks()[0])
    app = example["app"]
    async with browser(app, "phone") as phone, browser(app, "laptop") as laptop, browser(app, "tv") as tv:
        for client in (phone, laptop, tv):
            assert (await client.post("/sign-in/ada")).json() == "ok"
        listed = (await laptop.get("/devices")).json()
        assert sorted(d["device"] for d in listed) == ["laptop", "phone", "tv"]
        assert [d["device"] for d in listed if d["this_device"]] == ["laptop"]
        [tv_handle] = [d["handle"] for d in listed if d["device"] == "tv"]
        assert (await laptop.post(f"/devices/{tv_handle}/sign-out")).json() is True
        assert (await tv.get("/devices")).json() == []  # signed out
        assert (await laptop.post("/sign-out-others")).json() == 1  # the phone
        assert (await phone.get("/devices")).json() == []
        before = laptop.cookies["SID"]
        assert (await laptop.post("/password")).json() == "changed"
        assert laptop.cookies["SID"] != before  # the ID rotated
        assert [d["device"] for d in (await laptop.get("/devices")).json()] == ["laptop"]
        assert await example["lock_account"]("ada") == 1
        assert (await laptop.get("/devices")).json() == []


def test_the_stateless_stamp_example_runs() -> None:
    example = run(blocks()[1])
    assert example["password_stamp"]("a") != example["password_stamp"]("b")
    assert len(example["password_stamp"]("a")) == 16
