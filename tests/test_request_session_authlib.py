"""``request.session`` from satchel under a real, unmodified library: authlib's Starlette OAuth client.

authlib keeps the OAuth ``state`` (and the redirect URI it must send back) in
``request.session`` between ``authorize_redirect`` and ``authorize_access_token``. Here
satchel alone provides ``request.session`` (no Starlette ``SessionMiddleware``), the app uses
authlib exactly as its documentation shows, and the provider is a small OAuth 2 server
under a real uvicorn on a loopback port, which authlib's own HTTP client calls for the
token and the user's identity.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import satchel
from authlib.integrations.starlette_client import OAuth, OAuthError
from core_helpers import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

pytestmark = pytest.mark.anyio

SIGN_KEY = "3xQn0cY8bW1l4a7VhD2u9sKq6PzRmT5eJfGiNoLyHdA"
CLIENT_ID = "satchel-shop"
CLIENT_SECRET = "s3cr3t-shared-with-the-provider"
MEMBERS = {"ada"}  # who may sign in to the app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # authlib's HTTP client and the SQLite storage both run on asyncio here


# -- the provider: a tiny OAuth 2 authorization server ------------------------------------


class Provider:
    """Single-use codes at /authorize, a token for one at /token, the user's name at /userinfo."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, str]] = {}
        self.tokens: dict[str, str] = {}
        self.token_requests = 0
        self.app = Starlette(
            routes=[
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
            ]
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code" or not q.get("state"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        # the user "signs in" here; a test picks who with login_as
        self.codes[code] = {"redirect_uri": q["redirect_uri"], "user": q.get("login_as", "ada")}
        query = urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        # the form by hand: Starlette's form parser needs a package this project does not use
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant["redirect_uri"] != form.get("redirect_uri")
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access_token = secrets.token_urlsafe(24)
        self.tokens[access_token] = grant["user"]
        return JSONResponse({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600})

    async def userinfo(self, request: Request) -> Response:
        user = self.tokens.get(request.headers.get("authorization", "").removeprefix("Bearer "))
        if user is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"sub": user})


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[Provider, str]]:
    p = Provider()
    with serve(p.app) as host:  # serve runs any ASGI app under uvicorn
        yield p, f"http://{host}"


# -- the app: authlib's Starlette client, with satchel's request.session ------------------


def shop(mapping: satchel.Mapping[Any], provider_url: str) -> satchel.SessionMiddleware:
    oauth = OAuth()
    oauth.register(
        "provider",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorize_url=f"{provider_url}/authorize",
        access_token_url=f"{provider_url}/token",
        api_base_url=f"{provider_url}/",
    )

    async def login(request: Request) -> Response:
        redirect_uri = request.url_for("auth")
        response: Response = await oauth.provider.authorize_redirect(request, redirect_uri)
        return response

    async def auth(request: Request) -> Response:
        try:
            token = await oauth.provider.authorize_access_token(request)
        except OAuthError as e:  # MismatchingStateError among them: a state this browser did not start
            return JSONResponse({"error": e.error}, status_code=400)
        user = (await oauth.provider.get("userinfo", token=token)).json()["sub"]
        if user not in MEMBERS:
            return JSONResponse({"error": "not a member"}, status_code=403)
        request.session["user"] = user
        return JSONResponse({"signed_in": user})

    async def me(request: Request) -> Response:
        return JSONResponse(dict(request.session))  # everything the session holds

    app = Starlette(routes=[Route("/login", login), Route("/auth", auth), Route("/me", me)])
    return satchel.SessionMiddleware(app, satchel.Sessions(mapping, request_session=dict))


@pytest.fixture(params=["signed", "server-side sqlite"])
async def mapping(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[satchel.Mapping[Any]]:
    if request.param == "signed":
        yield satchel.cookie(dict, "session", transformers=[satchel.Sign(SIGN_KEY)])
        return
    pytest.importorskip("satchel_sqlite")
    m = satchel.cookie(dict, "session", storage=f"sqlite:///{tmp_path}/sessions.db")
    yield m
    await m.store.aclose()


def browser(app: satchel.SessionMiddleware) -> httpx.AsyncClient:
    """The user's browser at the app (https, so the Secure cookie is kept)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="https://testserver")


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def at_provider(authorize_url: str, **extra: str) -> str:
    """The browser's visit to the provider: the user signs in there and is sent back with a code."""
    with httpx.Client() as c:
        response = c.get(f"{authorize_url}&{urlencode(extra)}" if extra else authorize_url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


# -- the tests -------------------------------------------------------------------------------


async def test_authlib_signs_the_user_in_with_its_state_kept_by_satchel(
    mapping: satchel.Mapping[Any], provider: tuple[Provider, str]
) -> None:
    p, url = provider
    async with browser(shop(mapping, url)) as c:
        login = await c.get("/login")
        assert login.status_code == 302
        assert login.headers["location"].startswith(f"{url}/authorize?")
        [cookie] = set_cookies(login)  # satchel's, and nobody else's
        assert cookie.startswith("session=")
        assert "Secure" in cookie
        state = state_of(login.headers["location"])
        if mapping.storage is not None:  # server-side: only an ID travels
            assert state not in cookie
            assert len(c.cookies["session"]) < 100
        [key] = (await c.get("/me")).json()
        assert key.startswith("_state_provider_")  # where authlib keeps it, until the callback

        callback = at_provider(login.headers["location"])
        assert callback.startswith("https://testserver/auth?")
        before = p.token_requests
        done = await c.get(callback)
        assert done.status_code == 200, done.text
        assert done.json() == {"signed_in": "ada"}
        assert p.token_requests == before + 1
        # stateless: the new value travels; server-side: the stored session changed and the
        # browser keeps the ID it holds, so no cookie is sent again
        assert len(set_cookies(done)) == (1 if mapping.storage is None else 0)
        # authlib popped its state: only the user is left
        assert (await c.get("/me")).json() == {"user": "ada"}

        replay = await c.get(callback)
        assert replay.status_code == 400
        assert replay.json() == {"error": "mismatching_state"}
        assert p.token_requests == before + 1  # refused by authlib, before asking the provider
        assert set_cookies(replay) == []
        assert (await c.get("/me")).json() == {"user": "ada"}


async def test_a_callback_with_a_wrong_state_is_refused_and_signs_nobody_in(
    mapping: satchel.Mapping[Any], provider: tuple[Provider, str]
) -> None:
    p, url = provider
    app = shop(mapping, url)
    async with browser(app) as c:
        # no flow started: nothing to match, and no session is made
        cold = await c.get("/auth", params={"code": "whatever", "state": "forged"})
        assert cold.status_code == 400
        assert set_cookies(cold) == []

        login = await c.get("/login")
        callback = at_provider(login.headers["location"])
        code = parse_qs(urlsplit(callback).query)["code"][0]
        before = p.token_requests
        forged = await c.get("/auth", params={"code": code, "state": "forged"})
        assert forged.status_code == 400
        assert set_cookies(forged) == []  # the session is as /login left it
        assert "user" not in (await c.get("/me")).json()
        assert p.token_requests == before

    # a callback started in another browser (an attacker's, say) signs this one in as nobody
    async with browser(app) as victim:
        await victim.get("/login")
        refused = await victim.get(callback)
        assert refused.status_code == 400
        assert "user" not in (await victim.get("/me")).json()
        assert p.token_requests == before


async def test_a_flow_that_ends_without_a_user_ends_the_session(
    mapping: satchel.Mapping[Any], provider: tuple[Provider, str]
) -> None:
    """authlib empties request.session when it pops its state; nothing else is put there, so the
    session ends: the cookie is deleted, and a server-side one opens nothing afterwards."""
    _, url = provider
    app = shop(mapping, url)
    async with browser(app) as c:
        login = await c.get("/login")
        with_state = c.cookies["session"]
        refused = await c.get(at_provider(login.headers["location"], login_as="mallory"))
        assert refused.status_code == 403
        [deletion] = set_cookies(refused)
        assert deletion.startswith("session=;")
        assert "Max-Age=0" in deletion
        assert (await c.get("/me")).json() == {}
    if mapping.storage is not None:
        async with browser(app) as replayer:
            replayer.cookies.set("session", with_state, domain="testserver.local")
            assert (await replayer.get("/me")).json() == {}
