"""The framework integrations' public types under ``mypy --strict``: what a user writes.

Checked by ``test_typing_integrations.py``; never run.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import satchel
from fastapi import FastAPI, WebSocket
from litestar import Litestar, get
from litestar.di import NamedDependency
from quart import Quart
from satchel.integrations import fastapi as satchel_fastapi
from satchel.integrations import litestar as satchel_litestar
from satchel.integrations import quart as satchel_quart
from satchel.integrations import starlette as satchel_starlette
from satchel.integrations.fastapi import OptionalSession, Session, SessionRequired, SessionsDep, session
from starlette.applications import Starlette
from typing_extensions import assert_type


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


sessions = satchel.Sessions(satchel.cookie(Cart, "CART", transformers=[satchel.Sign("k")]))

# -- FastAPI --------------------------------------------------------------------------------

api = FastAPI()
Admin = Annotated[Login, session(Login, status_code=403, detail="admins only")]


@api.get("/me")
async def me(login: Session[Login], cart: OptionalSession[Cart], s: SessionsDep, admin: Admin) -> str:
    assert_type(login, Login)
    assert_type(cart, Cart | None)
    assert_type(s, satchel.RequestSessions)
    assert_type(admin, Login)
    assert_type(await s.get(Cart), Cart | None)
    return login.user


@api.websocket("/ws")
async def ws(websocket: WebSocket, login: OptionalSession[Login]) -> None:
    assert_type(login, Login | None)


def status_of(exc: SessionRequired) -> int:
    assert_type(exc.key, type[Any])
    return exc.status_code


satchel_fastapi.install(api, sessions)

# -- Litestar -------------------------------------------------------------------------------


@get("/me")
async def litestar_me(
    login: NamedDependency[Login], sessions: NamedDependency[satchel.RequestSessions]
) -> str:
    return login.user


lapp = Litestar(
    [litestar_me],
    plugins=[satchel_litestar.SatchelPlugin(sessions)],
    dependencies={
        "login": satchel_litestar.session(Login),
        "cart": satchel_litestar.session(Cart, required=False),
    },
)

# -- Quart and Starlette --------------------------------------------------------------------

qapp = Quart(__name__)
satchel_quart.install(qapp, sessions)


@qapp.get("/")
async def home() -> str:
    assert_type(satchel_quart.current_sessions(), satchel.RequestSessions)
    return ""


sapp = Starlette()
satchel_starlette.install(sapp, sessions)
