"""satchel.integrations.fastapi: typed dependencies on HTTP and websocket routes, their
OpenAPI schema, the check of the routes at startup, and a real uvicorn server."""

import logging
import socket
import threading
import warnings
from pathlib import Path
from typing import Annotated, Any

import httpx
import msgspec
import pytest
import satchel
import uvicorn
from core_helpers import serve
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse
from integrations.apps import KEY, Cart, Login, fastapi_app, shop_sessions
from satchel.integrations.fastapi import (
    OptionalSession,
    Session,
    SessionRequired,
    SessionsDep,
    install,
    session,
)
from uvicorn.config import STARTUP_FAILURE
from websockets.sync.client import connect

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient
    from starlette.testclient import WebSocketDenialResponse


class Unmapped(msgspec.Struct):
    note: str


def memory_sessions() -> satchel.Sessions:
    return satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
        satchel.cookie(Login, "SID", storage=satchel.MemoryStorage(), transformers=[satchel.Sign(KEY)]),
    )


def test_the_openapi_schema_shows_no_parameter_for_a_session_dependency(tmp_path: Path) -> None:
    with TestClient(fastapi_app(shop_sessions(tmp_path))) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert [p["name"] for p in paths["/add"]["get"]["parameters"]] == ["item"]
    for path in ("/cart", "/me", "/logout", "/regenerate"):
        assert "parameters" not in paths[path]["get"], path
    assert all("requestBody" not in route["get"] for route in paths.values())


def test_a_required_session_that_is_absent_answers_401_and_present_gives_the_value() -> None:
    api = FastAPI()

    @api.get("/me")
    async def me(login: Session[Login]) -> str:
        return login.user

    @api.get("/in")
    async def sign_in(s: SessionsDep) -> None:
        s.set(Login(user="ada"))

    install(api, memory_sessions())
    with TestClient(api) as client:
        response = client.get("/me")
        assert (response.status_code, response.json()) == (401, {"detail": "sign-in required"})
        client.get("/in")
        assert client.get("/me").json() == "ada"


def test_the_app_chooses_the_answer_to_a_missing_session() -> None:
    api = FastAPI()
    Admin = Annotated[Login, session(Login, status_code=403, detail="admins only")]

    @api.get("/admin")
    async def admin(login: Admin) -> str:
        return login.user

    @api.get("/account")
    async def account(login: Session[Login]) -> str:
        return login.user

    @api.exception_handler(SessionRequired)
    async def to_sign_in(request: Request, exc: SessionRequired) -> Any:
        if exc.status_code == 401:
            return RedirectResponse(f"/sign-in?next={request.url.path}&for={exc.key.__name__}")
        return await http_exception_handler(request, exc)

    install(api, memory_sessions())
    with TestClient(api, follow_redirects=False) as client:
        response = client.get("/admin")
        assert (response.status_code, response.json()) == (403, {"detail": "admins only"})
        response = client.get("/account")
        assert response.status_code == 307
        assert response.headers["location"] == "/sign-in?next=/account&for=Login"


def test_a_websocket_route_gets_its_sessions_and_sets_one_on_the_handshake() -> None:
    """The dependency takes an HTTPConnection: the docs' old ``get_sessions(request: Request)``
    made the handshake of a websocket route answer 500."""
    api = FastAPI()

    @api.websocket("/ws")
    async def ws(websocket: WebSocket, s: SessionsDep, cart: OptionalSession[Cart]) -> None:
        s.set(Cart(items=[*(cart or Cart()).items, "from the socket"]))
        await websocket.accept()
        await websocket.send_json("hello")
        await websocket.close()

    @api.get("/cart")
    async def show(cart: Session[Cart]) -> list[str]:
        return cart.items

    install(api, memory_sessions())
    with TestClient(api) as client:
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json() == "hello"
        assert client.get("/cart").status_code == 401, "the test client keeps no handshake cookie"
        cookie = handshake_cookie(api)
        assert client.get("/cart", headers={"cookie": cookie}).json() == ["from the socket"]


def test_a_websocket_route_requiring_a_session_refuses_the_handshake_without_one() -> None:
    api = FastAPI()

    @api.websocket("/ws")
    async def ws(websocket: WebSocket, login: Session[Login]) -> None:
        await websocket.accept()
        await websocket.send_json(login.user)

    install(api, memory_sessions())
    with TestClient(api) as client, pytest.raises(WebSocketDenialResponse) as refused:  # noqa: SIM117
        with client.websocket_connect("/ws"):
            pass
    assert (refused.value.status_code, refused.value.json()) == (401, {"detail": "sign-in required"})


def handshake_cookie(app: Any) -> str:
    """The Set-Cookie of the websocket handshake at /ws, as a Cookie header, read off the
    ASGI messages (the test client does not show handshake headers)."""
    import anyio

    sent: list[Any] = []

    async def run() -> None:
        messages = iter([{"type": "websocket.connect"}])

        async def receive() -> Any:
            return next(messages, {"type": "websocket.disconnect", "code": 1000})

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "websocket",
            "path": "/ws",
            "raw_path": b"/ws",
            "query_string": b"",
            "headers": [],
            "scheme": "ws",
            "server": ("testserver", 80),
            "root_path": "",
            "subprotocols": [],
        }
        await app(scope, receive, send)

    anyio.run(run)
    (accept,) = [m for m in sent if m["type"] == "websocket.accept"]
    (value,) = [v for k, v in accept["headers"] if k == b"set-cookie"]
    return str(value.decode().partition(";")[0])


def unmapped_app(sessions: satchel.Sessions) -> FastAPI:
    api = FastAPI()

    async def audit(note: OptionalSession[Unmapped]) -> None:
        pass

    @api.get("/ok")
    async def ok() -> str:
        return "ok"

    @api.get("/audited", dependencies=[Depends(audit)])
    async def audited() -> str:
        return "ok"

    install(api, sessions)
    return api


def test_a_dependency_on_an_unmapped_type_fails_startup_naming_the_mapped_types() -> None:
    with pytest.raises(satchel.ConfigError) as raised, TestClient(unmapped_app(memory_sessions())):
        pass
    message = str(raised.value)
    assert "the route GET /audited asks for the session type Unmapped" in message
    assert "the mapped ones are: Cart ('CART'), Login ('SID')" in message


@pytest.mark.anyio
async def test_without_a_lifespan_the_first_request_fails_with_the_same_message() -> None:
    transport = httpx.ASGITransport(unmapped_app(memory_sessions()))  # runs no lifespan
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for _ in range(2):
            with pytest.raises(satchel.ConfigError, match="GET /audited asks for the session type Unmapped"):
                await client.get("/ok")


def test_uvicorn_refuses_to_start_an_app_asking_for_an_unmapped_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(unmapped_app(memory_sessions()), log_config=None)  # lifespan "auto"
    server = uvicorn.Server(config)
    exits: list[object] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit as exc:  # what `uvicorn app:app` exits with
            exits.append(exc.code)

    with caplog.at_level(logging.ERROR, logger="uvicorn.error"):
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(10)
    sock.close()
    assert not thread.is_alive()
    assert not server.started
    assert exits == [STARTUP_FAILURE]
    assert any("asks for the session type Unmapped" in r.getMessage() for r in caplog.records)


def test_without_install_the_first_use_of_an_unmapped_type_says_what_is_mapped() -> None:
    api = FastAPI()

    @api.get("/note")
    async def note(note: OptionalSession[Unmapped]) -> None:
        pass

    app = satchel.SessionMiddleware(api, memory_sessions())
    with TestClient(app) as client, pytest.raises(satchel.ConfigError, match="the mapped ones are: Cart"):
        client.get("/note")


def test_under_uvicorn_over_the_wire(tmp_path: Path) -> None:
    sessions = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], secure=False),
        satchel.cookie(
            Login,
            "SID",
            storage=f"sqlite:///{tmp_path / 'sessions.db'}",
            transformers=[satchel.Sign(KEY)],
            secure=False,
        ),
    )
    with serve(fastapi_app(sessions)) as host, httpx.Client(base_url=f"http://{host}") as client:
        assert client.get("/add", params={"item": "apple"}).json() == ["apple"]
        assert client.get("/cart").json() == ["apple"]
        assert client.get("/me").json() is None
        assert client.get("/logout").status_code == 401
        client.get("/login", params={"user": "ada"})
        assert client.get("/me").json() == "ada"
        old = client.cookies["SID"]
        client.get("/regenerate")
        assert client.cookies["SID"] != old
        assert client.get("/me", headers={"cookie": f"SID={old}"}).json() is None
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        with connect(f"ws://{host}/ws", additional_headers={"Cookie": cookie}) as ws:
            assert msgspec.json.decode(ws.recv()) == "ada"
        client.get("/logout")
        assert client.get("/me").json() is None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
