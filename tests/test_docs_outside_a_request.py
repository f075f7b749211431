"""The examples of docs/outside-a-request.md, taken from the page itself, run as written."""

from __future__ import annotations

import asyncio
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import satchel
from starlette.applications import Starlette
from starlette.routing import Route

PAGE = Path(__file__).resolve().parents[1] / "docs" / "outside-a-request.md"


def run_page() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S):
        exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Socket:
    """One websocket connection to an ASGI app, driven message by message."""

    def __init__(self, app: Any, path: str, cookie: str) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "scheme": "wss",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"cookie", f"SID={cookie}".encode())],
            "subprotocols": [],
        }
        self.task = asyncio.ensure_future(app(scope, self.incoming.get, self._send))
        self.incoming.put_nowait({"type": "websocket.connect"})

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        await self.outgoing.put(dict(message))

    async def say(self, text: str) -> dict[str, Any]:
        await self.incoming.put({"type": "websocket.receive", "text": text})
        return await self.outgoing.get()


@pytest.mark.anyio
async def test_the_websocket_sees_a_sign_out_made_after_its_handshake() -> None:
    page = run_page()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(page["app"]), base_url="https://testserver"
    ) as c:
        await c.post("/sign-in/ada")
        socket = Socket(page["app"], "/chat", c.cookies["SID"])
        assert (await socket.outgoing.get())["type"] == "websocket.accept"
        assert (await socket.say("hello"))["text"] == "ada: hello"
        await c.post("/sign-out")  # in another tab
        closed = await socket.say("still there?")
        assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
        await socket.task


@pytest.mark.anyio
async def test_the_websocket_keeps_a_renewed_cookie_so_it_renews_once_not_at_every_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past half of max_age the handshake's cookie counts as stale: the first message
    renews the session, and the example keeps the renewed value, so the next ones do not."""
    page = run_page()
    sessions, Login = page["sessions"], page["Login"]
    now = [1_700_000_000.0]
    monkeypatch.setattr(sessions, "clock", lambda: now[0])
    store = sessions.mapping(Login).store
    touched: list[str] = []
    touch = store.touch

    async def counted_touch(id: str, ttl: float | None) -> None:  # the real touch, counted
        touched.append(id)
        await touch(id, ttl)

    monkeypatch.setattr(store, "touch", counted_touch)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(page["app"]), base_url="https://testserver"
    ) as c:
        await c.post("/sign-in/ada")
        socket = Socket(page["app"], "/chat", c.cookies["SID"])
        assert (await socket.outgoing.get())["type"] == "websocket.accept"
        assert (await socket.say("hello"))["text"] == "ada: hello"
        assert touched == []  # a fresh cookie: nothing to renew
        now[0] += sessions.mapping(Login).max_age * 0.6
        for n in range(3):
            assert (await socket.say(f"message {n}"))["text"] == f"ada: message {n}"
        assert len(touched) == 1
        await socket.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await socket.task


@pytest.mark.anyio
async def test_the_job_changes_the_session_by_its_id_and_a_sign_out_wins() -> None:
    page = run_page()
    sessions, Login = page["sessions"], page["Login"]
    app = satchel.SessionMiddleware(
        Starlette(
            routes=[
                Route("/sign-in/{user}", page["sign_in"], methods=["POST"]),
                Route("/sign-out", page["sign_out"], methods=["POST"]),
                Route("/export", page["start_export"], methods=["POST"]),
            ]
        ),
        sessions,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="https://testserver") as c:
        assert (await c.post("/export")).status_code == 401
        await c.post("/sign-in/ada")
        assert (await c.post("/export")).json() == "started"
        session_id, report = page["queue"].pop()
        await page["export_job"](session_id, report)
        async with sessions.detached(cookies={"SID": c.cookies["SID"]}) as s:
            assert await s.get(Login) == Login(user="ada", reports=["export.csv"])
        # signed out before the job runs: the job finds no session and writes nothing
        await c.post("/export")
        await c.post("/sign-out")
        await page["export_job"](*page["queue"].pop())
        async with sessions.detached(ids={Login: session_id}) as s:
            assert await s.get(Login) is None
        assert s.headers == []
