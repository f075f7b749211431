"""The examples of docs/frameworks/ run as pasted: every ```python block of a page, in order,
in one namespace; then the app they build is driven through its framework's test client."""

from __future__ import annotations

import re
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

PAGES = Path(__file__).resolve().parents[1] / "docs" / "frameworks"
KEY = "_p6ZHpng5Rwf6pgfRJfaslYjyRlMdfUq0QlDazDhb-s"


@pytest.fixture
def run_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SESSION_KEY", KEY)
    monkeypatch.chdir(tmp_path)  # the examples' sqlite:///sessions.db lands here

    def run(name: str) -> dict[str, Any]:
        page = PAGES / name
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
        assert blocks, f"{name} has no python example"
        # a module of its own, as a pasted file would be: Litestar looks handlers' modules up
        module = types.ModuleType(f"docs_{page.stem}")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        for block in blocks:
            exec(compile(block, str(page), "exec"), module.__dict__)  # noqa: S102 - our own docs
        return module.__dict__

    return run


def starlette_test_client(app: Any) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient
    return TestClient(app)


def shop_round(client: Any, me: Any) -> None:
    """The shop every page builds, through a sync test client; ``me`` is what /me answers."""
    assert client.post("/cart/apple").json() == ["apple"]
    assert client.post("/cart/pear").json() == ["apple", "pear"]
    assert client.get("/me").status_code == 401
    client.post("/sign-in/ada")
    first = client.cookies["SID"]
    assert client.get("/me").json() == me
    client.post("/sign-in/ada")
    assert client.cookies["SID"] != first, "signing in again gives a new ID"
    assert client.get("/me", headers={"cookie": f"SID={first}"}).status_code == 401
    assert client.get("/me").json() == me


def test_fastapi_page(run_page: Any) -> None:
    ns = run_page("fastapi.md")
    with starlette_test_client(ns["app"]) as client:
        shop_round(client, "ada")
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == "ada"
        assert client.get("/admin").json() == "ada"
        client.post("/sign-out")
        assert client.get("/me").status_code == 401
        assert client.get("/admin").status_code == 403
        assert client.get("/me", headers={"accept": "text/html"}, follow_redirects=False).headers[
            "location"
        ] == ("/sign-in?next=/me")
        assert client.get("/openapi.json").json()["paths"]["/me"]["get"].get("parameters") is None


def test_starlette_page(run_page: Any) -> None:
    ns = run_page("starlette.md")
    with starlette_test_client(ns["app"]) as client:
        shop_round(client, "ada")
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == "ada"
        client.post("/sign-out")
        assert client.get("/me").status_code == 401


def test_litestar_page(run_page: Any) -> None:
    from litestar.testing import TestClient

    ns = run_page("litestar.md")
    ns["test_sign_in"]()  # the page's own test
    with TestClient(ns["app"], base_url="https://testserver.local") as client:
        shop_round(client, {"user": "ada"})
        client.post("/sign-out")
        assert client.get("/me").status_code == 401


@pytest.mark.anyio
async def test_quart_page(run_page: Any) -> None:
    ns = run_page("quart.md")
    async with ns["app"].test_app() as running:
        client = running.test_client()
        assert await (await client.post("/cart/apple")).get_json() == ["apple"]
        assert (await client.get("/me")).status_code == 401
        await client.post("/sign-in/ada")
        assert await (await client.get("/me")).get_json() == {"user": "ada"}
        async with client.websocket("/ws") as ws:
            assert await ws.receive_json() == "ada"
        await client.post("/sign-out")
        assert (await client.get("/me")).status_code == 401


@pytest.mark.anyio
async def test_asgi_page(run_page: Any) -> None:
    ns = run_page("asgi.md")
    transport = httpx.ASGITransport(ns["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/")).text == "visit number 1\n"
        assert (await client.get("/")).text == "visit number 2\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
