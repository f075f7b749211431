"""The core's middleware cost: satchel stateless and server-side against the usual choices.

Run: ``.venv/bin/python bench/bench_core.py [--quick] [--rounds N] [--requests N]``

Every implementation is an ASGI app called directly, ``await app(scope, receive, send)``,
with a prebuilt request (no HTTP client, no server), so a figure is what the session
middleware costs and nothing else. All of them run in one process and one event loop,
interleaved: each round times every contender for ``--requests`` requests, in a rotated
order; the figure is the median over rounds, in microseconds per request.

Contenders: a bare ASGI app (no sessions); the floor, a hand-written middleware doing the
least a signed cookie needs (msgspec encode, HMAC-SHA256, base64url, and the reverse on
the way in); the floor with the guarantees, doing by hand what satchel's guarantees need
and nothing else (``_harness.GuaranteedCookie``), so the report separates the cost of the
guarantees from the cost of satchel's code; starlette's ``SessionMiddleware``;
starsessions' ``CookieStore``; satchel stateless (``satchel.Sign``) and satchel
server-side (``satchel.MemoryStorage``).

Every contender runs on two schemes, ``https`` and ``http`` (a plain request to the
server's own address; satchel keeps ``secure=None``, so its Secure decision is on the path).

Workloads, the request carrying the cookie the previous response set:

- A: the handler reads the session (about 200 bytes), changes it and writes it back;
- B: the handler never touches the session.

Overhead is a contender's time minus the bare app's. Targets (issues 2 and 12): satchel
stateless overhead at most 1.2x the floor's on A (and at least 3x less than starlette's);
on B at most 1 microsecond over the bare app. The A ratios of the targets are medians of
the rounds' paired ratios: each round times every contender, so a slow spell of the
machine weighs on both sides of a ratio more often than on one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import hashlib
import hmac
import math
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import msgspec
import satchel
from _harness import COOKIE, FIRST, FIRST_DICT, MAX_AGE, Cart, GuaranteedCookie

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KEY = os.urandom(32)


async def respond(send: Send) -> None:
    # a fresh message each time: some middlewares append to message["headers"] in place
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def untouched(scope: Scope, receive: Receive, send: Send) -> None:
    """Workload B, and the bare app: a handler with no session in it."""
    await respond(send)


# -- the floor: the least a signed-cookie middleware can do ---------------------------


class _Box:
    __slots__ = ("dirty", "value")

    def __init__(self, value: Cart | None) -> None:
        self.value = value
        self.dirty = False


class FloorMiddleware:
    """msgspec + HMAC-SHA256 + base64url, decoded on the way in, encoded when changed."""

    def __init__(self, app: ASGIApp, key: bytes) -> None:
        self.app = app
        self.key = key
        self.encoder = msgspec.msgpack.Encoder()
        self.decoder = msgspec.msgpack.Decoder(Cart)
        self.prefix = COOKIE.encode() + b"="
        self.attributes = f"; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax; Secure"

    def _load(self, scope: Scope) -> Cart | None:
        for name, value in scope["headers"]:
            if name == b"cookie":
                for part in value.split(b";"):
                    part = part.strip()
                    if part.startswith(self.prefix):
                        return self._open(part[len(self.prefix) :])
        return None

    def _open(self, text: bytes) -> Cart | None:
        try:
            raw = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
        except ValueError:
            return None
        body, tag = raw[:-32], raw[-32:]
        if not hmac.compare_digest(hmac.new(self.key, body, hashlib.sha256).digest(), tag):
            return None
        try:
            return self.decoder.decode(body)
        except msgspec.DecodeError:
            return None

    def _seal(self, value: Cart) -> bytes:
        body = self.encoder.encode(value)
        text = base64.urlsafe_b64encode(body + hmac.new(self.key, body, hashlib.sha256).digest())
        return (f"{COOKIE}={text.rstrip(b'=').decode()}" + self.attributes).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        box = scope["floor.session"] = _Box(self._load(scope))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and box.dirty and box.value is not None:
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", self._seal(box.value))]
            await send(message)

        await self.app(scope, receive, send_wrapper)


async def floor_a(scope: Scope, receive: Receive, send: Send) -> None:
    box: _Box = scope["floor.session"]
    cart = box.value or FIRST
    box.value, box.dirty = msgspec.structs.replace(cart, visits=cart.visits + 1), True
    await respond(send)


class _Held:
    """The guarantees floor's session in one request: as read, and as set."""

    __slots__ = ("cookie", "created", "data", "sealed", "value")

    def __init__(self, cookie: GuaranteedCookie, value: Cart | None, created: float) -> None:
        self.cookie, self.value, self.created = cookie, value, created
        self.data = self.sealed = b""

    def set(self, value: Cart) -> None:
        """The handler's ``set``: sealed now, as satchel's is."""
        self.value = value
        self.data, self.sealed = self.cookie.set(value, self.created, time.time())


class FloorFullMiddleware:
    """The floor doing what satchel's guarantees need on request A (`_harness.GuaranteedCookie`).

    Like the floor, it reads the cookie on every request, asked or not, so its B figure
    says nothing of satchel's lazy read; and it sends ``Cache-Control``/``Vary`` only with
    a new value, which is all request A needs."""

    def __init__(self, app: ASGIApp, key: bytes) -> None:
        self.app = app
        self.cookie = GuaranteedCookie(key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cookie, now = self.cookie, time.time()
        text = cookie.find(scope["headers"])
        opened = cookie.open(text, now) if text is not None else None
        held = scope["floor.session"] = (
            _Held(cookie, None, now) if opened is None else _Held(cookie, opened[0], opened[1].created)
        )

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and held.sealed and held.value is not None:
                sealed = cookie.final(held.value, held.data, held.sealed, held.created, now)
                added = [(b"set-cookie", sealed), GuaranteedCookie.PRIVATE, GuaranteedCookie.VARY]
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await self.app(scope, receive, send_wrapper)


async def floor_full_a(scope: Scope, receive: Receive, send: Send) -> None:
    held: _Held = scope["floor.session"]
    cart = held.value or FIRST
    held.set(msgspec.structs.replace(cart, visits=cart.visits + 1))
    await respond(send)


# -- starlette and starsessions --------------------------------------------------------


def starlette_app(handler: ASGIApp) -> ASGIApp:
    from starlette.middleware.sessions import SessionMiddleware

    return SessionMiddleware(
        handler, secret_key=KEY.hex(), session_cookie=COOKIE, max_age=MAX_AGE, https_only=True
    )


async def starlette_a(scope: Scope, receive: Receive, send: Send) -> None:
    session = scope["session"]
    if not session:
        session.update(FIRST_DICT)
    session["visits"] = session["visits"] + 1
    await respond(send)


def starsessions_app(handler: ASGIApp) -> ASGIApp:
    from starsessions import CookieStore, SessionMiddleware

    return SessionMiddleware(
        handler, store=CookieStore(KEY.hex()), cookie_name=COOKIE, lifetime=MAX_AGE, rolling=True
    )


async def starsessions_a(scope: Scope, receive: Receive, send: Send) -> None:
    from starlette.requests import HTTPConnection
    from starsessions import load_session

    await load_session(HTTPConnection(scope))  # starsessions loads explicitly, as its docs ask
    await starlette_a(scope, receive, send)  # then the same dict session handler


# -- satchel ---------------------------------------------------------------------------


def satchel_stateless(handler: ASGIApp) -> ASGIApp:
    sessions = satchel.Sessions(satchel.cookie(Cart, COOKIE, transformers=[satchel.Sign(KEY)]))
    return satchel.SessionMiddleware(handler, sessions)


def satchel_server() -> Callable[[ASGIApp], ASGIApp]:
    storage = satchel.MemoryStorage()  # one store behind every app built here, as in a real deployment

    def wrap(handler: ASGIApp) -> ASGIApp:
        sessions = satchel.Sessions(satchel.cookie(Cart, COOKIE, storage=storage))
        return satchel.SessionMiddleware(handler, sessions)

    return wrap


async def satchel_a(scope: Scope, receive: Receive, send: Send) -> None:
    s = satchel.sessions_of(scope)
    cart = await s.get(Cart) or FIRST
    s.set(msgspec.structs.replace(cart, visits=cart.visits + 1))
    await respond(send)


# -- the contenders ------------------------------------------------------------------


@dataclass
class Impl:
    name: str
    wrap: Callable[[ASGIApp], ASGIApp] | None  # None: the bare app
    handler_a: ASGIApp


IMPLS = [
    Impl("bare ASGI app", None, untouched),
    Impl("floor (msgspec+HMAC+b64)", lambda app: FloorMiddleware(app, KEY), floor_a),
    Impl("floor + the guarantees", lambda app: FloorFullMiddleware(app, KEY), floor_full_a),
    Impl("starlette SessionMiddleware", starlette_app, starlette_a),
    Impl("starsessions CookieStore", starsessions_app, starsessions_a),
    Impl("satchel stateless (Sign)", satchel_stateless, satchel_a),
    Impl("satchel server-side (memory)", satchel_server(), satchel_a),
]
BARE, FLOOR, FLOOR_FULL, STARLETTE, STARSESSIONS, STATELESS, SERVER = (i.name for i in IMPLS)


SCHEMES = ("https", "http")


def scope_for(cookie: bytes | None, scheme: str = "https") -> dict[str, Any]:
    """A production-like request: a few usual headers, another site cookie.

    ``http`` is a plain request to the server's own address (as behind a proxy that does
    not say it terminated TLS): satchel's ``secure=None`` still sends ``Secure`` there,
    which is the decision this exercises.
    """
    cookies = b"_ga=GA1.2.1843614120.1712345678; theme=dark"
    if cookie is not None:
        cookies += b"; " + COOKIE.encode() + b"=" + cookie
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": "/cart",
        "raw_path": b"/cart",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"shop.example.com"),
            (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"),
            (b"accept", b"text/html,application/xhtml+xml"),
            (b"accept-encoding", b"gzip, deflate, br"),
            (b"cookie", cookies),
        ],
        "client": ("203.0.113.7", 51234),
        "server": ("10.0.0.2", 443 if scheme == "https" else 80),
    }


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Message) -> None:
    return None


async def call(app: ASGIApp, scope: dict[str, Any]) -> list[bytes]:
    """One request, untimed; the Set-Cookie values of its response."""
    sent: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            sent.extend(v for k, v in message.get("headers", ()) if k.lower() == b"set-cookie")

    await app(dict(scope), receive, send)
    return sent


def cookie_value(set_cookie: bytes) -> bytes:
    pair = set_cookie.split(b";", 1)[0]
    name, _, value = pair.partition(b"=")
    assert name.strip() == COOKIE.encode(), set_cookie
    return value.strip()


@dataclass
class Contender:
    label: str
    app: ASGIApp
    scope: dict[str, Any]


async def prepare(impl: Impl, scheme: str) -> tuple[Contender, Contender]:
    """The A and B contenders of ``impl`` on ``scheme``, each with the cookie its previous
    response set.

    Checks on the way that the session really round-trips: a second request reads the
    value the first one wrote, and a request that does not touch the session sets nothing.
    """
    a, b = f"A {scheme} {impl.name}", f"B {scheme} {impl.name}"
    if impl.wrap is None:
        plain = scope_for(None, scheme)
        return Contender(a, untouched, plain), Contender(b, untouched, plain)
    app_a, app_b = impl.wrap(impl.handler_a), impl.wrap(untouched)
    first = await call(app_a, scope_for(None, scheme))
    if len(first) != 1:
        raise SystemExit(f"{impl.name}: expected one Set-Cookie on a new session, got {first!r}")
    scope = scope_for(cookie_value(first[0]), scheme)
    await check_read(impl, scope)
    second = await call(app_a, scope)
    if impl.name == SERVER:
        # the ID stays, and is sent again only when due: the change must be in the storage
        if second:
            raise SystemExit(f"{impl.name}: a changed session sent its unchanged ID again: {second!r}")
        await check_read(impl, scope, visits=2)
    elif len(second) != 1 or cookie_value(second[0]) == cookie_value(first[0]):
        raise SystemExit(f"{impl.name}: the second request did not write a changed session: {second!r}")
    if await call(app_b, scope):
        raise SystemExit(f"{impl.name}: a request that never touched the session set a cookie")
    if "satchel" in impl.name and b"secure" not in first[0].lower():
        raise SystemExit(f"{impl.name} on {scheme}: secure=None did not send Secure: {first[0]!r}")
    return Contender(a, app_a, scope), Contender(b, app_b, scope)


async def check_read(impl: Impl, scope: dict[str, Any], visits: int = 1) -> None:
    """The cookie in ``scope`` must read back as a session with ``visits``."""
    seen: list[int] = []

    async def peek(scope: Scope, receive: Receive, send: Send) -> None:
        if "satchel" in impl.name:
            cart = await satchel.sessions_of(scope).get(Cart)
            seen.append(cart.visits if cart else -1)
        elif impl.name in (FLOOR, FLOOR_FULL):
            box = scope["floor.session"]
            seen.append(box.value.visits if box.value else -1)
        else:
            if impl.name == STARSESSIONS:
                from starlette.requests import HTTPConnection
                from starsessions import load_session

                await load_session(HTTPConnection(scope))
            seen.append(scope["session"].get("visits", -1))
        await respond(send)

    assert impl.wrap is not None
    await call(impl.wrap(peek), scope)
    if seen != [visits]:
        raise SystemExit(f"{impl.name}: the cookie read back as visits={seen}, expected [{visits}]")


# -- timing ----------------------------------------------------------------------------


def sampler(c: Contender, n: int) -> Callable[[], Awaitable[float]]:
    app, template = c.app, c.scope

    async def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await app(template.copy(), receive, discard)
        return (time.perf_counter() - start) / n

    return run


async def interleave(contenders: list[Contender], rounds: int, n: int) -> dict[str, list[float]]:
    """Seconds per request of each contender in each round, timed round-robin in a rotated order."""
    samples: dict[str, list[float]] = {c.label: [] for c in contenders}
    runs = [(c.label, sampler(c, n)) for c in contenders]
    for _label, run in runs:  # warm up
        await run()
    for r in range(rounds):
        shift = r % len(runs)
        for label, run in runs[shift:] + runs[:shift]:
            samples[label].append(await run())
    return samples


async def peak_memory(c: Contender, n: int) -> int:
    """Peak bytes above the resting heap while serving ``n`` requests one after the other.

    The peak counts garbage waiting for the cycle collector: a request whose objects form
    a reference cycle is freed only when the collector runs, not when the request ends.
    """
    await c.app(c.scope.copy(), receive, discard)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(n):
            await c.app(c.scope.copy(), receive, discard)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


async def profile(contenders: list[Contender], pattern: str, n: int) -> None:
    for c in contenders:
        if pattern.lower() not in c.label.lower():
            continue
        run = sampler(c, n)
        await run()
        profiler = cProfile.Profile()
        profiler.enable()
        await run()
        profiler.disable()
        print(f"\n== cProfile: {c.label}, {n} requests (sorted by own time)")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(22)


# -- report ----------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def versions() -> str:
    names = ("satchel", "starlette", "starsessions", "itsdangerous", "msgspec")
    return ", ".join([f"python {platform.python_version()}"] + [f"{n} {version(n)}" for n in names])


def report(results: dict[str, list[float]], memory: dict[str, int] | None) -> dict[str, float]:
    figures: dict[str, float] = {}
    for scheme in SCHEMES:
        mine = {
            label.replace(f" {scheme} ", " ", 1): t for label, t in results.items() if f" {scheme} " in label
        }
        mem = (
            {label.replace(f" {scheme} ", " ", 1): m for label, m in memory.items() if f" {scheme} " in label}
            if memory
            else None
        )
        print(f"\n== scheme {scheme}")
        figures.update({f"{scheme}_{k}": v for k, v in report_scheme(mine, mem).items()})
    return figures


class Paired:
    """Ratios of two contenders' overheads, round by round: each round times every
    contender within a few hundred milliseconds, so a slow spell of the machine weighs on
    both sides of a ratio and little on its median."""

    def __init__(self, results: dict[str, list[float]]) -> None:
        self.results = results

    def overheads(self, label: str) -> list[float]:
        bare = self.results[f"{label[0]} {BARE}"]
        return [t - b for t, b in zip(self.results[label], bare, strict=True)]

    def ratio(self, top: str, bottom: str) -> tuple[float, float, float]:
        """Median, lowest and highest of ``top``'s overhead over ``bottom``'s."""
        pairs = zip(self.overheads(top), self.overheads(bottom), strict=True)
        ratios = [a / b for a, b in pairs if b > 0] or [math.nan]  # a round the bare app won says nothing
        return statistics.median(ratios), min(ratios), max(ratios)


def report_scheme(results: dict[str, list[float]], memory: dict[str, int] | None) -> dict[str, float]:
    us = {label: statistics.median(seconds) * 1e6 for label, seconds in results.items()}
    over = {label: t - us[f"{label[0]} {BARE}"] for label, t in us.items()}
    floor = over[f"A {FLOOR}"]
    print(f"{'microseconds per request':30} {'A: read, change, write':>33} {'B: not touched':>24}")
    print(f"{'':30} {'us':>8} {'overhead':>10} {'/ floor':>9}   {'':>3} {'us':>8} {'overhead':>10}")
    for impl in IMPLS:
        a, b = f"A {impl.name}", f"B {impl.name}"
        ratio = f"{over[a] / floor:8.2f}x" if impl.wrap is not None else f"{'':9}"
        print(f"{impl.name:30} {us[a]:8.2f} {over[a]:+10.2f} {ratio}   {'':>3} {us[b]:8.2f} {over[b]:+10.2f}")
    if memory:
        print(f"\n{'peak memory, KiB (tracemalloc)':30} {'A':>8} {'B':>8}")
        for impl in IMPLS:
            peak_a, peak_b = memory[f"A {impl.name}"], memory[f"B {impl.name}"]
            print(f"{impl.name:30} {peak_a / 1024:8.1f} {peak_b / 1024:8.1f}")
    paired = Paired(results)
    stateless, floor_full = (
        paired.ratio(f"A {STATELESS}", f"A {FLOOR}"),
        paired.ratio(f"A {FLOOR_FULL}", f"A {FLOOR}"),
    )
    code = paired.ratio(f"A {STATELESS}", f"A {FLOOR_FULL}")
    figures = {
        "stateless_vs_floor": stateless[0],
        "guarantees_vs_floor": floor_full[0],
        "stateless_vs_guarantees": code[0],
        "server_vs_floor": over[f"A {SERVER}"] / floor,
        "starlette_vs_stateless": over[f"A {STARLETTE}"] / over[f"A {STATELESS}"],
        "starsessions_vs_stateless": over[f"A {STARSESSIONS}"] / over[f"A {STATELESS}"],
        "stateless_b_us": over[f"B {STATELESS}"],
        "server_b_us": over[f"B {SERVER}"],
    }

    def spread(r: tuple[float, float, float]) -> str:
        return f"{r[0]:6.2f}x  (rounds {r[1]:.2f}-{r[2]:.2f})"

    print("\ntargets (issues 2 and 12; where rounds are shown, the median of the rounds' paired ratios):")
    print(f"  satchel stateless A overhead / floor's        {spread(stateless)}  target <= 1.2x")
    print(
        f"  starlette A overhead / satchel stateless's    {figures['starlette_vs_stateless']:6.2f}x  (>= 3x)"
    )
    print(f"  satchel stateless B overhead over bare        {figures['stateless_b_us']:6.2f} us (<= 1 us)")
    print(f"  satchel server-side B overhead over bare      {figures['server_b_us']:6.2f} us (<= 1 us)")
    print("where the stateless A overhead goes:")
    print(f"  the guarantees, by hand / floor's             {spread(floor_full)}")
    print(f"  satchel stateless / the guarantees by hand    {spread(code)}")
    print("for reference:")
    print(f"  satchel server-side A overhead / floor's      {figures['server_vs_floor']:6.2f}x")
    print(f"  starsessions A overhead / satchel stateless's {figures['starsessions_vs_stateless']:6.2f}x")
    return figures


async def bench(rounds: int, n: int, memory: bool, profile_pattern: str | None) -> None:
    contenders = [c for scheme in SCHEMES for impl in IMPLS for c in await prepare(impl, scheme)]
    print(versions())
    print(machine())
    size = len(msgspec.msgpack.encode(FIRST))
    print(
        f"session: {size} bytes as MessagePack, {len(msgspec.json.encode(FIRST_DICT))} as JSON; "
        f"{rounds} rounds x {n} requests per contender, interleaved; medians"
    )
    if profile_pattern:
        await profile(contenders, profile_pattern, n * 5)
        return
    gc.collect()
    results = await interleave(contenders, rounds, n)
    mem = {c.label: await peak_memory(c, 2000) for c in contenders} if memory else None
    report(results, mem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument("--rounds", type=int, help="rounds (default 41, --quick 7)")
    parser.add_argument("--requests", type=int, help="requests per contender per round (default 2000)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--profile", metavar="NAME", help="cProfile the contenders whose label has NAME")
    args = parser.parse_args(argv)
    rounds = args.rounds or (7 if args.quick else 41)
    n = args.requests or (500 if args.quick else 2000)
    asyncio.run(bench(rounds, n, not args.no_memory, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
