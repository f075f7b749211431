"""satchel.integrations.litestar: what the plugin installs, checks and closes."""

import dataclasses
from pathlib import Path
from typing import Any

import msgspec
import pytest
import satchel
from integrations.apps import KEY, Cart, Login, litestar_app, shop_sessions
from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send
from satchel.integrations.litestar import SatchelPlugin, session


class Unmapped(msgspec.Struct):
    note: str


class RecordingStorage(satchel.MemoryStorage):
    """A real MemoryStorage that counts how often it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1
        await super().aclose()


def sessions_on(storage: satchel.SessionStorage) -> satchel.Sessions:
    return satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
        satchel.cookie(Login, "SID", storage=storage, transformers=[satchel.Sign(KEY)]),
    )


def client(app: Litestar) -> TestClient[Litestar]:
    return TestClient(app, base_url="https://testserver.local")


def test_a_required_session_that_is_absent_answers_401(tmp_path: Path) -> None:
    with client(litestar_app(shop_sessions(tmp_path))) as c:
        response = c.get("/logout")
        assert response.status_code == 401
        assert response.json()["detail"] == "sign-in required"


def test_a_provider_can_answer_another_status() -> None:
    @get("/admin", dependencies={"admin": session(Login, status_code=403, detail="admins only")})
    async def admin(admin: NamedDependency[Login]) -> str:
        return admin.user

    with client(Litestar([admin], plugins=[SatchelPlugin(sessions_on(satchel.MemoryStorage()))])) as c:
        response = c.get("/admin")
        assert (response.status_code, response.json()["detail"]) == (403, "admins only")


def test_the_apps_own_middleware_sees_the_sessions() -> None:
    def stamp(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            satchel.sessions_of(scope).set(Cart(items=["from a middleware"]))
            await app(scope, receive, send)

        return middleware

    @get("/cart")
    async def show(sessions: NamedDependency[satchel.RequestSessions]) -> list[str]:
        cart = await sessions.get(Cart)
        return [] if cart is None else cart.items

    plugin = SatchelPlugin(sessions_on(satchel.MemoryStorage()))
    with client(Litestar([show], middleware=[stamp], plugins=[plugin])) as c:
        assert c.get("/cart").json() == ["from a middleware"]


def test_the_openapi_schema_shows_no_parameter_for_a_session_dependency(tmp_path: Path) -> None:
    with client(litestar_app(shop_sessions(tmp_path))) as c:
        paths = c.get("/schema/openapi.json").json()["paths"]
    assert [p["name"] for p in paths["/add"]["get"]["parameters"]] == ["item"]
    for path in ("/cart", "/me", "/logout", "/regenerate"):
        assert "parameters" not in paths[path]["get"], path


def test_a_provider_of_an_unmapped_type_fails_startup_naming_the_mapped_types() -> None:
    @get("/ok")
    async def ok() -> str:
        return "ok"

    app = Litestar(
        [ok],
        plugins=[SatchelPlugin(sessions_on(satchel.MemoryStorage()))],
        dependencies={"note": session(Unmapped)},
    )
    with pytest.raises(Exception) as raised, client(app):  # noqa: PT011 - the test client wraps it
        pass
    errors = [
        e for e in getattr(raised.value, "exceptions", [raised.value]) if isinstance(e, satchel.ConfigError)
    ]
    assert [str(e) for e in errors] == [
        "the handler 'ok' (/ok) asks for the session type Unmapped: no session mapping for "
        f"{Unmapped!r}; the mapped ones are: Cart ('CART'), Login ('SID')"
    ]


@dataclasses.dataclass
class Limit:
    """A callable provider that cannot be hashed, as Litestar allows."""

    most: int

    async def __call__(self) -> int:
        return self.most


def test_the_startup_check_passes_over_providers_of_any_kind() -> None:
    @get("/most", dependencies={"most": Provide(Limit(3))})
    async def most(most: NamedDependency[int]) -> int:
        return most

    with client(Litestar([most], plugins=[SatchelPlugin(sessions_on(satchel.MemoryStorage()))])) as c:
        assert c.get("/most").json() == 3


def test_shutdown_closes_the_storages() -> None:
    storage = RecordingStorage()
    with client(litestar_app(sessions_on(storage))) as c:
        c.get("/login", params={"user": "ada"})
        assert storage.closed == 0
    assert storage.closed == 1


def test_the_plugin_refuses_what_is_not_a_sessions() -> None:
    mapping: Any = satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)])
    with pytest.raises(satchel.ConfigError, match=r"wrap your mappings: satchel.Sessions\("):
        SatchelPlugin(mapping)
