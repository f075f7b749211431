"""What the storage benches share: spreading requests over concurrent tasks and timing
them, and the session and handler their middleware contenders serve."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import satchel
from satchel._codec import ENCODER, ENVELOPE_VERSION, ENVELOPES, Envelope, b64decode, b64encode
from satchel._cookies import format_http_date

Request = Callable[[str], Awaitable[None]]


async def run(request: Request, ids: list[str], tasks: int) -> float:
    """Microseconds per request for ``ids`` spread over ``tasks`` concurrent tasks."""
    chunks = [ids[i::tasks] for i in range(tasks)]

    async def worker(chunk: list[str]) -> None:
        for id in chunk:
            await request(id)

    start = time.perf_counter()
    await asyncio.gather(*(worker(chunk) for chunk in chunks))
    return (time.perf_counter() - start) / len(ids) * 1e6


COOKIE = "CART"
MAX_AGE = 14 * 24 * 3600


class Cart(msgspec.Struct):
    """The session of the core and HTTP benches: about 200 bytes as MessagePack."""

    user: str
    roles: list[str]
    items: list[str]
    coupon: str | None = None
    visits: int = 0


FIRST = Cart(
    user="u-5c1e0d2a-7f3b",
    roles=["customer", "beta"],
    items=[f"SKU-{i:04d}-blue-m" for i in range(7)],
    coupon="WINTER10",
)
FIRST_DICT: dict[str, Any] = msgspec.to_builtins(FIRST)


def find_cookie(headers: Any, prefix: bytes) -> bytes | None:
    """The value of the first cookie that starts with ``prefix`` (``name=``), as the floors
    look for theirs."""
    for name, value in headers:
        if name == b"cookie":
            for part in value.split(b";"):
                part = part.strip()
                if part.startswith(prefix):
                    found: bytes = part[len(prefix) :]
                    return found
    return None


CART_ENCODER = msgspec.msgpack.Encoder()
CART_DECODER = msgspec.msgpack.Decoder(Cart)


class GuaranteedCookie:
    """The floor cookie, doing what satchel's guarantees need and nothing else, by hand.

    The value travels in an envelope bound to the cookie's name, with when the session
    began and its idle deadline, checked on the way in; a new value is decoded once more
    before it is sent (a value that would not read back is refused) and encoded again at
    the end (a change made in place counts); the cookie has Max-Age and Expires; the
    response gets ``Cache-Control: private`` and ``Vary: Cookie``. What is left between
    this and satchel is satchel's code, not its guarantees.
    """

    PRIVATE, VARY = (b"cache-control", b"private"), (b"vary", b"Cookie")

    def __init__(self, key: bytes) -> None:
        self.prefix = COOKIE.encode() + b"="
        self.mac0 = hmac.new(hmac.new(key, b"floor-full", hashlib.sha256).digest(), digestmod=hashlib.sha256)
        self.date = functools.lru_cache(maxsize=16)(format_http_date)
        self.tail = "; Path=/; HttpOnly; SameSite=Lax; Secure"

    def find(self, headers: Any) -> bytes | None:
        """The cookie's value in the request's headers."""
        return find_cookie(headers, self.prefix)

    def open(self, text: bytes, now: float) -> tuple[Cart, Envelope] | None:
        """The session in ``text`` and its envelope, if signed, this cookie's and not expired."""
        raw = b64decode(text.decode("latin-1"))
        if raw is None or len(raw) < 32:
            return None
        body, tag = raw[:-32], raw[-32:]
        mac = self.mac0.copy()
        mac.update(body)
        if not hmac.compare_digest(mac.digest(), tag):
            return None
        try:
            env = ENVELOPES.decode(body)
            cart = CART_DECODER.decode(env.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if env.version != ENVELOPE_VERSION or env.name != COOKIE:
            return None
        if not (-math.inf < env.created <= now + 300 and now < env.expires <= now + MAX_AGE + 300):
            return None
        return cart, env

    def seal(self, data: bytes, created: float, now: float) -> bytes:
        """The Set-Cookie header's value for the encoded session ``data``."""
        body = ENCODER.encode(Envelope(ENVELOPE_VERSION, COOKIE, created, now + MAX_AGE, data))
        mac = self.mac0.copy()
        mac.update(body)
        text = b64encode(body + mac.digest())
        expires = self.date(int(now) + MAX_AGE)
        return f"{COOKIE}={text}; Max-Age={MAX_AGE}; Expires={expires}{self.tail}".encode("latin-1")

    def set(self, cart: Cart, created: float, now: float) -> tuple[bytes, bytes]:
        """A new value, as ``set()`` takes it: encoded, decoded once more (it must read
        back), sealed; its bytes and its Set-Cookie value."""
        data = CART_ENCODER.encode(cart)
        CART_DECODER.decode(data)
        return data, self.seal(data, created, now)

    def final(self, cart: Cart, data: bytes, cookie: bytes, created: float, now: float) -> bytes:
        """At response start: the Set-Cookie value, sealed again if ``cart`` was changed in
        place after it was set."""
        again = CART_ENCODER.encode(cart)
        return cookie if again == data else self.seal(again, created, now)


class Login(msgspec.Struct):
    """The session the storage benches' middleware contenders read and write."""

    user: str
    visits: int = 0


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Any) -> None:
    pass


async def respond(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def read_write_handler(scope: Any, receive: Any, send: Any) -> None:
    """Read the login, count the visit, write it back."""
    s = satchel.sessions_of(scope)
    login = await s.get(Login)
    assert login is not None, "the bench's session was not found"
    s.set(Login(user=login.user, visits=login.visits + 1))
    await respond(send)
