"""``Sessions(request_session=...)``: a satchel mapping offered as Starlette's ``request.session``,
used through Starlette's own ``request.session`` API the way libraries use it (an OAuth client
keeps its state there between the redirect and the callback)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import satchel
from satchel.testing import store_key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

pytestmark = pytest.mark.usefixtures("both_paths")

SIGN_KEY = "_p6ZHpng5Rwf6pgfRJfaslYjyRlMdfUq0QlDazDhb-s"


class CountingStorage(satchel.MemoryStorage):
    """Real memory storage that counts reads, to see when the middleware asks it."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, id: str) -> bytes | None:
        self.reads += 1
        return await super().read(id)


MAPPINGS: dict[str, Callable[[], satchel.Mapping[Any]]] = {
    "signed": lambda: satchel.cookie(dict, "session", transformers=[satchel.Sign(SIGN_KEY)]),
    "server-side": lambda: satchel.cookie(dict[str, Any], "session", storage=CountingStorage()),
}


# -- a tiny app written only against Starlette's public request.session API -----------


async def login(request: Request) -> RedirectResponse:
    state = secrets.token_urlsafe(16)
    request.session["oauth_state"] = state  # as an OAuth client keeps its state
    return RedirectResponse(f"/callback?state={state}", status_code=302)


async def callback(request: Request) -> JSONResponse:
    expected = request.session.pop("oauth_state", None)
    if expected is None or expected != request.query_params.get("state"):
        return JSONResponse({"error": "bad state"}, status_code=400)
    request.session["user"] = {"name": "ada", "roles": ["admin"]}
    return JSONResponse({"signed_in": "ada"})


async def me(request: Request) -> JSONResponse:
    return JSONResponse(request.session.get("user"))


async def promote(request: Request) -> JSONResponse:
    request.session["user"]["roles"].append("owner")  # a nested change, in place
    return JSONResponse("ok")


async def logout(request: Request) -> JSONResponse:
    request.session.clear()
    return JSONResponse("bye")


async def grow(request: Request) -> JSONResponse:
    request.session["blob"] = os.urandom(6000).hex()  # more than a cookie carries
    return JSONResponse("grown")


async def unsavable(request: Request) -> JSONResponse:
    request.session["handle"] = object()  # nothing the serializer can write
    return JSONResponse("kept")


async def through_satchel(request: Request) -> JSONResponse:
    same = await satchel.sessions_of(request).get("session") is request.session
    return JSONResponse(same)


ROUTES = [
    Route(f"/{f.__name__}", f, methods=["GET", "POST"])
    for f in (login, callback, me, promote, logout, grow, unsavable, through_satchel)
]


def app_for(mapping: satchel.Mapping[Any]) -> tuple[Any, satchel.Sessions]:
    sessions = satchel.Sessions(mapping, request_session=mapping.name)
    return satchel.SessionMiddleware(Starlette(routes=ROUTES), sessions), sessions


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="https://testserver")


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


@pytest.fixture(params=[*MAPPINGS, "sqlite, signed ID"])
async def mapping(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[satchel.Mapping[Any]]:
    if request.param in MAPPINGS:
        yield MAPPINGS[request.param]()
        return
    pytest.importorskip("satchel_sqlite")
    url = f"sqlite:///{tmp_path}/sessions.db"
    m = satchel.cookie(dict, "session", storage=url, transformers=[satchel.Sign(SIGN_KEY)])
    yield m
    await m.store.aclose()


@pytest.mark.anyio
async def test_an_oauth_state_round_trip_through_request_session(mapping: satchel.Mapping[Any]) -> None:
    app, _ = app_for(mapping)
    async with client(app) as c:
        redirect = await c.get("/login")
        assert redirect.status_code == 302
        [cookie] = set_cookies(redirect)  # one cookie: nobody else writes "session"
        assert cookie.startswith("session=")
        assert "private" in redirect.headers["cache-control"]
        assert redirect.headers["vary"] == "Cookie"
        done = await c.get(redirect.headers["location"])
        assert done.json() == {"signed_in": "ada"}
        # stateless: the new value travels; server-side: the stored session changed and the
        # browser keeps the ID it holds, so no cookie is sent again
        assert len(set_cookies(done)) == (1 if mapping.storage is None else 0)
        assert (await c.get("/me")).json() == {"name": "ada", "roles": ["admin"]}
        # the state was popped: replaying the callback fails
        assert (await c.get(redirect.headers["location"])).status_code == 400


@pytest.mark.anyio
async def test_a_forged_state_is_refused(mapping: satchel.Mapping[Any]) -> None:
    app, _ = app_for(mapping)
    async with client(app) as c:
        await c.get("/login")
        assert (await c.get("/callback?state=forged")).status_code == 400


@pytest.mark.anyio
async def test_an_unchanged_session_writes_nothing(mapping: satchel.Mapping[Any]) -> None:
    app, _ = app_for(mapping)
    async with client(app) as c:
        await c.get(f"/callback?state={(await c.get('/login')).headers['location'].split('=')[1]}")
        response = await c.get("/me")
        assert response.json()["name"] == "ada"
        assert set_cookies(response) == []
        assert "cache-control" not in response.headers
        assert response.headers["vary"] == "Cookie"


@pytest.mark.anyio
async def test_a_nested_change_in_place_is_saved(mapping: satchel.Mapping[Any]) -> None:
    app, _ = app_for(mapping)
    async with client(app) as c:
        await c.get((await c.get("/login")).headers["location"])
        assert (await c.get("/promote")).json() == "ok"
        assert (await c.get("/me")).json()["roles"] == ["admin", "owner"]


@pytest.mark.anyio
async def test_clearing_request_session_ends_the_session(mapping: satchel.Mapping[Any]) -> None:
    app, _ = app_for(mapping)
    async with client(app) as c:
        await c.get((await c.get("/login")).headers["location"])
        signed_in = c.cookies["session"]
        response = await c.get("/logout")
        [deletion] = set_cookies(response)
        assert deletion.startswith("session=;")
        assert "Max-Age=0" in deletion
        assert (await c.get("/me")).json() is None
    if mapping.storage is not None:  # deletion wins: the old cookie opens nothing any more
        async with client(app) as thief:
            thief.cookies.set("session", signed_in, domain="testserver.local")
            assert (await thief.get("/me")).json() is None


@pytest.mark.anyio
async def test_a_request_without_the_cookie_gets_an_empty_dict_and_no_storage_call() -> None:
    storage = CountingStorage()
    app, _ = app_for(satchel.cookie(dict, "session", storage=storage))
    async with client(app) as c:
        response = await c.get("/me")
        assert response.json() is None
        assert set_cookies(response) == []
        assert storage.reads == 0
        c.cookies.set("session", "garbage", domain="testserver.local")
        assert (await c.get("/me")).json() is None
        assert storage.reads == 0  # an ID the server could not have issued: refused unread


@pytest.mark.anyio
async def test_a_tampered_cookie_reads_as_an_empty_dict(mapping: satchel.Mapping[Any]) -> None:
    app, _ = app_for(mapping)
    async with client(app) as c:
        await c.get((await c.get("/login")).headers["location"])
        value = c.cookies["session"]
        tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
        c.cookies.clear()
        c.cookies.set("session", tampered, domain="testserver.local")
        response = await c.get("/me")
        assert response.json() is None
        assert set_cookies(response) == []


@pytest.mark.anyio
async def test_growth_past_the_cookie_keeps_the_last_good_value(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = app_for(MAPPINGS["signed"]())
    async with client(app) as c:
        await c.get((await c.get("/login")).headers["location"])
        with caplog.at_level("ERROR", logger="satchel"):
            response = await c.get("/grow")
        assert response.json() == "grown"  # the handler's answer stands
        assert set_cookies(response) == []
        assert caplog.text.count("cannot be saved") == 1
        assert (await c.get("/me")).json() == {"name": "ada", "roles": ["admin"]}


@pytest.mark.anyio
async def test_a_new_session_too_large_to_send_is_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = app_for(MAPPINGS["signed"]())
    async with client(app) as c:
        with caplog.at_level("ERROR", logger="satchel"):
            response = await c.get("/grow")
        assert response.status_code == 200
        assert set_cookies(response) == []
        assert "cannot be saved" in caplog.text


@pytest.mark.anyio
async def test_a_value_the_serializer_cannot_write_keeps_the_last_good_one(
    mapping: satchel.Mapping[Any], caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = app_for(mapping)
    async with client(app) as c:
        with caplog.at_level("ERROR", logger="satchel"):
            fresh = await c.get("/unsavable")  # a new session: nothing is sent
        assert fresh.json() == "kept"
        assert set_cookies(fresh) == []
        await c.get((await c.get("/login")).headers["location"])
        with caplog.at_level("ERROR", logger="satchel"):
            response = await c.get("/unsavable")
        assert response.json() == "kept"
        assert set_cookies(response) == []
        assert caplog.text.count("cannot be saved") == 2
        assert (await c.get("/me")).json() == {"name": "ada", "roles": ["admin"]}


@pytest.mark.anyio
async def test_satchel_and_request_session_share_one_value(mapping: satchel.Mapping[Any]) -> None:
    app, _ = app_for(mapping)
    async with client(app) as c:
        await c.get((await c.get("/login")).headers["location"])
        assert (await c.get("/through_satchel")).json() is True


@pytest.mark.anyio
async def test_a_handler_set_after_the_load_wins_over_request_session() -> None:
    async def both(request: Request) -> JSONResponse:
        request.session["from"] = "request.session"
        satchel.sessions_of(request).set({"from": "set()"}, key=dict)
        return JSONResponse("ok")

    sessions = satchel.Sessions(
        satchel.cookie(dict, "session", transformers=[satchel.Sign(SIGN_KEY)]), request_session=dict
    )
    app = satchel.SessionMiddleware(Starlette(routes=[*ROUTES, Route("/both", both)]), sessions)
    async with client(app) as c:
        await c.get("/both")
        async with sessions.detached(cookies={"session": c.cookies["session"]}) as s:
            assert await s.get(dict) == {"from": "set()"}


@pytest.mark.anyio
async def test_a_regenerate_keeps_what_request_session_holds_under_a_new_id(
    mapping: satchel.Mapping[Any],
) -> None:
    async def sign_in(request: Request) -> JSONResponse:
        request.session["user"] = {"name": "ada", "roles": []}
        satchel.sessions_of(request).regenerate("session")  # fixation: a new ID at sign-in
        return JSONResponse("ok")

    sessions = satchel.Sessions(mapping, request_session="session")
    app = satchel.SessionMiddleware(Starlette(routes=[*ROUTES, Route("/sign_in", sign_in)]), sessions)
    async with client(app) as c:
        await c.get("/login")
        before = c.cookies["session"]
        await c.get("/sign_in")
        assert c.cookies["session"] != before
        assert (await c.get("/me")).json() == {"name": "ada", "roles": []}
    if mapping.storage is not None:
        async with sessions.detached(cookies={"session": before}) as old:
            assert await old.get("session") is None  # the pre-sign-in ID was ended


@pytest.mark.anyio
async def test_request_session_on_a_websocket() -> None:
    async def ws(websocket: WebSocket) -> None:
        websocket.session["seen"] = True  # saved when the handshake is accepted
        await websocket.accept()
        await websocket.close()

    sessions = satchel.Sessions(
        satchel.cookie(dict, "session", storage=satchel.MemoryStorage()), request_session=dict
    )
    app = satchel.SessionMiddleware(Starlette(routes=[WebSocketRoute("/ws", ws)]), sessions)
    scope = {"type": "websocket", "scheme": "wss", "headers": [], "path": "/ws", "query_string": b""}
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    assert sent[0]["type"] == "websocket.accept"
    cookie = dict(sent[0]["headers"])[b"set-cookie"].decode().split(";")[0].split("=", 1)[1]
    async with sessions.detached(cookies={"session": cookie}) as s:
        assert await s.get(dict) == {"seen": True}


@pytest.mark.anyio
async def test_no_request_session_without_the_option() -> None:
    async def peek(request: Request) -> JSONResponse:
        return JSONResponse("session" in request.scope)

    sessions = satchel.Sessions(satchel.cookie(dict, "session", transformers=[satchel.Sign(SIGN_KEY)]))
    async with client(satchel.SessionMiddleware(Starlette(routes=[Route("/", peek)]), sessions)) as c:
        assert (await c.get("/")).json() is False


class Login(msgspec.Struct):
    user: str


@pytest.mark.parametrize("type_", [Login, dict[str, int], dict[int, Any]])
def test_a_mapping_that_is_not_a_dict_of_strings_is_refused(type_: Any) -> None:
    with pytest.raises(satchel.ConfigError, match=r"satchel\.cookie\(dict, 'session'"):
        satchel.Sessions(
            satchel.cookie(type_, "session", transformers=[satchel.Sign(SIGN_KEY)]), request_session="session"
        )


def test_an_unknown_request_session_mapping_is_refused() -> None:
    with pytest.raises(satchel.ConfigError, match="no session mapping for 'nope'"):
        satchel.Sessions(
            satchel.cookie(dict, "session", transformers=[satchel.Sign(SIGN_KEY)]), request_session="nope"
        )


class DownStorage(satchel.MemoryStorage):
    """Real memory storage whose reads fail, as a storage that went away does."""

    async def read(self, id: str) -> bytes | None:
        raise ConnectionError("storage down")


@pytest.mark.anyio
@pytest.mark.parametrize("policy", ["raise", "ignore"])
async def test_a_storage_outage_at_the_early_load_follows_the_mappings_policy(policy: Any) -> None:
    storage = DownStorage()
    mapping = satchel.cookie(dict, "session", storage=storage, on_storage_error=policy)
    app, sessions = app_for(mapping)
    async with sessions.detached() as s:
        s.set({"user": {"name": "ada"}}, key=dict)
    async with client(app) as c:
        c.cookies.set("session", s.headers[0][1].split(";")[0].split("=", 1)[1], domain="testserver.local")
        if policy == "raise":
            with pytest.raises(satchel.StorageError):
                await c.get("/me")
        else:
            assert (await c.get("/me")).json() is None


# -- saving early: save() takes in request.session first ----------------------------------


class WriteCountingStorage(satchel.MemoryStorage):
    """Real memory storage that counts writes, to see a session written once, not twice."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        self.writes += 1
        await super().write(id, data, ttl)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        self.writes += 1
        return await super().write_if(id, data, ttl, expected=expected)


async def stored(mapping: satchel.Mapping[Any], request: Request) -> bytes | None:
    """The storage entry of this request's session, read from the storage itself."""
    session_id = await satchel.sessions_of(request).session_id("session")
    assert session_id is not None, "save() gave the session no ID: nothing was written"
    return await mapping.store.read(store_key(session_id))


@pytest.mark.anyio
async def test_save_writes_request_session_before_the_response_starts() -> None:
    """The "Saving early" pattern: what was put in request.session is in storage once
    save() returns (a StorageError would reach the handler), and written only that once."""
    storage = WriteCountingStorage()
    mapping = satchel.cookie(dict, "session", storage=storage)
    seen: dict[str, Any] = {}

    async def sign_in(request: Request) -> JSONResponse:
        request.session["user"] = "ada"
        await satchel.sessions_of(request).save()
        seen["entry"], seen["writes"] = await stored(mapping, request), storage.writes
        return JSONResponse("ok")

    sessions = satchel.Sessions(mapping, request_session="session")
    app = satchel.SessionMiddleware(Starlette(routes=[*ROUTES, Route("/sign_in", sign_in)]), sessions)
    async with client(app) as c:
        response = await c.get("/sign_in")
        assert seen["entry"] is not None
        assert b"ada" in seen["entry"]
        assert seen["writes"] == 1
        assert storage.writes == 1  # response start found nothing more to write
        assert len(set_cookies(response)) == 1
        assert (await c.get("/me")).json() == "ada"


@pytest.mark.anyio
async def test_changes_to_request_session_after_save_are_still_saved_at_response_start(
    tmp_path: Path,
) -> None:
    """save() takes in the dict, it does not freeze it: a change after it is written at
    response start, an emptied dict still ends the session."""
    pytest.importorskip("satchel_sqlite")
    mapping = satchel.cookie(dict, "session", storage=f"sqlite:///{tmp_path}/sessions.db")
    early: list[bytes | None] = []

    async def sign_in(request: Request) -> JSONResponse:
        request.session["user"] = {"name": "ada", "roles": []}
        await satchel.sessions_of(request).save()
        early.append(await stored(mapping, request))
        request.session["user"]["roles"].append("admin")  # after save(), in place
        return JSONResponse("ok")

    async def sign_out(request: Request) -> JSONResponse:
        request.session["user"]["roles"].append("gone")
        await satchel.sessions_of(request).save()
        early.append(await stored(mapping, request))
        request.session.clear()  # after save(): ends the session all the same
        return JSONResponse("bye")

    sessions = satchel.Sessions(mapping, request_session="session")
    routes = [*ROUTES, Route("/sign_in", sign_in), Route("/sign_out", sign_out)]
    app = satchel.SessionMiddleware(Starlette(routes=routes), sessions)
    try:
        async with client(app) as c:
            await c.get("/sign_in")
            assert early[0] is not None
            assert b"admin" not in early[0]
            assert (await c.get("/me")).json() == {"name": "ada", "roles": ["admin"]}
            signed_in = c.cookies["session"]
            [deletion] = set_cookies(await c.get("/sign_out"))
            assert early[1] is not None
            assert b"gone" in early[1]
            assert "Max-Age=0" in deletion
        async with sessions.detached(cookies={"session": signed_in}) as s:
            assert await s.get("session") is None
    finally:
        await mapping.store.aclose()
