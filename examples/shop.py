"""The demo: a small shop. The cart is a stateless signed cookie; the login is a
server-side session stored in SQLite (``var/sessions.db`` under the working directory),
owned by its user name, so the account page lists every device signed in as you and can
sign any of them out.

Run it with ``make demo`` and open the URL it prints.
"""

from __future__ import annotations

import argparse
import html
import os
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

import msgspec
import satchel
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

VAR = Path(os.environ.get("SATCHEL_DEMO_DIR", "var"))

PRODUCTS = {"apple": 0.5, "bread": 2.2, "cheese": 4.9, "coffee": 7.5}


class Cart(msgspec.Struct):
    items: dict[str, int] = {}


class Login(msgspec.Struct):
    user: str


def secret() -> str:
    """The signing key: ``SATCHEL_DEMO_SECRET``, or one kept in ``var/secret.key``."""
    if key := os.environ.get("SATCHEL_DEMO_SECRET"):
        return key
    path = VAR / "secret.key"
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def field(request: Request, name: str) -> str:
    """One field of a urlencoded form post."""
    values = parse_qs((await request.body()).decode("utf-8", "replace")).get(name, [""])
    return values[0]


def page(body: str, login: Login | None, cart: Cart | None) -> HTMLResponse:
    count = sum(cart.items.values()) if cart else 0
    who = (
        f'signed in as <a href="/account"><b>{html.escape(login.user)}</b></a> '
        '<form method="post" action="/logout" style="display:inline"><button>Sign out</button></form>'
        if login
        else '<a href="/login">Sign in</a>'
    )
    return HTMLResponse(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>satchel shop</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}li{{margin:.3em 0}}</style>
</head><body><header><a href="/">Shop</a> · <a href="/cart">Cart ({count})</a> · {who}</header>
<hr>{body}</body></html>"""
    )


async def shop(request: Request) -> Response:
    s = satchel.sessions_of(request)
    rows = "".join(
        f'<li>{name} — {price:.2f} <form method="post" action="/cart/add" style="display:inline">'
        f'<input type="hidden" name="item" value="{name}"><button>Add</button></form></li>'
        for name, price in PRODUCTS.items()
    )
    return page(f"<h1>Shop</h1><ul>{rows}</ul>", await s.get(Login), await s.get(Cart))


async def cart(request: Request) -> Response:
    s = satchel.sessions_of(request)
    current = await s.get(Cart) or Cart()
    rows = "".join(f"<li>{qty} x {name}</li>" for name, qty in current.items.items()) or "<li>empty</li>"
    total = sum(PRODUCTS[name] * qty for name, qty in current.items.items())
    body = (
        f"<h1>Cart</h1><ul>{rows}</ul><p>Total: {total:.2f}</p>"
        '<form method="post" action="/cart/clear"><button>Empty the cart</button></form>'
    )
    return page(body, await s.get(Login), current)


async def add(request: Request) -> Response:
    s = satchel.sessions_of(request)
    item = await field(request, "item")
    if item in PRODUCTS:
        current = await s.get(Cart) or Cart()
        current.items[item] = current.items.get(item, 0) + 1  # in-place change: saved too
        s.set(current)
    return RedirectResponse("/", status_code=303)


async def clear_cart(request: Request) -> Response:
    satchel.sessions_of(request).clear(Cart)
    return RedirectResponse("/cart", status_code=303)


async def login(request: Request) -> Response:
    s = satchel.sessions_of(request)
    if request.method == "POST":
        user = (await field(request, "user")).strip()[:40]
        if user:
            s.clear(Login)  # sign-in starts a new session: a new ID (no fixation), a new lifetime
            device = request.headers.get("user-agent", "unknown device")[:120]
            s.set(Login(user=user), attributes={"device": device})
            return RedirectResponse("/", status_code=303)
    body = (
        '<h1>Sign in</h1><form method="post"><input name="user" placeholder="your name" autofocus>'
        "<button>Sign in</button></form>"
    )
    return page(body, await s.get(Login), await s.get(Cart))


async def logout(request: Request) -> Response:
    satchel.sessions_of(request).clear(Login)
    return RedirectResponse("/", status_code=303)


def _ago(seconds: float) -> str:
    seconds = max(0.0, time.time() - seconds)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    return f"{int(seconds // 3600)} h ago"


async def account(request: Request) -> Response:
    """Where am I signed in? Every session of this user, on any device, and a way to end them."""
    s = satchel.sessions_of(request)
    login = await s.get(Login)
    if login is None:
        return RedirectResponse("/login", status_code=303)
    rows = []
    for info in await s.list_owned(Login):
        device = html.escape(info.attributes.get("device", "unknown device"))
        action = (
            "<i>this device</i>"
            if info.current
            else f'<form method="post" action="/account/end" style="display:inline">'
            f'<input type="hidden" name="handle" value="{info.handle}"><button>Sign out</button></form>'
        )
        rows.append(
            f"<li><b>{device}</b><br>signed in {_ago(info.created)}, last used {_ago(info.last_used)} "
            f"{action}</li>"
        )
    body = (
        f"<h1>Your sessions</h1><ul>{''.join(rows)}</ul>"
        '<form method="post" action="/account/others"><button>Sign out all other devices</button></form>'
    )
    return page(body, login, await s.get(Cart))


async def end_device(request: Request) -> Response:
    # a handle names a session but is not a credential: it only ends sessions of this user
    await satchel.sessions_of(request).revoke_session(Login, await field(request, "handle"))
    return RedirectResponse("/account", status_code=303)


async def end_others(request: Request) -> Response:
    await satchel.sessions_of(request).revoke_owner(Login)  # keeps this one
    return RedirectResponse("/account", status_code=303)


def build_app(storage_url: str | None = None, *, secure: bool | None = None) -> satchel.SessionMiddleware:
    VAR.mkdir(parents=True, exist_ok=True)
    key = secret()
    sessions = satchel.Sessions(
        satchel.cookie(Cart, "cart", transformers=[satchel.Sign(key)], max_age=7 * 24 * 3600, secure=secure),
        satchel.cookie(
            Login,
            "sid",
            storage=storage_url or f"sqlite:///{VAR / 'sessions.db'}",
            max_age=3600,
            max_lifetime=12 * 3600,
            transformers=[satchel.Sign(key)],
            owner=lambda login: login.user,  # lets the account page list and end every device
            secure=secure,
        ),
    )
    routes = [
        Route("/", shop),
        Route("/cart", cart),
        Route("/cart/add", add, methods=["POST"]),
        Route("/cart/clear", clear_cart, methods=["POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/account", account),
        Route("/account/end", end_device, methods=["POST"]),
        Route("/account/others", end_others, methods=["POST"]),
    ]
    return satchel.SessionMiddleware(Starlette(routes=routes), sessions)


def main() -> None:
    parser = argparse.ArgumentParser(description="satchel demo shop")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--storage", default=None, help="storage URL for the login (default: SQLite)")
    args = parser.parse_args()
    # secure=None would mark the cookies Secure, which some browsers (Safari) refuse over
    # plain http even on this machine: the demo, served over http on a loopback address,
    # says secure=False itself. An app behind a TLS proxy keeps the default.
    local = args.host in ("127.0.0.1", "localhost", "::1")
    app = build_app(args.storage, secure=False if local else None)
    print(f"satchel demo shop: http://{args.host}:{args.port}/  (sessions in {VAR.resolve()})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
