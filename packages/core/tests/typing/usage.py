"""Usage examples that ``mypy --strict`` must accept, with the types it must infer.

Checked by ``test_typing.py``; never run. Each ``assert_type`` pins what a user's editor
shows, so a change in the public types shows up here first.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypedDict

import attrs
import msgspec
import satchel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from typing_extensions import assert_type

SECRET = secrets.token_urlsafe(32)


# -- session types: every supported kind ----------------------------------------------------


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


class Api(msgspec.Struct):
    client: str


@dataclasses.dataclass
class Prefs:
    theme: str = "light"


@attrs.define
class Visit:
    count: int = 0


class Flash(TypedDict):
    message: str


# -- extension points ---------------------------------------------------------------------


class DictStorage:
    """A custom storage: satisfies SessionStorage structurally, no base class needed."""

    capabilities = satchel.StorageCapabilities(persistent=False, event_loops=frozenset({"asyncio"}))

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    async def read(self, id: str) -> bytes | None:
        return self._data.get(id)

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        self._data[id] = data

    async def invalidate(self, id: str) -> None:
        self._data.pop(id, None)

    async def touch(self, id: str, ttl: float | None) -> None:
        pass

    async def aclose(self) -> None:
        self._data.clear()

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        if self._data.get(id) != expected:
            return False
        self._data[id] = data
        return True


class LoginSerializer:
    """A custom serializer for one session type."""

    def encode(self, value: Login) -> bytes:
        return value.user.encode()

    def decode(self, data: bytes) -> Login:
        try:
            return Login(user=data.decode())
        except UnicodeDecodeError as exc:
            raise satchel.SerializationError("not UTF-8") from exc


class Reverse:
    """A custom transformer (not a protection: an example of the shape)."""

    def encode(self, data: bytes) -> bytes:
        return data[::-1]

    def decode(self, data: bytes) -> bytes | None:
        return data[::-1] or None


def counter_id() -> str:
    return secrets.token_hex(24)


storage: satchel.SessionStorage = DictStorage()
compare_and_set: satchel.CompareAndSet = DictStorage()
login_serializer: satchel.Serializer[Login] = LoginSerializer()
reverse: satchel.Transformer = Reverse()
sign: satchel.Transformer = satchel.Sign(SECRET, fallback_keys=[b"an-older-key-of-at-least-32-bytes!"])
identity: satchel.IdentityGenerator = counter_id
default_identity: satchel.IdentityGenerator = satchel.token_id
json_cart: satchel.Serializer[Cart] = satchel.JSONSerializer(Cart)
msgpack_cart: satchel.Serializer[Cart] = satchel.MsgPackSerializer(Cart)
opened: satchel.SessionStorage = satchel.open_storage("memory://")
assert_type(satchel.capabilities_of(storage), satchel.StorageCapabilities)


# -- configuration: the README's example and its neighbours --------------------------------

cart_mapping = satchel.cookie(Cart, "CART", transformers=[satchel.Sign(SECRET)])
assert_type(cart_mapping, satchel.Mapping[Cart])

sessions = satchel.Sessions(
    cart_mapping,
    satchel.cookie(
        Login,
        "SID",
        storage="memory://",
        max_age=3600,
        max_lifetime=12 * 3600,
        serializer=login_serializer,
        transformers=[satchel.Sign(SECRET), reverse],
        identity=counter_id,
        same_site="strict",
        detect_conflicts=False,
    ),
    satchel.header(Api, "X-Session", storage=satchel.MemoryStorage()),
    satchel.cookie(Prefs, "PREFS", storage=DictStorage(), detect_conflicts=True, serializer="json"),
    satchel.cookie(Visit, "VISIT", transformers=[satchel.Digest(), sign], max_age=None, secure=True),
    satchel.header(Flash, "X-Flash", transformers=[sign], max_size=2048, on_storage_error="ignore"),
    satchel.cookie(dict, "BAG", storage=storage, serializer=satchel.JSONSerializer),
)


# -- handlers -------------------------------------------------------------------------------


async def view(request: Request) -> Response:
    s = satchel.sessions_of(request)
    assert_type(s, satchel.RequestSessions)

    assert_type(await s.get(Cart), Cart | None)
    cart = await s.get(Cart) or Cart()
    assert_type(cart, Cart)
    s.set(Cart(items=[*cart.items, "apple"]))
    cart.items.append("pear")  # in-place changes are saved too

    s.clear(Login)
    s.regenerate(Login)
    login = await s.get_or_set(Login, lambda: Login(user="anon"))
    assert_type(login, Login)

    async def fresh_api() -> Api:
        return Api(client="cli")

    assert_type(await s.get_or_set(Api, fresh_api), Api)

    assert_type(await s.get(Prefs), Prefs | None)
    assert_type(await s.get(Visit), Visit | None)
    visit = await s.get_or_set(Visit, Visit)
    visit.count += 1
    flash = await s.get(Flash)
    s.set(Flash(message="saved"), key=Flash)
    bag = await s.get(dict)
    if bag is not None:
        bag["seen"] = True

    by_name = await s.get("CART")
    assert_type(by_name, object | None)

    await s.save()
    return JSONResponse({"items": cart.items, "user": login.user, "flash": flash and flash["message"]})


async def socket(websocket: WebSocket) -> None:
    s = satchel.sessions_of(websocket)
    login = await s.get(Login)
    await websocket.accept()
    await websocket.send_text(login.user if login is not None else "anonymous")


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def raw_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    s = satchel.sessions_of(scope)
    user = await s.get(Login)
    body = (user.user if user else "nobody").encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


app = satchel.SessionMiddleware(Starlette(routes=[Route("/", view)]), sessions)
raw_app = satchel.SessionMiddleware(raw_asgi, sessions)


async def shutdown() -> None:
    async with sessions:
        pass
    await sessions.aclose()


# -- errors a handler may catch ------------------------------------------------------------


async def careful(request: Request) -> Response:
    s = satchel.sessions_of(request)
    try:
        s.set(Cart(items=["x" * 10_000]))
        await s.save()
    except satchel.SessionTooLarge as exc:
        assert_type(exc.size, int)
        return JSONResponse({"too large": exc.budget}, status_code=413)
    except satchel.SessionConflict:
        return JSONResponse({}, status_code=409)
    except satchel.StorageError:
        return JSONResponse({}, status_code=503)
    return JSONResponse({})


# -- owners: sign out everywhere ----------------------------------------------------------------


owned = satchel.Sessions(
    satchel.cookie(Login, "SID", storage="memory://", owner=lambda login: login.user, max_age=3600),
)


async def account(request: Request) -> Response:
    s = satchel.sessions_of(request)
    listed = await s.list_owned(Login)
    assert_type(listed, list[satchel.SessionInfo])
    assert_type(listed[0].expires, float | None)
    assert_type(await s.handle(Login), str | None)
    assert_type(await s.revoke_owner(Login, keep_current=True), int)
    assert_type(await s.revoke_session(Login, listed[0].handle), bool)
    s.set(Login(user="ada"), attributes={"device": "phone"})
    return JSONResponse([info.handle for info in listed])


async def lock_account(user: str) -> int:
    assert_type(await owned.list_owned(Login, user), list[satchel.SessionInfo])
    assert_type(await owned.revoke_session(Login, user, "handle"), bool)
    return await owned.revoke_owner(Login, user)


# -- a plugin's hook --------------------------------------------------------------------


@satchel.hookimpl
def satchel_register(registry: satchel.Registry) -> None:
    registry.storage("toy", "satchel:MemoryStorage.from_url")


@satchel.hookimpl(tryfirst=True)
def satchel_register_first(registry: satchel.Registry) -> None:
    registry.serializer("toy", "satchel:JSONSerializer")


def register_all(registry: satchel.Registry) -> None:
    # the marked functions keep their signatures (an Any would fail these)
    assert_type(satchel_register(registry), None)
    assert_type(satchel_register_first(registry), None)


# The middleware fits each framework's own middleware slot, typed as that framework types ASGI.
def framework_slots() -> None:
    from litestar import Litestar
    from litestar.middleware import DefineMiddleware
    from starlette.middleware import Middleware

    Starlette(middleware=[Middleware(satchel.SessionMiddleware, sessions=sessions)])
    Litestar(
        middleware=[DefineMiddleware(satchel.SessionMiddleware, sessions=sessions)],
        on_shutdown=[sessions.aclose],
    )
