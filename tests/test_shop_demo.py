"""The demo shop through a test client: the account page (every device signed in as you,
and signing them out), the sessions panel, the 404 page, the favicon, the sign-in form's checks."""

from __future__ import annotations

import html
import importlib
import re
import sys
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


def stored_key(page: str) -> str:
    """The key of the login's row, as the sessions panel shows it."""
    found = re.search(r"stored row: key <code>([^<]+)</code>", page)
    assert found, "the panel shows no stored row"
    return found.group(1)


def section(page: str, name: str) -> str:
    """The panel's section about the mapping ``name``, tags stripped and entities decoded."""
    found = re.search(rf'<section id="session-{name}">(.*?)</section>', page, re.S)
    assert found, f"the panel has no section for {name}"
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


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
        # the phone's panel shows its own row's key: its handle
        phone_handle = stored_key((await phone.get("/account")).text)
        assert phone_handle in handles
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


@pytest.mark.anyio
async def test_the_panel_shows_each_session_as_the_browser_holds_it_and_the_server_reads_it(
    shop: Any,
) -> None:
    app = shop.build_app()
    async with device(app, "Laptop") as client:
        page = (await client.get("/")).text
        cart = section(page, "cart")
        assert "cookie, stateless" in cart
        assert "transformers: Sign" in cart
        assert "no cookie" in cart
        assert "no session" in cart
        await client.post("/cart/add", data={"item": "apple"})
        page = (await client.post("/cart/add", data={"item": "apple"})).text
        cart = section(page, "cart")
        size = len(client.cookies["cart"])
        assert f"cart=<{size} characters>; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax; Secure" in cart
        assert "Cart(items={'apple': 2})" in cart
        assert "apple" in cart.split("readable by whoever holds it:")[1]  # signed, not encrypted
        assert "no cookie" in section(page, "sid")

        page = (await client.post("/login", data={"user": "ada"})).text
        sid = section(page, "sid")
        assert "cookie, server-side" in sid
        assert "SQLiteStorage(" in sid
        assert f"sid=<{len(client.cookies['sid'])} characters>; Max-Age=3600;" in sid
        assert "Login(user='ada')" in sid
        assert re.search(r"ends at \d\d:\d\d:\d\d unless used again, and at \d\d:\d\d:\d\d whatever", sid)
        # the key shown is the row's: the storage holds the login under it
        row = await app.sessions.mapping(shop.Login).store.read(stored_key(page))
        assert row is not None
        assert f"{len(row)} bytes" in sid
        assert client.cookies["sid"] not in page  # the ID never reaches the page (HttpOnly would be moot)

        page = (await client.post("/logout")).text
        assert "no cookie" in section(page, "sid")
        assert "Cart(items={'apple': 2})" in section(page, "cart")
        assert "Sign in" in page
    await app.sessions.aclose()


@pytest.mark.anyio
async def test_the_panel_says_when_a_cookie_was_refused(shop: Any) -> None:
    app = shop.build_app()
    async with device(app, "Laptop") as client:
        await client.post("/cart/add", data={"item": "bread"})
        value = client.cookies["cart"]
        client.cookies.delete("cart")
        client.cookies.set("cart", value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB"))
        response = await client.get("/cart")
        assert response.status_code == 200
        assert "<li>empty</li>" in response.text
        assert "sent, but refused" in section(response.text, "cart")
    await app.sessions.aclose()


@pytest.mark.anyio
async def test_an_encrypted_cart_is_not_readable_in_the_cookie(shop: Any) -> None:
    pytest.importorskip("satchel_crypto")
    app = shop.build_app(encrypt=True)
    async with device(app, "Laptop") as client:
        page = (await client.post("/cart/add", data={"item": "cheese"})).text
        cart = section(page, "cart")
        assert "transformers: Encrypt" in cart
        assert "Cart(items={'cheese': 1})" in cart
        assert "cheese" not in cart.split("readable by whoever holds it:")[1].split("server decoded")[0]
        assert "the cart is encrypted" in page
    await app.sessions.aclose()


def test_without_satchel_crypto_the_demo_runs_signed_and_says_how_to_encrypt(
    shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "satchel_crypto", None)  # as if it were not installed
    shop = importlib.reload(shop)
    assert not shop.HAVE_CRYPTO
    with pytest.raises(shop.satchel.ConfigError, match="pip install satchel-crypto"):
        shop.build_app(encrypt=True)
    monkeypatch.setattr(sys, "argv", ["shop", "--encrypt"])
    with pytest.raises(SystemExit):
        shop.main()


@pytest.mark.anyio
async def test_without_satchel_crypto_the_panel_says_how_to_encrypt(
    shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "satchel_crypto", None)
    shop = importlib.reload(shop)
    app = shop.build_app()
    async with device(app, "Laptop") as client:
        page = (await client.get("/")).text
        assert "install satchel-crypto and run: python -m examples.shop --encrypt" in page
    await app.sessions.aclose()


@pytest.mark.anyio
async def test_an_unknown_url_gets_a_page_and_the_favicon_is_served(shop: Any) -> None:
    app = shop.build_app()
    async with device(app, "Laptop") as client:
        await client.post("/login", data={"user": "ada"})
        response = await client.get("/no/such/page")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "Page not found" in response.text
        assert "/no/such/page" in response.text
        assert "signed in as" in response.text
        assert 'id="sessions"' in response.text
        icon = await client.get("/favicon.ico")
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.text.startswith("<svg")
        assert 'rel="icon"' in (await client.get("/")).text
    await app.sessions.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Enter a name to sign in."),
        ("   ", "Enter a name to sign in."),
        ("x" * 41, "A name has at most 40 characters; that one has 41."),
        ("ada\x07", "A name cannot contain control characters."),
    ],
)
async def test_a_refused_name_shows_why_and_keeps_nothing(shop: Any, name: str, message: str) -> None:
    app = shop.build_app()
    async with device(app, "Laptop") as client:
        response = await client.post("/login", data={"user": name})
        assert response.status_code == 400
        assert f'<p class="error" role="alert">{message}</p>' in response.text
        assert "sid" not in client.cookies
        assert "set-cookie" not in response.headers
        assert "Sign in" in (await client.get("/")).text
        # the longest name allowed signs in
        await client.post("/login", data={"user": "y" * 40})
        assert f'signed in as <a href="/account"><b>{"y" * 40}</b>' in (await client.get("/")).text
    await app.sessions.aclose()
