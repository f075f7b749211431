"""Encrypted stateless sessions: satchel-crypto against signed-only satchel and Litestar.

Run: ``.venv/bin/python bench/bench_crypto.py [--quick] [--rounds N]``

Two levels, each interleaved in one process (every round times every contender, in a
rotated order; the figure is the median over rounds):

1. codec: a session dict to the cookie's text and back. satchel: the default serializer
   (msgpack), the transformer, base64url. Litestar: ``ClientSideSessionBackend``'s
   ``dump_data`` / ``load_data`` (JSON, AES-GCM, base64).
2. middleware: one ASGI request that reads the session cookie, changes the session and
   sends the new cookie, through ``satchel.SessionMiddleware`` on a bare Starlette app and
   through a Litestar app with its client-side session middleware. Each framework is also
   timed without sessions, and the figure is the session's own cost: time with sessions
   minus time without.

Figures are ratios against the floor, signed-only satchel (``satchel.Sign``).
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
from typing import Any

import satchel
from satchel._codec import b64decode, b64encode
from satchel_crypto import Encrypt

KEY = os.urandom(32)
CART: dict[str, Any] = {
    "user": "u-5c1e0d2a",
    "roles": ["customer", "beta"],
    "items": [{"sku": f"SKU-{i:04d}", "qty": i % 3 + 1, "price": 1299 + 50 * i} for i in range(8)],
    "coupon": "WINTER10",
}


def interleave(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median seconds per operation for each contender, timed round-robin."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(contenders[name]())
    return {name: statistics.median(s) for name, s in samples.items()}


def per_op(fn: Callable[[], object], n: int) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n

    return run


# -- level 1: codec ------------------------------------------------------------------


def satchel_codec(transformer: satchel.Transformer) -> Callable[[], object]:
    serializer = satchel.MsgPackSerializer(dict)
    bound = (
        transformer.bind("cookie:CART")
        if isinstance(transformer, satchel.BindableTransformer)
        else transformer
    )

    def round_trip() -> object:
        text = b64encode(bound.encode(serializer.encode(CART)))
        data = b64decode(text)
        assert data is not None
        opened = bound.decode(data)
        assert opened is not None
        return serializer.decode(opened)

    return round_trip


def litestar_codec() -> Callable[[], object]:
    from litestar.middleware.session.client_side import (
        ClientSideSessionBackend,
        CookieBackendConfig,
    )

    backend = ClientSideSessionBackend(CookieBackendConfig(secret=os.urandom(32)))

    def round_trip() -> object:
        return backend.load_data(backend.dump_data(CART))

    return round_trip


def cookie_sizes() -> dict[str, int]:
    serializer = satchel.MsgPackSerializer(dict)
    from litestar.middleware.session.client_side import (
        ClientSideSessionBackend,
        CookieBackendConfig,
    )

    litestar = ClientSideSessionBackend(CookieBackendConfig(secret=os.urandom(32)))
    sizes = {
        name: len(b64encode(t.bind("cookie:CART").encode(serializer.encode(CART))))
        for name, t in (
            ("satchel Sign", satchel.Sign(KEY)),
            ("satchel Encrypt", Encrypt(KEY)),
            ("satchel Encrypt(compress=True)", Encrypt(KEY, compress=True)),
        )
    }
    sizes["Litestar client-side"] = sum(len(c) for c in litestar.dump_data(CART))
    return sizes


def bench_codec(rounds: int, n: int) -> dict[str, float]:
    return interleave(
        {
            "satchel Sign": per_op(satchel_codec(satchel.Sign(KEY)), n),
            "satchel Encrypt": per_op(satchel_codec(Encrypt(KEY)), n),
            "satchel Encrypt(compress=True)": per_op(satchel_codec(Encrypt(KEY, compress=True)), n),
            "Litestar client-side": per_op(litestar_codec(), n),
        },
        rounds,
    )


# -- level 2: through the middleware ---------------------------------------------------

ASGIApp = Callable[..., Awaitable[None]]


def request_driver(app: ASGIApp, path: str) -> Callable[[], Awaitable[list[bytes]]]:
    """One GET through ``app`` carrying the cookies of the previous response."""
    cookies: dict[bytes, bytes] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def once() -> list[bytes]:
        headers = [(b"host", b"localhost")]
        if cookies:
            headers.append((b"cookie", b"; ".join(k + b"=" + v for k, v in cookies.items())))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("localhost", 80),
            "state": {},
        }
        set_cookies: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == b"set-cookie":
                        set_cookies.append(value)

        await app(scope, receive, send)
        for header in set_cookies:
            pair = header.split(b";", 1)[0]
            name, _, value = pair.partition(b"=")
            cookies[name.strip()] = value.strip()
        return set_cookies

    return once


def satchel_app(transformer: satchel.Transformer | None) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def view(request: Request) -> PlainTextResponse:
        if transformer is not None:
            s = satchel.sessions_of(request)
            cart = await s.get(dict) or dict(CART, visits=0)
            s.set({**cart, "visits": cart["visits"] + 1})
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", view)])
    if transformer is None:
        return app
    sessions = satchel.Sessions(satchel.cookie(dict, "CART", transformers=[transformer]))
    return satchel.SessionMiddleware(app, sessions)


def litestar_app(with_sessions: bool) -> ASGIApp:
    from litestar import Litestar, Request, get
    from litestar.logging.config import LoggingConfig
    from litestar.middleware.session.client_side import CookieBackendConfig

    @get("/", sync_to_thread=False)
    def view(request: Request[Any, Any, Any]) -> str:
        if with_sessions:
            visits = request.session.get("visits", 0)
            request.set_session({**CART, "visits": visits + 1})
        return "ok"

    middleware = (
        [CookieBackendConfig(secret=os.urandom(32), secure=False).middleware] if with_sessions else []
    )
    return Litestar(
        route_handlers=[view],
        middleware=middleware,
        logging_config=LoggingConfig(configure_root_logger=False),
    )


def bench_middleware(rounds: int, n: int) -> dict[str, float] | None:
    if not hasattr(satchel, "SessionMiddleware"):
        return None
    loop = asyncio.new_event_loop()
    drivers = {
        "Starlette, no sessions": request_driver(satchel_app(None), "/"),
        "satchel Sign": request_driver(satchel_app(satchel.Sign(KEY)), "/"),
        "satchel Encrypt": request_driver(satchel_app(Encrypt(KEY)), "/"),
        "satchel Encrypt(compress=True)": request_driver(satchel_app(Encrypt(KEY, compress=True)), "/"),
        "Litestar, no sessions": request_driver(litestar_app(False), "/"),
        "Litestar client-side": request_driver(litestar_app(True), "/"),
    }
    for name, drive in drivers.items():
        # warm up, and check that every session contender really sends a cookie
        for _ in range(3):
            sent = loop.run_until_complete(drive())
        if "no sessions" not in name and not sent:
            raise SystemExit(f"{name}: no Set-Cookie; the bench would measure nothing")

    def timed(drive: Callable[[], Awaitable[list[bytes]]]) -> Callable[[], float]:
        async def many() -> None:
            for _ in range(n):
                await drive()

        def run() -> float:
            start = time.perf_counter()
            loop.run_until_complete(many())
            return (time.perf_counter() - start) / n

        return run

    try:
        return interleave({name: timed(d) for name, d in drivers.items()}, rounds)
    finally:
        loop.close()


def report(rounds: int) -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {rounds} rounds")
    print("\ncookie value size for the sample cart (bytes):")
    for name, size in cookie_sizes().items():
        print(f"  {name:34} {size:6d}")

    codec = bench_codec(rounds, 2000)
    floor = codec["satchel Sign"]
    print(f"\ncodec round trip (floor: satchel Sign = {floor * 1e6:.1f} us)")
    for name, seconds in codec.items():
        print(f"  {name:34} {seconds / floor:6.2f}x  ({seconds * 1e6:.1f} us)")
    print(
        "  Litestar / satchel Encrypt:       "
        f"{codec['Litestar client-side'] / codec['satchel Encrypt']:6.2f}x"
    )

    mw = bench_middleware(rounds, 300)
    if mw is None:
        print("\nmiddleware: satchel.SessionMiddleware is not there yet; skipped")
        return
    cost = {
        name: seconds
        - mw["Litestar, no sessions" if name.startswith("Litestar") else "Starlette, no sessions"]
        for name, seconds in mw.items()
        if "no sessions" not in name
    }
    floor = cost["satchel Sign"]
    print(f"\nper request, session cost over the bare app (floor: satchel Sign = {floor * 1e6:.1f} us)")
    for name, seconds in cost.items():
        print(f"  {name:34} {seconds / floor:6.2f}x  ({seconds * 1e6:.1f} us)")
    for name in ("Starlette, no sessions", "Litestar, no sessions"):
        print(f"  ({name}: {mw[name] * 1e6:.1f} us per request)")
    print(
        f"  Litestar / satchel Encrypt:       {cost['Litestar client-side'] / cost['satchel Encrypt']:6.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=61)
    parser.add_argument("--quick", action="store_true", help="5 rounds: a smoke run")
    args = parser.parse_args(argv)
    report(5 if args.quick else args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
