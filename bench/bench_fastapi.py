"""What the FastAPI dependencies cost over calling ``sessions_of(request)`` by hand.

Run: ``.venv/bin/python bench/bench_fastapi.py [--quick] [--rounds N] [--requests N]``

One FastAPI app, given its sessions by ``satchel.integrations.fastapi.install``, serves
pairs of routes that do the same work, one through the shipped dependencies and one by
hand. Each is called as ASGI, ``await app(scope, receive, send)``, with a prebuilt request
carrying a signed stateless cookie (no HTTP client, no server); the contenders are timed
round-robin in a rotated order, and a figure is the median over rounds, in microseconds
per request.

Pairs:

- ``floor``: a dependency that does nothing (FastAPI's own cost of one dependency) against
  none, both routes calling ``sessions_of(request)``;
- ``sessions``: ``s: SessionsDep`` against ``request: Request`` + ``sessions_of(request)``;
- ``optional``: ``cart: OptionalSession[Cart]`` against ``sessions_of(request).get(Cart)``;
- ``required``: ``login: Session[Login]`` against the same read and a check for ``None``.

Target (issue 13): a route using the dependency adds at most 1 microsecond over the same
route calling ``sessions_of(request)`` by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import msgspec
import satchel
from fastapi import Depends, FastAPI, HTTPException, Request
from satchel.integrations.fastapi import OptionalSession, Session, SessionsDep, install

KEY = os.urandom(32)
PAIRS = ("floor", "sessions", "optional", "required")


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


def build() -> FastAPI:
    api = FastAPI()

    @api.get("/sessions/dep")
    async def sessions_dep(s: SessionsDep) -> None:
        s.handle  # noqa: B018 - touch it as a handler would, without reading a session

    @api.get("/sessions/hand")
    async def sessions_hand(request: Request) -> None:
        s = satchel.sessions_of(request)
        s.handle  # noqa: B018

    @api.get("/optional/dep")
    async def optional_dep(cart: OptionalSession[Cart]) -> None:
        assert cart is not None

    @api.get("/optional/hand")
    async def optional_hand(request: Request) -> None:
        cart = await satchel.sessions_of(request).get(Cart)
        assert cart is not None

    @api.get("/required/dep")
    async def required_dep(login: Session[Login]) -> None:
        assert login.user

    @api.get("/required/hand")
    async def required_hand(request: Request) -> None:
        login = await satchel.sessions_of(request).get(Login)
        if login is None:
            raise HTTPException(401, "sign-in required")
        assert login.user

    async def nothing() -> None:
        pass

    @api.get("/floor/dep", dependencies=[Depends(nothing)])
    async def floor_dep(request: Request) -> None:
        satchel.sessions_of(request).handle  # noqa: B018

    @api.get("/floor/hand")
    async def floor_hand(request: Request) -> None:
        satchel.sessions_of(request).handle  # noqa: B018

    @api.get("/seed")
    async def seed(s: SessionsDep) -> None:
        s.set(Cart(items=["apple", "pear"]))
        s.set(Login(user="ada"))

    install(
        api,
        satchel.Sessions(
            satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
            satchel.cookie(Login, "LOGIN", transformers=[satchel.Sign(KEY)]),
        ),
    )
    return api


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Any) -> None:
    pass


def scope_for(path: str, cookie: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def cookie_of(app: FastAPI) -> bytes:
    """The Cookie header a browser would send after the app set both sessions."""
    sent: list[Any] = []

    async def keep(message: Any) -> None:
        sent.append(message)

    await app(scope_for("/seed", b""), receive, keep)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 200, start
    return b"; ".join(v.split(b";")[0] for k, v in start["headers"] if k == b"set-cookie")


def sampler(app: FastAPI, scope: dict[str, Any], n: int) -> Callable[[], Awaitable[float]]:
    async def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope), receive, discard)
        return (time.perf_counter() - start) / n

    return run


async def bench(rounds: int, n: int) -> None:
    app = build()
    cookie = await cookie_of(app)
    labels = [f"{pair}/{way}" for pair in PAIRS for way in ("dep", "hand")]
    for label in labels:  # every route answers 200 with the cookie, or the figures mean nothing
        sent: list[Any] = []

        async def keep(message: Any, into: list[Any] = sent) -> None:
            into.append(message)

        await app(scope_for(f"/{label}", cookie), receive, keep)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        if status != 200:
            raise SystemExit(f"/{label} answered {status}")
    runs = [(label, sampler(app, scope_for(f"/{label}", cookie), n)) for label in labels]
    samples: dict[str, list[float]] = {label: [] for label in labels}
    for _label, run in runs:
        await run()  # warm up
    for r in range(rounds):
        shift = r % len(runs)
        for label, run in runs[shift:] + runs[:shift]:
            samples[label].append(await run())
    med = {label: statistics.median(s) * 1e6 for label, s in samples.items()}
    low = {label: min(s) * 1e6 for label, s in samples.items()}
    print(
        f"fastapi {version('fastapi')}, starlette {version('starlette')}, satchel {version('satchel')}; "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"{rounds} rounds x {n} requests per route, interleaved; medians, us per request")
    print("(on a busy machine the fastest round, 'min', is the steadier figure)")
    print(f"{'pair':<10}{'dependency':>12}{'by hand':>10}{'added':>9}{'min added':>11}")
    for pair in PAIRS:
        dep, hand = med[f"{pair}/dep"], med[f"{pair}/hand"]
        added_low = low[f"{pair}/dep"] - low[f"{pair}/hand"]
        print(f"{pair:<10}{dep:>12.2f}{hand:>10.2f}{dep - hand:>+9.2f}{added_low:>+11.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument("--rounds", type=int, help="rounds (default 31, --quick 5)")
    parser.add_argument("--requests", type=int, help="requests per route per round (default 1000)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 31)
    n = args.requests or (200 if args.quick else 1000)
    asyncio.run(bench(rounds, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
