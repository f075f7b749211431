"""The apps bench_http.py serves with uvicorn, one contender per server process.

Each contender is a factory (``uvicorn --factory _http_apps:NAME``) answering three paths:

- ``/login``: start a session with the sample cart and send its cookie;
- ``/rmw``: read the session, count the visit, write it back (read-modify-write);
- ``/ro``: read the session and answer (read-only).

Anything else, and every path of the bare apps, answers ``ok``. A request whose session
is missing answers 500, so a wrong cookie can never pass for a fast request.

Configuration comes from the environment, set by bench_http.py: ``BENCH_HTTP_KEY`` (hex,
the signing key every contender shares), ``BENCH_HTTP_REDIS`` (a ``redis://`` URL),
``BENCH_HTTP_SQLITE`` (a file path), and ``BENCH_HTTP_COUNT=1`` to wrap satchel's storage
in a counter read at ``/_count`` (only in the counting pass, never in a timed server).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
import satchel
from _harness import COOKIE, FIRST, FIRST_DICT, MAX_AGE, Cart, GuaranteedCookie, find_cookie

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _key() -> bytes:
    return bytes.fromhex(os.environ.get("BENCH_HTTP_KEY", "") or secrets.token_hex(32))


def _redis_url() -> str:
    return os.environ.get("BENCH_HTTP_REDIS", "redis://127.0.0.1:6379/0")


async def respond(send: Send, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    # a fresh header list each time: some middlewares append to it in place
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"no session"})


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """No sessions at all."""
    if scope["type"] == "http":
        await respond(send)
    else:
        await _lifespan(receive, send)


async def _lifespan(
    receive: Receive, send: Send, startup: Callable[[], Awaitable[None]] | None = None
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if startup is not None:
                await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def app_bare() -> ASGIApp:
    return bare


# -- floors: the least a hand-written middleware does ---------------------------------


_ENCODE = msgspec.msgpack.Encoder()
_DECODE = msgspec.msgpack.Decoder(Cart)
_ATTRIBUTES = f"; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax; Secure"


def app_floor_cookie() -> ASGIApp:
    """A signed cookie: msgspec MessagePack, HMAC-SHA256, base64url; nothing else."""
    key, prefix = _key(), COOKIE.encode() + b"="

    def open_(text: bytes) -> Cart | None:
        try:
            raw = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
        except ValueError:
            return None
        body, tag = raw[:-32], raw[-32:]
        if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), tag):
            return None
        try:
            return _DECODE.decode(body)
        except msgspec.DecodeError:
            return None

    def seal(value: Cart) -> bytes:
        body = _ENCODE.encode(value)
        text = base64.urlsafe_b64encode(body + hmac.new(key, body, hashlib.sha256).digest())
        return (f"{COOKIE}={text.rstrip(b'=').decode()}" + _ATTRIBUTES).encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await _lifespan(receive, send)
        path = scope["path"]
        if path == "/login":
            return await respond(send, headers=[(b"set-cookie", seal(FIRST))])
        if path not in ("/rmw", "/ro"):
            return await respond(send)
        text = find_cookie(scope["headers"], prefix)
        cart = open_(text) if text is not None else None
        if cart is None:
            return await respond(send, 500)
        if path == "/ro":
            return await respond(send)
        cart = msgspec.structs.replace(cart, visits=cart.visits + 1)
        await respond(send, headers=[(b"set-cookie", seal(cart))])
        return None

    return app


def app_floor_cookie_full() -> ASGIApp:
    """The floor cookie, doing what satchel's guarantees need and nothing else, by hand
    (`_harness.GuaranteedCookie`)."""
    import time

    cookie = GuaranteedCookie(_key())
    private, vary = GuaranteedCookie.PRIVATE, GuaranteedCookie.VARY

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await _lifespan(receive, send)
        path = scope["path"]
        now = time.time()
        if path == "/login":
            _, first = cookie.set(FIRST, now, now)
            return await respond(send, headers=[(b"set-cookie", first), private, vary])
        if path not in ("/rmw", "/ro"):
            return await respond(send)
        text = cookie.find(scope["headers"])
        opened = cookie.open(text, now) if text is not None else None
        if opened is None:
            return await respond(send, 500)
        if path == "/ro":
            return await respond(send, headers=[vary])
        cart, created = msgspec.structs.replace(opened[0], visits=opened[0].visits + 1), opened[1].created
        data, sealed = cookie.set(cart, created, now)
        sealed = cookie.final(cart, data, sealed, created, now)
        await respond(send, headers=[(b"set-cookie", sealed), private, vary])
        return None

    return app


_CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return 1
end
return 0
"""


def _floor_redis(compare_and_set: bool) -> ASGIApp:
    """An ID cookie and the session in Redis: GET, then SET EX (or a compare-and-set)."""
    from redis.asyncio import Redis

    client = Redis.from_url(_redis_url())
    cas = client.register_script(_CAS)
    prefix, space = b"SID=", "floor-cas:" if compare_and_set else "floor:"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await _lifespan(receive, send)
        path = scope["path"]
        if path == "/login":
            fresh = secrets.token_urlsafe(32)
            await client.set(space + fresh, _ENCODE.encode(FIRST), ex=MAX_AGE)
            cookie = f"SID={fresh}{_ATTRIBUTES}".encode()
            return await respond(send, headers=[(b"set-cookie", cookie)])
        if path not in ("/rmw", "/ro"):
            return await respond(send)
        token = find_cookie(scope["headers"], prefix)
        key = space + token.decode("latin-1") if token else None
        raw = await client.get(key) if key else None
        assert not isinstance(raw, str)  # no decode_responses: bytes or None
        if raw is None or key is None:
            return await respond(send, 500)
        cart = _DECODE.decode(raw)
        if path == "/rmw":
            new = _ENCODE.encode(msgspec.structs.replace(cart, visits=cart.visits + 1))
            if compare_and_set:
                await cas(keys=[key], args=[raw, new, MAX_AGE])
            else:
                await client.set(key, new, ex=MAX_AGE)
        await respond(send)
        return None

    return app


def app_floor_redis() -> ASGIApp:
    return _floor_redis(compare_and_set=False)


def app_floor_redis_cas() -> ASGIApp:
    return _floor_redis(compare_and_set=True)


# -- starlette and starsessions -------------------------------------------------------


def _dict_handler(load: Callable[[Scope], Awaitable[None]] | None) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path not in ("/login", "/rmw", "/ro"):
            return await respond(send)
        if load is not None:
            await load(scope)
        session = scope["session"]
        if path == "/login":
            session.update(FIRST_DICT)
            return await respond(send)
        if "visits" not in session:
            return await respond(send, 500)
        if path == "/rmw":
            session["visits"] = session["visits"] + 1
        await respond(send)
        return None

    return app


async def _starsessions_load(scope: Scope) -> None:
    from starlette.requests import HTTPConnection
    from starsessions import load_session

    await load_session(HTTPConnection(scope))  # starsessions loads explicitly, as its docs ask


def _with_lifespan(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await _lifespan(receive, send)
        await app(scope, receive, send)
        return None

    return wrapped


def app_starlette_cookie() -> ASGIApp:
    from starlette.middleware.sessions import SessionMiddleware

    handler = _dict_handler(None)
    return _with_lifespan(
        SessionMiddleware(
            handler, secret_key=_key().hex(), session_cookie=COOKIE, max_age=MAX_AGE, https_only=True
        )
    )


def app_starsessions_cookie() -> ASGIApp:
    from starsessions import CookieStore, SessionMiddleware

    handler = _dict_handler(_starsessions_load)
    return _with_lifespan(
        SessionMiddleware(handler, store=CookieStore(_key().hex()), cookie_name=COOKIE, lifetime=MAX_AGE)
    )


def app_starsessions_redis() -> ASGIApp:
    from redis.asyncio import Redis
    from starsessions import SessionMiddleware
    from starsessions.stores.redis import RedisStore

    store = RedisStore(connection=Redis.from_url(_redis_url()), prefix="starsessions.")
    handler = _dict_handler(_starsessions_load)
    return _with_lifespan(SessionMiddleware(handler, store=store, cookie_name=COOKIE, lifetime=MAX_AGE))


# -- Litestar ----------------------------------------------------------------------------


def _litestar(sessions: bool) -> ASGIApp:
    from litestar import Litestar, Request, Response, get

    @get("/login", media_type="text/plain", sync_to_thread=False)
    def login(request: Request[Any, Any, Any]) -> str:
        request.set_session(dict(FIRST_DICT))
        return "ok"

    @get("/rmw", media_type="text/plain", sync_to_thread=False)
    def rmw(request: Request[Any, Any, Any]) -> Response[str]:
        session = request.session
        if "visits" not in session:
            return Response("no session", status_code=500)
        request.set_session({**session, "visits": session["visits"] + 1})
        return Response("ok")

    @get("/ro", media_type="text/plain", sync_to_thread=False)
    def ro(request: Request[Any, Any, Any]) -> Response[str]:
        return Response("ok" if "visits" in request.session else "no session", status_code=200)

    @get("/", media_type="text/plain", sync_to_thread=False)
    def plain() -> str:
        return "ok"

    names = {"Request": Request, "Response": Response, "Any": Any}  # the handlers' annotations are strings
    if not sessions:
        return Litestar([plain, _litestar_bare_rmw()], openapi_config=None, signature_namespace=names)  # type: ignore[return-value]
    from litestar.middleware.session.server_side import ServerSideSessionConfig
    from litestar.stores.redis import RedisStore
    from redis.asyncio import Redis

    store = RedisStore(Redis.from_url(_redis_url()), namespace="litestar")
    config = ServerSideSessionConfig(key=COOKIE, max_age=MAX_AGE, secure=True)
    return Litestar(  # type: ignore[return-value]
        [login, rmw, ro, plain],
        middleware=[config.middleware],
        stores={"sessions": store},
        openapi_config=None,
        signature_namespace=names,
    )


def _litestar_bare_rmw() -> Any:
    from litestar import get

    @get(["/login", "/rmw", "/ro"], media_type="text/plain", sync_to_thread=False)
    def handler() -> str:
        return "ok"

    return handler


def app_litestar_bare() -> ASGIApp:
    return _litestar(sessions=False)


def app_litestar_redis() -> ASGIApp:
    return _litestar(sessions=True)


# -- satchel ---------------------------------------------------------------------------


class Counting:
    """A storage wrapper counting the calls the middleware makes (counting pass only)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    @property
    def max_value_size(self) -> Any:
        return getattr(self.inner, "max_value_size", None)

    async def read(self, id: str) -> bytes | None:
        self._count("read")
        result: bytes | None = await self.inner.read(id)
        return result

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        self._count("write")
        await self.inner.write(id, data, ttl)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        self._count("write_if")
        done: bool = await self.inner.write_if(id, data, ttl, expected=expected)
        return done

    async def invalidate(self, id: str) -> None:
        self._count("invalidate")
        await self.inner.invalidate(id)

    async def touch(self, id: str, ttl: float | None) -> None:
        self._count("touch")
        await self.inner.touch(id, ttl)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _satchel(mapping: Callable[[Any], satchel.Mapping[Cart]], storage: Any = None) -> ASGIApp:
    counting = os.environ.get("BENCH_HTTP_COUNT") == "1"
    if storage is not None and counting:
        storage = Counting(storage)
    sessions = satchel.Sessions(mapping(storage))

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return None  # lifespan: the middleware answers it and closes the storages
        path = scope["path"]
        if path == "/_count" and isinstance(storage, Counting):
            body = json.dumps(storage.calls).encode()
            storage.calls.clear()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return await send({"type": "http.response.body", "body": body})
        if path == "/login":
            satchel.sessions_of(scope).set(FIRST)
            return await respond(send)
        if path not in ("/rmw", "/ro"):
            return await respond(send)
        s = satchel.sessions_of(scope)
        cart = await s.get(Cart)
        if cart is None:
            return await respond(send, 500)
        if path == "/rmw":
            s.set(msgspec.structs.replace(cart, visits=cart.visits + 1))
        await respond(send)
        return None

    return satchel.SessionMiddleware(handler, sessions)


def app_satchel_sign() -> ASGIApp:
    key = _key()
    return _satchel(lambda _: satchel.cookie(Cart, COOKIE, transformers=[satchel.Sign(key)]))


def app_satchel_encrypt() -> ASGIApp:
    from satchel_crypto import Encrypt

    key = _key()
    return _satchel(lambda _: satchel.cookie(Cart, COOKIE, transformers=[Encrypt(key)]))


def app_satchel_redis() -> ASGIApp:
    storage = satchel.open_storage(_redis_url(), namespace="satchel")
    return _satchel(lambda s: satchel.cookie(Cart, COOKIE, storage=s), storage)


def app_satchel_sqlite() -> ASGIApp:
    path = os.environ.get("BENCH_HTTP_SQLITE", "bench-http.db")
    storage = satchel.open_storage(f"sqlite:///{path}")
    return _satchel(lambda s: satchel.cookie(Cart, COOKIE, storage=s), storage)
