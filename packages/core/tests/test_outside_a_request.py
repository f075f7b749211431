"""``Sessions.detached``: a session read and changed outside a request, through the request
path's own code, with the headers a response would have carried handed back."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
import satchel
from core_helpers import KEY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("both_paths")]


class Login(msgspec.Struct):
    user: str


class Cart(msgspec.Struct):
    items: list[str] = []


class Api(msgspec.Struct):
    token: str


def build() -> tuple[satchel.Sessions, satchel.MemoryStorage]:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=storage, transformers=[satchel.Sign(KEY)]),
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
        satchel.header(Api, "X-Api", storage=storage),
    )
    return sessions, storage


def cookie_value(headers: list[tuple[str, str]], name: str) -> str:
    [value] = [
        v.split(";")[0].split("=", 1)[1] for k, v in headers if k == "set-cookie" and v.startswith(f"{name}=")
    ]
    return value


def app_for(sessions: satchel.Sessions) -> Any:
    async def whoami(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        login, cart = await s.get(Login), await s.get(Cart)
        return JSONResponse([login and login.user, cart and cart.items, await s.session_id(Login)])

    return satchel.SessionMiddleware(Starlette(routes=[Route("/", whoami)]), sessions)


async def test_a_session_set_outside_a_request_is_one_the_app_reads() -> None:
    sessions, _ = build()
    async with sessions.detached() as s:
        s.set(Login(user="ada"))
        s.set(Cart(items=["apple"]))
    names = sorted(v.split("=", 1)[0] for k, v in s.headers if k == "set-cookie")
    assert names == ["CART", "SID"]
    assert all("Secure" in v for _, v in s.headers)  # scheme="https" by default
    assert {k for k, _ in s.headers} == {"set-cookie"}  # no Vary, no Cache-Control
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app_for(sessions)), base_url="https://testserver"
    ) as c:
        c.cookies.set("SID", cookie_value(s.headers, "SID"), domain="testserver.local")
        c.cookies.set("CART", cookie_value(s.headers, "CART"), domain="testserver.local")
        user, items, _ = (await c.get("/")).json()
        assert (user, items) == ("ada", ["apple"])


async def test_a_request_s_session_is_changed_and_ended_outside_it() -> None:
    sessions, _ = build()
    async with sessions.detached() as first:
        first.set(Login(user="ada"))
    sid = cookie_value(first.headers, "SID")
    async with sessions.detached(cookies={"SID": sid}) as s:
        assert await s.get(Login) == Login(user="ada")
        s.clear(Login)
    [(name, deletion)] = s.headers
    assert name == "set-cookie"
    assert deletion.startswith("SID=;")
    async with sessions.detached(cookies={"SID": sid}) as again:
        assert await again.get(Login) is None  # the stored session ended: the cookie opens nothing


async def test_a_header_mapping_outside_a_request() -> None:
    sessions, _ = build()
    s = sessions.detached()
    s.set(Api(token="t"))
    [(name, value)] = await s.commit()
    assert name == "x-api"
    async with sessions.detached(headers={"X-Api": value}) as s2:
        assert await s2.get(Api) == Api(token="t")
        s2.clear(Api)
    assert s2.headers == [("x-api", "")]


@pytest.mark.parametrize(
    "given",
    [
        {"cookies": {"SID": "not a session"}},
        {"cookies": {"SID": ""}},
        {"cookies": {"SID": "é" * 50}},
        {"cookies": [("SID", "x" * 100_000)]},
        {"headers": {"X-Api": "é"}},
        {"headers": {"X-Api": "\u2603"}},
        {"ids": {Login: "too-short"}},
        {"ids": {Login: "é" * 43}},
    ],
)
async def test_a_malformed_value_reads_as_no_session(given: dict[str, Any]) -> None:
    sessions, _ = build()
    async with sessions.detached(**given) as s:
        assert await s.get(Login) is None
        assert await s.get(Api) is None
    assert s.headers == []


async def test_a_tampered_stateless_value_reads_as_no_session() -> None:
    sessions, _ = build()
    async with sessions.detached() as s:
        s.set(Cart(items=["apple"]))
    value = cookie_value(s.headers, "CART")
    tampered = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    async with sessions.detached(cookies={"CART": tampered}) as s2:
        assert await s2.get(Cart) is None


async def test_a_session_opened_by_its_id_from_a_handler() -> None:
    sessions, _ = build()
    async with sessions.detached() as s:
        s.set(Login(user="ada"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app_for(sessions)), base_url="https://testserver"
    ) as c:
        c.cookies.set("SID", cookie_value(s.headers, "SID"), domain="testserver.local")
        _, _, session_id = (await c.get("/")).json()
    assert session_id == await s.session_id(Login)
    async with sessions.detached(ids={Login: session_id}) as by_id:
        assert await by_id.get(Login) == Login(user="ada")
    assert by_id.headers == []  # read only: not renewed, nothing to send
    async with sessions.detached(ids={"SID": session_id}) as by_name:
        by_name.regenerate(Login)
    assert cookie_value(by_name.headers, "SID") != cookie_value(s.headers, "SID")
    async with sessions.detached(ids={Login: session_id}) as old:
        assert await old.get(Login) is None  # the old ID was ended


async def test_ids_and_session_id_need_a_server_side_mapping() -> None:
    sessions, _ = build()
    with pytest.raises(satchel.ConfigError, match="stateless: pass its value in cookies= or headers="):
        sessions.detached(ids={Cart: "x" * 43})
    with pytest.raises(satchel.ConfigError, match="stateless: it has no session ID"):
        await sessions.detached().session_id(Cart)


async def test_a_block_that_raises_writes_nothing() -> None:
    sessions, storage = build()
    s = sessions.detached()

    async def job() -> None:
        async with s:
            s.set(Login(user="ada"))
            raise RuntimeError("job failed")

    with pytest.raises(RuntimeError, match="job failed"):
        await job()
    assert s.headers == []
    assert len(storage) == 0


async def test_commit_runs_once() -> None:
    sessions, _ = build()
    s = sessions.detached()
    s.set(Cart(items=["apple"]))
    assert len(await s.commit()) == 1
    with pytest.raises(RuntimeError, match="already committed"):
        await s.commit()


async def test_deletion_wins_against_a_request_still_running() -> None:
    """The same commit as a request's: a clear made outside a request cannot be undone by a
    request that read the session before it and writes after it."""
    sessions, _ = build()
    async with sessions.detached() as s:
        s.set(Login(user="ada"))
    sid = cookie_value(s.headers, "SID")
    running = sessions.detached(cookies={"SID": sid})
    assert await running.get(Login) == Login(user="ada")
    async with sessions.detached(cookies={"SID": sid}) as admin:
        admin.clear(Login)
    running.set(Login(user="ada, changed"))
    await running.commit()
    async with sessions.detached(cookies={"SID": sid}) as check:
        assert await check.get(Login) is None


@pytest.mark.parametrize(
    ("scheme", "server", "secure"),
    [
        ("https", None, True),
        ("http", None, True),  # a real server's plain http: behind a proxy, still Secure
        ("http", ("testserver", 80), False),  # an in-process test client
    ],
)
async def test_scheme_and_server_decide_secure_as_for_a_request(
    scheme: str, server: tuple[str, int] | None, secure: bool
) -> None:
    sessions, _ = build()
    async with sessions.detached(scheme=scheme, server=server) as s:
        s.set(Cart(items=[]))
    [(_, cookie)] = s.headers
    assert ("; Secure" in cookie) is secure


async def test_wrong_argument_types_are_named() -> None:
    sessions, _ = build()
    with pytest.raises(TypeError, match="cookies= takes names and values as strings"):
        sessions.detached(cookies={"SID": b"bytes"})  # type: ignore[arg-type]


async def test_a_wrong_value_type_is_named_without_the_value() -> None:
    """A cookie value is a credential: the error names the key and the type, never the value."""
    sessions, _ = build()
    with pytest.raises(TypeError) as raised:
        sessions.detached(cookies={"SID": b"secret-cookie-value"})  # type: ignore[arg-type]
    assert "secret-cookie-value" not in str(raised.value)
    assert "'SID'" in str(raised.value)
    assert "bytes" in str(raised.value)
