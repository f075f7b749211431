"""docs/migrating.md: its python blocks run as pasted, and what it says about satchel and about
the libraries it compares with (the Starlette and starsessions versions in uv.lock) is true."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
import satchel
from satchel.testing import store_key
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

PAGE = Path(__file__).resolve().parents[1] / "docs" / "migrating.md"
BLOCKS = [str(b) for b in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)]
KEY = secrets.token_urlsafe(32)
STARLETTE_SAYS = "SessionMiddleware must be installed to access request.session"


def block(marker: str) -> dict[str, Any]:
    [code] = [b for b in BLOCKS if marker in b]
    namespace: dict[str, Any] = {"__name__": "migrating_example"}
    exec(compile(code, str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def client(app: Any, base_url: str = "http://localhost") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=base_url)


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_every_block_of_the_page_is_run_here() -> None:
    # a new block needs a test below (or a "# fragment" first line and a compile check)
    assert len(BLOCKS) == 3
    assert not [b for b in BLOCKS if b.startswith("# fragment")]


@pytest.mark.anyio
async def test_the_dict_app_keeps_a_theme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_KEY", KEY)
    app = block("async def theme")["app"]
    async with client(app) as browser:
        assert (await browser.get("/theme?theme=dark")).json() == {"theme": "dark"}
        only_read = await browser.get("/theme")
        assert only_read.json() == {"theme": "dark"}
        assert set_cookies(only_read) == []  # nothing changed, nothing sent


@pytest.mark.anyio
async def test_the_starsessions_lifetimes_side_by_side() -> None:
    page = block("from_creation")
    for name, max_age in (("from_creation", "3600"), ("idle", "3600")):

        async def put(request: Request) -> JSONResponse:
            satchel.sessions_of(request).set({"n": 1})
            return JSONResponse("ok")

        app = satchel.SessionMiddleware(Starlette(routes=[Route("/", put)]), page[name])
        async with client(app) as browser:
            [cookie] = set_cookies(await browser.get("/"))
            assert f"Max-Age={max_age};" in cookie, name
    assert page["from_creation"].mapping(dict).max_lifetime == 3600
    assert page["from_creation"].mapping(dict).max_age is None
    assert page["idle"].mapping(dict).rolling is True


@pytest.mark.parametrize("as_raw_bytes", [False, True])
@pytest.mark.anyio
async def test_an_aiohttp_session_fernet_key_is_taken_by_encrypt(
    as_raw_bytes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from cryptography.fernet import Fernet

    fernet_key = Fernet.generate_key()
    monkeypatch.setenv("SESSION_FERNET_KEY", fernet_key.decode())
    page = block("SESSION_FERNET_KEY")
    sessions = page["sessions"]
    if as_raw_bytes:  # what aiohttp-session's own example passes
        from satchel_crypto import Encrypt

        raw = base64.urlsafe_b64decode(fernet_key)
        sessions = satchel.Sessions(satchel.cookie(dict, "AIOHTTP_SESSION", transformers=[Encrypt(raw)]))

    async def visit(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        data = await s.get(dict) or {"n": 0}
        data["n"] += 1
        s.set(data)
        return JSONResponse(data)

    async with client(satchel.SessionMiddleware(Starlette(routes=[Route("/", visit)]), sessions)) as browser:
        assert [(await browser.get("/")).json()["n"] for _ in range(3)] == [1, 2, 3]
        assert '"n"' not in browser.cookies["AIOHTTP_SESSION"]


# -- what the page says about satchel --------------------------------------------------------


def dict_app(*, storage: Any = None, serializer: str | None = None) -> Any:
    sessions = satchel.Sessions(
        satchel.cookie(
            dict, "session", storage=storage, serializer=serializer, transformers=[satchel.Sign(KEY)]
        )
    )

    async def put(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        s.set({"cart": ["apple"]})
        return JSONResponse("ok")

    async def append(request: Request) -> JSONResponse:
        data = await satchel.sessions_of(request).get(dict)
        assert data is not None
        data["cart"].append("pear")  # a change deep inside: no set() call
        return JSONResponse("ok")

    async def empty(request: Request) -> JSONResponse:
        data = await satchel.sessions_of(request).get(dict)
        assert data is not None
        data.clear()
        return JSONResponse("ok")

    async def clear(request: Request) -> JSONResponse:
        satchel.sessions_of(request).clear(dict)
        return JSONResponse("ok")

    async def read(request: Request) -> JSONResponse:
        return JSONResponse(await satchel.sessions_of(request).get(dict))

    async def legacy(request: Request) -> JSONResponse:
        return JSONResponse(request.session)

    async def session_id(request: Request) -> JSONResponse:
        return JSONResponse(await satchel.sessions_of(request).session_id(dict))

    paths = {"/put": put, "/append": append, "/empty": empty, "/clear": clear, "/read": read}
    paths |= {"/legacy": legacy, "/id": session_id}
    routes = [Route(path, handler) for path, handler in paths.items()]
    return satchel.SessionMiddleware(Starlette(routes=routes), sessions)


@pytest.mark.anyio
async def test_a_change_inside_a_nested_value_is_saved() -> None:
    async with client(dict_app()) as browser:
        await browser.get("/put")
        await browser.get("/append")
        assert (await browser.get("/read")).json() == {"cart": ["apple", "pear"]}


@pytest.mark.anyio
async def test_an_emptied_dict_is_kept_and_clear_deletes_the_cookie() -> None:
    async with client(dict_app()) as browser:
        await browser.get("/put")
        assert set_cookies(await browser.get("/empty"))  # sent again, holding {}
        assert "session" in browser.cookies
        assert (await browser.get("/read")).json() == {}
        await browser.get("/clear")
        assert "session" not in browser.cookies
        assert (await browser.get("/read")).json() is None


@pytest.mark.anyio
async def test_a_json_session_is_stored_inside_satchels_own_record() -> None:
    store = satchel.MemoryStorage()
    async with client(dict_app(storage=store, serializer="json")) as browser:
        await browser.get("/put")
        session_id = (await browser.get("/id")).json()
    stored = await store.read(store_key(session_id))
    assert stored is not None
    assert b'{"cart":["apple"]}' in stored  # the value is JSON...
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):  # ...the entry is not
        json.loads(stored)


@pytest.mark.parametrize("option", [{"same_site": "none"}, {"partitioned": True}])
def test_same_site_none_and_partitioned_force_secure(option: dict[str, Any]) -> None:
    forced = satchel.cookie(dict, "session", transformers=[satchel.Sign(KEY)], **option)
    assert forced.attributes is not None
    assert forced.attributes.secure is True
    with pytest.raises(satchel.ConfigError, match="requires secure=True"):
        satchel.cookie(dict, "session", transformers=[satchel.Sign(KEY)], secure=False, **option)


@pytest.mark.anyio
async def test_request_session_is_filled_only_when_offered() -> None:
    assert f'"{STARLETTE_SAYS}"' in PAGE.read_text()  # the page quotes what the reader will see
    async with client(dict_app()) as browser:
        with pytest.raises(AssertionError, match=re.escape(STARLETTE_SAYS)):
            await browser.get("/legacy")
    offered = satchel.Sessions(
        satchel.cookie(dict, "session", transformers=[satchel.Sign(KEY)]), request_session="session"
    )

    async def library(request: Request) -> JSONResponse:
        request.session["user"] = "ada"
        return JSONResponse("ok")

    async def read(request: Request) -> JSONResponse:
        return JSONResponse(await satchel.sessions_of(request).get(dict))

    routes = [Route("/library", library), Route("/read", read)]
    async with client(satchel.SessionMiddleware(Starlette(routes=routes), offered)) as browser:
        await browser.get("/library")
        assert (await browser.get("/read")).json() == {"user": "ada"}


@pytest.mark.anyio
async def test_the_cookie_path_is_slash_when_the_app_is_mounted() -> None:
    outer = Starlette(routes=[Mount("/shop", app=dict_app())])
    async with client(outer) as browser:
        [cookie] = set_cookies(await browser.get("/shop/put"))
        assert "Path=/;" in cookie


@pytest.mark.anyio
async def test_an_aiohttp_key_factory_is_an_identity() -> None:
    store = satchel.MemoryStorage()
    sessions = satchel.Sessions(
        satchel.cookie(dict, "AIOHTTP_SESSION", storage=store, identity=satchel.TokenId(nbytes=32))
    )

    async def put(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        s.set({"n": 1})
        await s.save()
        return JSONResponse(await s.session_id(dict))

    async with client(satchel.SessionMiddleware(Starlette(routes=[Route("/", put)]), sessions)) as browser:
        session_id = (await browser.get("/")).json()
    assert len(session_id) == 43  # 32 bytes, URL-safe base64
    with pytest.raises(satchel.ConfigError):
        satchel.TokenId(nbytes=8)


# -- what the page says about Starlette 1.10 -------------------------------------------------


def starlette_app() -> Any:
    from starlette.middleware.sessions import SessionMiddleware

    async def put(request: Request) -> JSONResponse:
        request.session["cart"] = ["apple"]
        return JSONResponse("ok")

    async def append(request: Request) -> JSONResponse:
        request.session["cart"].append("pear")
        return JSONResponse("ok")

    async def empty(request: Request) -> JSONResponse:
        request.session.clear()
        return JSONResponse("ok")

    async def read(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.session))

    paths = {"/put": put, "/append": append, "/empty": empty, "/read": read}
    return Starlette(
        routes=[Route(path, handler) for path, handler in paths.items()],
        middleware=[Middleware(SessionMiddleware, secret_key=KEY)],
    )


@pytest.mark.anyio
async def test_starlette_sends_the_cookie_only_on_change_and_varies_on_cookie() -> None:
    async with client(starlette_app()) as browser:
        assert set_cookies(await browser.get("/put"))
        read = await browser.get("/read")
        assert set_cookies(read) == []
        assert read.headers["vary"] == "Cookie"


@pytest.mark.anyio
async def test_starlette_loses_a_change_inside_a_nested_value() -> None:
    async with client(starlette_app()) as browser:
        await browser.get("/put")
        await browser.get("/append")
        assert (await browser.get("/read")).json() == {"cart": ["apple"]}


@pytest.mark.anyio
async def test_starlette_deletes_the_cookie_of_an_emptied_session() -> None:
    async with client(starlette_app()) as browser:
        await browser.get("/put")
        [cookie] = set_cookies(await browser.get("/empty"))
        assert "expires=Thu, 01 Jan 1970" in cookie


# -- what the page says about starsessions 2.2.1 ---------------------------------------------


def starsessions_app(**options: Any) -> Any:
    from starsessions import InMemoryStore, SessionAutoloadMiddleware, SessionMiddleware

    async def put(request: Request) -> JSONResponse:
        request.session["n"] = 1
        return JSONResponse("ok")

    async def read(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.session))

    inner = Starlette(
        routes=[Route("/put", put), Route("/read", read)],
        middleware=[
            Middleware(SessionMiddleware, store=InMemoryStore(), cookie_https_only=False, **options),
            Middleware(SessionAutoloadMiddleware),
        ],
    )
    return Starlette(routes=[Mount("/shop", app=inner)])


@pytest.mark.anyio
async def test_starsessions_lifetime_counts_from_creation_by_default() -> None:
    async with client(starsessions_app(lifetime=3600)) as browser:
        await browser.get("/shop/put")
        # unchanged, yet written and sent again, with what is left of the hour (never more)
        [cookie] = set_cookies(await browser.get("/shop/read"))
        left = int(re.findall(r"max-age=(\d+)", cookie)[0])
        assert 3590 <= left <= 3600


@pytest.mark.anyio
async def test_starsessions_cookie_path_is_the_mount_path_by_default() -> None:
    async with client(starsessions_app()) as browser:
        [cookie] = set_cookies(await browser.get("/shop/put"))
        assert "path=/shop;" in cookie


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
