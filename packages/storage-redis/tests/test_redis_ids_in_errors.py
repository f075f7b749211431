"""Session IDs never reach an error message or a log line.

For a server-side session without a transformer the ID is the whole credential, and
with ``on_storage_error="ignore"`` the core logs every failed call with its traceback.
Each test makes a real failure (a closed port, a server that never answers, a dropped
connection, a closed storage) and checks the whole formatted exception, chained causes
included, as logging would print it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import socket
import traceback
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import anyio
import httpx
import msgspec
import pytest
import satchel
from satchel_conformance.servers import free_port
from satchel_redis import RedisStorage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

pytestmark = pytest.mark.anyio

TIMEOUT = 0.5
HANG = 10  # far above TIMEOUT: reaching it means the storage hung


def formatted(exc: BaseException) -> str:
    """What a log line with ``exc_info`` prints: messages and tracebacks of the whole chain."""
    return "".join(traceback.format_exception(exc))


def label(id: str) -> str:
    return f"session sha256:{hashlib.sha256(id.encode()).hexdigest()[:8]}"


@pytest.fixture
def id() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


async def test_refused_connection_names_a_fingerprint_not_the_id(id: str) -> None:
    store = RedisStorage.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=TIMEOUT)
    calls = [
        store.read(id),
        store.write(id, b"x", 60),
        store.write_if(id, b"x", 60, expected=None),
        store.touch(id, 60),
        store.invalidate(id),
    ]
    try:
        for call in calls:
            with anyio.fail_after(HANG), pytest.raises(satchel.StorageError) as caught:
                await call
            assert caught.value.__cause__ is not None
            assert label(id) in str(caught.value)
            assert id not in formatted(caught.value)
    finally:
        await store.aclose()


async def test_a_server_that_never_answers_times_out_without_the_id(id: str, silent_port: int) -> None:
    store = RedisStorage.from_url(f"redis://127.0.0.1:{silent_port}/0", timeout=TIMEOUT)
    try:
        with anyio.fail_after(HANG), pytest.raises(satchel.StorageError, match="did not answer") as caught:
            await store.write(id, b"x", 60)
    finally:
        await store.aclose()
    assert label(id) in str(caught.value)
    assert id not in formatted(caught.value)


class DropFirstScript:
    """A TCP relay to a real Redis that drops the first connection sending a script,
    before the script reaches the server: a reply lost for real."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.dropped = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def upstream() -> None:
            while chunk := await reader.read(65536):
                if not self.dropped and b"EVALSHA" in chunk.upper():
                    self.dropped = True
                    writer.transport.abort()
                    up_writer.transport.abort()
                    return
                up_writer.write(chunk)
                await up_writer.drain()

        async def downstream() -> None:
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()

        try:
            await asyncio.gather(upstream(), downstream())
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
            up_writer.transport.abort()


@pytest.fixture
async def lossy_url(satchel_redis_url: str) -> AsyncIterator[str]:
    target = urlsplit(satchel_redis_url)
    relay = DropFirstScript(target.hostname or "127.0.0.1", target.port or 6379)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}{target.path}"
    finally:
        server.close()


async def test_an_insert_whose_reply_was_lost_names_a_fingerprint(id: str, lossy_url: str) -> None:
    store = RedisStorage.from_url(lossy_url, namespace="lost-reply", timeout=5)
    try:
        with anyio.fail_after(HANG), pytest.raises(satchel.StorageError, match="lost the reply") as caught:
            await store.write_if(id, b"x", 60, expected=None)
    finally:
        await store.aclose()
    assert label(id) in str(caught.value)
    assert id not in formatted(caught.value)


async def test_a_closed_storage_connects_again_on_the_next_call(id: str, satchel_redis_url: str) -> None:
    """aclose() is not final: no "closed" error, so nothing that could name the id."""
    store = RedisStorage.from_url(satchel_redis_url, namespace="closed")
    await store.aclose()
    try:
        await store.write(id, b"x", 60)
        assert await store.read(id) == b"x"
        await store.invalidate(id)
    finally:
        await store.aclose()


class Login(msgspec.Struct):
    user: str


async def test_ignored_outage_logs_no_session_id(
    satchel_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The reported case: a server-side mapping without a transformer, Redis down, and
    ``on_storage_error="ignore"`` logging each failed read with its traceback."""

    async def login(request: Request) -> PlainTextResponse:
        satchel.sessions_of(request).set(Login(user="ada"))
        return PlainTextResponse("ok")

    async def page(request: Request) -> PlainTextResponse:
        found = await satchel.sessions_of(request).get(Login)
        return PlainTextResponse(found.user if found else "anonymous")

    routes = [Route("/login", login), Route("/", page)]
    up = RedisStorage.from_url(satchel_redis_url, namespace="ignored-outage")
    down = RedisStorage.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=TIMEOUT)
    try:
        for storage in (up, down):
            sessions = satchel.Sessions(
                satchel.cookie(Login, "SID", storage=storage, max_age=600, on_storage_error="ignore")
            )
            app = satchel.SessionMiddleware(Starlette(routes=routes), sessions)
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                if storage is up:
                    assert (await client.get("/login")).status_code == 200
                    cookie = client.cookies["SID"]
                    # the ID as stored, whatever else the cookie carries beside it
                    [key] = await up.client.keys("satchel:ignored-outage:*")
                    session_id = key.decode().partition("{")[2].rstrip("}")
                    continue
                client.cookies.set("SID", cookie)
                with caplog.at_level(logging.WARNING, logger="satchel"):
                    response = await client.get("/")
        assert response.text == "anonymous"
    finally:
        await up.aclose()
        await down.aclose()
    assert "storage read failed" in caplog.text
    assert caplog.records[-1].exc_info is not None  # the traceback is in the log ...
    # the core stores a session under a digest of its ID; the ID itself, the credential,
    # is the cookie's value up to its last dot (no transformer here)
    credential = cookie.rpartition(".")[0]
    assert len(session_id) >= 32
    assert len(credential) >= 32
    assert credential not in caplog.text  # ... and the session ID is not
    assert session_id not in caplog.text  # nor the key it is stored under
