"""The demo shop's account page: every device signed in as you, and signing them out."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SATCHEL_DEMO_DIR", str(tmp_path))
    import examples.shop

    return importlib.reload(examples.shop)  # VAR is read at import


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def device(app: Any, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="https://testserver",
        headers={"user-agent": name},
        follow_redirects=True,
    )


@pytest.mark.anyio
async def test_the_account_page_lists_devices_and_signs_them_out(shop: Any) -> None:
    app = shop.build_app()
    async with device(app, "Phone") as phone, device(app, "Laptop") as laptop, device(app, "TV") as tv:
        for client in (phone, laptop, tv):
            await client.post("/login", data={"user": "ada"})
        page = (await laptop.get("/account")).text
        assert all(name in page for name in ("Phone", "Laptop", "TV"))
        assert page.count("<i>this device</i>") == 1
        handles = re.findall(r'name="handle" value="([^"]+)"', page)
        assert len(handles) == 2  # the other two devices
        # the phone lists the other two: the laptop's handle it does not list is the phone's
        phone_page = (await phone.get("/account")).text
        [phone_handle] = [h for h in handles if h not in phone_page]
        await laptop.post("/account/end", data={"handle": phone_handle})
        assert "Sign in" in (await phone.get("/")).text
        assert "signed in as" in (await tv.get("/")).text
        await laptop.post("/account/others")
        assert "Sign in" in (await tv.get("/")).text
        assert "signed in as" in (await laptop.get("/")).text
        page = (await laptop.get("/account")).text
        assert page.count("<li>") == 1
        assert "Laptop" in page
    await app.sessions.aclose()
