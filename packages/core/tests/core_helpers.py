"""Helpers shared by the core's tests (importable: the tests folder is on pythonpath)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from typing import Any

import httpx
import msgspec
import satchel
import satchel.testing
import uvicorn
from satchel.testing import Clock as Clock  # the tests take it from here
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# keys as `satchel keygen` prints them: placeholders such as "k" * 32 are refused
KEY = "_p6ZHpng5Rwf6pgfRJfaslYjyRlMdfUq0QlDazDhb-s"
OTHER_KEY = "oTEXLb_lKzxaFoC9vg5QnfgRrvRJBJLZShZ0fc3WcAE"


class CountingStorage(satchel.MemoryStorage):
    """A real MemoryStorage that also counts the calls made to it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[str] = []

    async def read(self, id: str) -> bytes | None:
        self.calls.append("read")
        return await super().read(id)

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        self.calls.append("write")
        await super().write(id, data, ttl)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        self.calls.append("write_if")
        return await super().write_if(id, data, ttl, expected=expected)

    async def invalidate(self, id: str) -> None:
        self.calls.append("invalidate")
        await super().invalidate(id)

    async def touch(self, id: str, ttl: float | None) -> None:
        self.calls.append("touch")
        await super().touch(id, ttl)

    def ids(self) -> list[str]:
        """Every stored key, tombstones of ended sessions included."""
        return list(self._data)

    def sessions(self) -> list[str]:
        """The keys that hold a session (not a tombstone left by a regenerate)."""
        return live_keys(self)


def live_keys(storage: satchel.MemoryStorage) -> list[str]:
    """The keys of ``storage`` that hold a session, not a tombstone of an ended one."""
    from satchel._codec import unpack_record  # the stored record's layout: tests only

    found = []
    for key, entry in storage._data.items():
        record = unpack_record(entry[0])
        if record is None or not record.is_tombstone:
            found.append(key)
    return found


def key_of(session_id: str) -> str:
    """Where a session ID's session is stored."""
    return satchel.testing.store_key(session_id)


Handler = Callable[[satchel.RequestSessions, Request], Awaitable[Any]]


class SignedIn(msgspec.Struct):
    """The session of `sign_in_app`."""

    user: str


async def _sign_in(request: Request) -> Response:
    satchel.sessions_of(request).set(SignedIn(user=request.query_params["user"]))
    return JSONResponse(None)


async def _whoami(request: Request) -> Response:
    got = await satchel.sessions_of(request).get(SignedIn)
    return JSONResponse(None if got is None else got.user)


def sign_in_app(storage: satchel.SessionStorage, **options: Any) -> satchel.SessionMiddleware:
    """A Starlette app whose sessions live in ``storage``: ``/in?user=ada`` signs in, ``/me``
    says who is signed in. ``options`` go to the ``SID`` cookie mapping."""
    mapping = satchel.cookie(SignedIn, "SID", storage=storage, transformers=[satchel.Sign(KEY)], **options)
    routes = [Route("/in", _sign_in), Route("/me", _whoami)]
    return satchel.SessionMiddleware(Starlette(routes=routes), satchel.Sessions(mapping))


def make_app(sessions: satchel.Sessions, **handlers: Handler) -> satchel.SessionMiddleware:
    """An app with one route per handler: GET/POST /<name> runs it and returns its result as JSON."""

    def route(name: str, handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            result = await handler(satchel.sessions_of(request), request)
            return result if isinstance(result, Response) else JSONResponse(result)

        return Route(f"/{name}", endpoint, methods=["GET", "POST"])

    return satchel.SessionMiddleware(Starlette(routes=[route(n, h) for n, h in handlers.items()]), sessions)


def apply(jar: dict[str, str], headers: list[tuple[str, str]]) -> None:
    """Update ``jar`` (cookie name to value) from the headers a commit returned, as a browser does."""
    for name, value in headers:
        if name == "set-cookie":
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(value)
            for key, morsel in cookie.items():
                if morsel["max-age"] == "0":
                    jar.pop(key, None)
                else:
                    jar[key] = morsel.value


async def request(sessions: satchel.Sessions, jar: dict[str, str], handler: Any) -> Any:
    """Run ``handler`` on the sessions of the cookies in ``jar`` without an app, commit what it
    changed exactly as a response start does, and update ``jar``; return what the handler did."""
    async with sessions.detached(cookies=jar) as s:
        result = await handler(s)
    apply(jar, s.headers)
    return result


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


@contextmanager
def serve(app: satchel.SessionMiddleware) -> Iterator[str]:
    """Run ``app`` under uvicorn (lifespan on) in a thread; yield its "host:port"; shut it down."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # the server is handed the bound socket, so no other process can take the port meanwhile
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during startup"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not shut down within 10 s"
