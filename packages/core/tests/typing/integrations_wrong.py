"""Integration usages that ``mypy --strict`` must refuse.

Checked by ``test_typing_integrations.py``; never run. Every line ending in ``# E: <code>``
must get exactly that error, and no other line may get one.
"""

from __future__ import annotations

import msgspec
import satchel
from fastapi import FastAPI
from quart import Quart
from satchel.integrations import fastapi as satchel_fastapi
from satchel.integrations import quart as satchel_quart
from satchel.integrations.fastapi import OptionalSession, Session, SessionsDep, session


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


async def optional_taken_as_present(cart: OptionalSession[Cart]) -> list[str]:
    return cart.items  # E: union-attr


async def one_type_taken_for_another(login: Session[Login]) -> list[str]:
    return login.items  # E: attr-defined, no-any-return


async def sessions_are_not_a_session(s: SessionsDep) -> str:
    return s.user  # E: attr-defined, no-any-return


def mappings_are_not_sessions(api: FastAPI, mapping: satchel.Mapping[Cart]) -> None:
    satchel_fastapi.install(api, mapping)  # E: arg-type


def a_fastapi_install_is_not_a_quart_one(app: Quart, sessions: satchel.Sessions) -> None:
    satchel_fastapi.install(app, sessions)  # E: arg-type
    satchel_quart.install(app, mapping=sessions)  # E: call-arg


a_status_is_a_number = session(Login, status_code="403")  # E: arg-type
