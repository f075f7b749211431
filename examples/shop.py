"""The demo: a small shop that shows its own sessions.

Two sessions, two ways of keeping one:

* the **cart** is *stateless*: the whole value travels in the ``cart`` cookie, signed
  (``satchel.Sign``) so the browser can hold it but not change it; or encrypted with
  ``--encrypt`` (``satchel_crypto.Encrypt``, when satchel-crypto is installed) so it
  cannot read it either;
* the **login** is *server-side*: the ``sid`` cookie carries only a signed ID, and the
  session is a row in SQLite (``var/sessions.db`` under the working directory), owned
  by its user name, so the account page lists every device signed in as you and can sign
  any of them out.

A panel at the foot of every page shows, for each mapping, what the browser holds and
what the server made of it, so you can watch both change as you shop, sign in and out.

Run it with ``make demo`` and open the URL it prints.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import html
import importlib.util
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
import satchel
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

VAR = Path(os.environ.get("SATCHEL_DEMO_DIR", "var"))

PRODUCTS = {"apple": 0.5, "bread": 2.2, "cheese": 4.9, "coffee": 7.5}
MAX_NAME = 40  # characters in a user name

# Encryption is optional: the demo needs only satchel, satchel-sqlite, starlette and uvicorn.
HAVE_CRYPTO = importlib.util.find_spec("satchel_crypto") is not None

# A shopping bag, inline: served at /favicon.ico so the browser's request finds something.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<path d="M11 11V9a5 5 0 0 1 10 0v2" fill="none" stroke="#6b4226" stroke-width="2.5"/>'
    '<rect x="5" y="11" width="22" height="18" rx="3" fill="#b5651d"/></svg>'
)


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


# -- the sessions panel ---------------------------------------------------------------


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}"
    return f"{int(seconds)} s"


def _ago(at: float) -> str:
    seconds = max(0.0, time.time() - at)
    return "just now" if seconds < 60 else f"{_span(seconds)} ago"


def set_cookie_line(m: satchel.Mapping[Any], size: int) -> str:
    """The Set-Cookie header this mapping sends, from its configuration (value elided)."""
    a = m.attributes
    assert a is not None  # a cookie mapping
    parts = [f"{m.name}=<{size} characters>"]
    if m.max_age is not None:
        parts.append(f"Max-Age={int(m.max_age)}")
    parts.append(f"Path={a.path}")
    if a.domain:
        parts.append(f"Domain={a.domain}")
    if a.http_only:
        parts.append("HttpOnly")  # page scripts cannot read it: the panel is rendered here, on the server
    if a.same_site:
        parts.append(f"SameSite={a.same_site.capitalize()}")
    if a.secure is not False:  # None: Secure, but for plain http through a test client
        parts.append("Secure")
    return "; ".join(parts)


def readable(value: str) -> str:
    """What anyone holding a cookie can read in it: its bytes, unprintable ones as dots."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return "(not base64url)"
    return "".join(chr(b) if 32 <= b < 127 else "·" for b in raw)


async def about(request: Request, m: satchel.Mapping[Any]) -> str:
    """One mapping: how it is configured, what the browser sent, what the server decoded."""
    s = satchel.sessions_of(request)
    kind = "server-side" if m.server_side else "stateless"
    kept = html.escape(repr(m.storage)) if m.storage is not None else "the cookie itself"
    transformers = ", ".join(type(t).__name__ for t in m.transformers)
    lines = [
        f"<h3><code>{m.name}</code>: {m.type.__name__}, {m.transport}, {kind}</h3>",
        f"<p>kept in {kept}; transformers: {transformers}</p>",
    ]
    sent = request.cookies.get(m.name)  # from the request's Cookie header
    value = await s.get(m.type)
    if sent is None:
        lines.append("<p>browser holds: <i>no cookie</i></p>")
    else:
        line = html.escape(set_cookie_line(m, len(sent)))
        lines.append(f"<p>browser holds, as Set-Cookie sent it: <code>{line}</code></p>")
        if not m.server_side:
            # a stateless value is readable in its cookie unless encrypted. Only the printable
            # bytes are shown, never the cookie itself: a script could copy it from the page,
            # which is what HttpOnly prevents. For the same reason no session ID is shown.
            lines.append(
                f"<p>readable by whoever holds it: <code>{html.escape(readable(sent)[:160])}</code></p>"
            )
    if value is None:
        refused = " (sent, but refused: altered, expired or ended)" if sent is not None else ""
        lines.append(f"<p>server decoded: <i>no session</i>{refused}</p>")
        return "".join(lines)
    lines.append(f"<p>server decoded: <code>{html.escape(repr(value))}</code></p>")
    if m.server_side:
        # the row, read as any storage reads it: under the store key (the handle), which is
        # SHA-256 of the session ID, so a dump of the table holds no usable ID
        handle = await s.handle(m.type)
        row = await m.store.read(handle) if handle else None
        if row is not None:
            lines.append(f"<p>stored row: key <code>{handle}</code>, {len(row)} bytes</p>")
        if m.owner is not None:  # the owner listing carries the session's times
            info = next((i for i in await s.list_owned(m.type) if i.current), None)
            if info is not None:
                ends = f"ends at {_clock(info.expires)} unless used again" if info.expires else "never ends"
                if m.max_lifetime is not None:
                    ends += f", and at {_clock(info.created + m.max_lifetime)} whatever happens"
                lines.append(
                    f"<p>signed in {_ago(info.created)}, last used {_ago(info.last_used)}; {ends}</p>"
                )
    elif m.max_age is not None:
        # the expiry travels inside the protected value: the server enforces it, not just the browser
        lines.append(f"<p>ends {_span(m.max_age)} after the server last sent it</p>")
    return "".join(lines)


async def panel(request: Request) -> str:
    mappings = request.app.state.sessions.mappings
    sections = "".join(
        [f'<section id="session-{m.name}">{await about(request, m)}</section>' for m in mappings]
    )
    if not HAVE_CRYPTO:
        hint = "to encrypt the cart, install satchel-crypto and run: python -m examples.shop --encrypt"
    elif not request.app.state.encrypt:
        hint = "run with --encrypt to encrypt the cart, and compare what is readable"
    else:
        hint = "the cart is encrypted: a cart signed before the switch reads as no cart"
    return f'<aside id="sessions"><h2>Sessions</h2>{sections}<p><small>{hint}</small></p></aside>'


# -- pages ------------------------------------------------------------------------------


async def page(request: Request, body: str, *, status: int = 200) -> HTMLResponse:
    s = satchel.sessions_of(request)
    login, cart = await s.get(Login), await s.get(Cart)
    count = sum(cart.items.values()) if cart else 0
    who = (
        f'signed in as <a href="/account"><b>{html.escape(login.user)}</b></a> '
        '<form method="post" action="/logout" style="display:inline"><button>Sign out</button></form>'
        if login
        else '<a href="/login">Sign in</a>'
    )
    return HTMLResponse(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>satchel shop</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>body{{font-family:sans-serif;max-width:48em;margin:2em auto}}li{{margin:.3em 0}}
.error{{color:#b00}}aside{{background:#f4f1ec;padding:.2em 1em;margin-top:2em;font-size:.9em}}
aside code{{word-break:break-all}}</style>
</head><body><header><a href="/">Shop</a> · <a href="/cart">Cart ({count})</a> · {who}</header>
<hr>{body}{await panel(request)}</body></html>""",
        status_code=status,
    )


async def shop(request: Request) -> Response:
    rows = "".join(
        f'<li>{name} — {price:.2f} <form method="post" action="/cart/add" style="display:inline">'
        f'<button name="item" value="{name}">Add</button></form></li>'
        for name, price in PRODUCTS.items()
    )
    return await page(request, f"<h1>Shop</h1><ul>{rows}</ul>")


async def cart(request: Request) -> Response:
    current = await satchel.sessions_of(request).get(Cart) or Cart()
    rows = "".join(f"<li>{qty} x {name}</li>" for name, qty in current.items.items()) or "<li>empty</li>"
    total = sum(PRODUCTS[name] * qty for name, qty in current.items.items())
    body = (
        f"<h1>Cart</h1><ul>{rows}</ul><p>Total: {total:.2f}</p>"
        '<form method="post" action="/cart/clear"><button>Empty the cart</button></form>'
    )
    return await page(request, body)


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


def check_name(user: str) -> str:
    """What is wrong with a user name, or "" when nothing is."""
    if not user:
        return "Enter a name to sign in."
    if len(user) > MAX_NAME:
        return f"A name has at most {MAX_NAME} characters; that one has {len(user)}."
    if not user.isprintable():
        return "A name cannot contain control characters."
    return ""


async def login(request: Request) -> Response:
    error = ""
    if request.method == "POST":
        # checked here, on the server: a browser's own form checks are a courtesy any
        # client can skip. A refused name is kept nowhere: no session, no cookie.
        user = (await field(request, "user")).strip()
        error = check_name(user)
        if not error:
            s = satchel.sessions_of(request)
            s.clear(Login)  # sign-in starts a new session: a new ID (no fixation), a new lifetime
            device = request.headers.get("user-agent", "unknown device")[:120]
            s.set(Login(user=user), attributes={"device": device})
            return RedirectResponse("/", status_code=303)
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = (
        f'<h1>Sign in</h1>{message}<form method="post"><input name="user" placeholder="your name" autofocus>'
        "<button>Sign in</button></form>"
    )
    return await page(request, body, status=400 if error else 200)


async def logout(request: Request) -> Response:
    satchel.sessions_of(request).clear(Login)
    return RedirectResponse("/", status_code=303)


async def account(request: Request) -> Response:
    """Where am I signed in? Every session of this user, on any device, and a way to end them."""
    s = satchel.sessions_of(request)
    if await s.get(Login) is None:
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
    return await page(request, body)


async def end_device(request: Request) -> Response:
    # a handle names a session but is not a credential: it only ends sessions of this user
    await satchel.sessions_of(request).revoke_session(Login, await field(request, "handle"))
    return RedirectResponse("/account", status_code=303)


async def end_others(request: Request) -> Response:
    await satchel.sessions_of(request).revoke_owner(Login)  # keeps this one
    return RedirectResponse("/account", status_code=303)


async def favicon(request: Request) -> Response:
    return Response(FAVICON, media_type="image/svg+xml", headers={"cache-control": "max-age=86400"})


async def http_error(request: Request, exc: Exception) -> Response:
    """A page, not a bare "Not Found", for an unknown URL (and any other HTTP error)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        title, say = "Page not found", f"Nothing at <code>{html.escape(request.url.path)}</code>."
    else:
        title, say = html.escape(exc.detail), ""
    body = f'<h1>{title}</h1><p>{say} <a href="/">Back to the shop</a></p>'
    return await page(request, body, status=exc.status_code)


def cart_transformer(key: str, encrypt: bool) -> satchel.Transformer:
    if not encrypt:
        return satchel.Sign(key)
    try:
        from satchel_crypto import Encrypt
    except ImportError:
        raise satchel.ConfigError(
            "encrypting the cart needs satchel-crypto: pip install satchel-crypto, or drop --encrypt"
        ) from None
    return Encrypt(key)


def build_app(
    storage_url: str | None = None, *, secure: bool | None = None, encrypt: bool = False
) -> satchel.SessionMiddleware:
    VAR.mkdir(parents=True, exist_ok=True)
    key = secret()
    sessions = satchel.Sessions(
        satchel.cookie(
            Cart, "cart", transformers=[cart_transformer(key, encrypt)], max_age=7 * 24 * 3600, secure=secure
        ),
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
        Route("/favicon.ico", favicon),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.sessions = sessions  # for the panel
    app.state.encrypt = encrypt
    return satchel.SessionMiddleware(app, sessions)


def main() -> None:
    parser = argparse.ArgumentParser(description="satchel demo shop")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--storage", default=None, help="storage URL for the login (default: SQLite)")
    parser.add_argument("--encrypt", action="store_true", help="encrypt the cart (needs satchel-crypto)")
    args = parser.parse_args()
    if args.encrypt and not HAVE_CRYPTO:
        parser.error("--encrypt needs satchel-crypto: pip install satchel-crypto")
    # secure=None would mark the cookies Secure, which some browsers (Safari) refuse over
    # plain http even on this machine: the demo, served over http on a loopback address,
    # says secure=False itself. An app behind a TLS proxy keeps the default.
    local = args.host in ("127.0.0.1", "localhost", "::1")
    app = build_app(args.storage, secure=False if local else None, encrypt=args.encrypt)
    print(f"satchel demo shop: http://{args.host}:{args.port}/  (sessions in {VAR.resolve()})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
