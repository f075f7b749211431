"""Startup and shutdown: storages close at every shutdown however the app is wired, and
the same app starts again (test suites, reloaders)."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import satchel
from core_helpers import KEY
from litestar import Litestar, get
from litestar import Request as LitestarRequest
from litestar.middleware import DefineMiddleware
from litestar.params import FromQuery
from litestar.testing import TestClient as LitestarTestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

QUICKSTART = Path(__file__).resolve().parents[3] / "docs" / "quickstart.md"


class Login(msgspec.Struct):
    user: str


class RecordingStorage(satchel.MemoryStorage):
    """A real MemoryStorage that also records each aclose()."""

    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    async def aclose(self) -> None:
        self.closes += 1
        await super().aclose()


class FailingToClose(satchel.MemoryStorage):
    async def aclose(self) -> None:
        raise satchel.StorageError("the disk went away")


def login_sessions(storage: satchel.SessionStorage) -> satchel.Sessions:
    return satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, transformers=[satchel.Sign(KEY)]))


async def sign_in(request: Request) -> Response:
    satchel.sessions_of(request).set(Login(user=request.query_params["user"]))
    return JSONResponse(None)


async def whoami(request: Request) -> Response:
    got = await satchel.sessions_of(request).get(Login)
    return JSONResponse(None if got is None else got.user)


ROUTES = [Route("/in", sign_in), Route("/me", whoami)]


async def drive_lifespan(app: Any) -> list[dict[str, Any]]:
    """Run one lifespan (startup, then shutdown) as a server does; what the app sent back."""
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


def quickstart_plain_asgi_example(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The quickstart's plain ASGI example, run as pasted."""
    blocks = re.findall(r"```python\n(.*?)```", QUICKSTART.read_text(), flags=re.S)
    [block] = [b for b in blocks if "async def hello(scope, receive, send)" in b]
    monkeypatch.setenv("SESSION_KEY", KEY)
    namespace: dict[str, Any] = {"__name__": "quickstart_example"}
    exec(compile(block, str(QUICKSTART), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


# -- (1) plain ASGI ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_plain_asgi_quickstart_example_answers_lifespan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's app returns on a lifespan scope; the middleware answers the server
    instead, so the server sees startup and shutdown complete and sends the shutdown."""
    app = quickstart_plain_asgi_example(monkeypatch)["app"]
    for _ in range(2):
        sent = await drive_lifespan(app)
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_the_plain_asgi_quickstart_example_closes_storages_at_every_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = quickstart_plain_asgi_example(monkeypatch)
    with TestClient(example["app"]) as client:
        assert client.get("/").text == "visit number 1\n"
        assert client.get("/").text == "visit number 2\n"
    # the example's own app under the same wiring, with a storage to close
    storage = RecordingStorage()
    sessions = satchel.Sessions(
        satchel.cookie(example["Visits"], "visits", storage=storage, transformers=[satchel.Sign(KEY)])
    )
    app = satchel.SessionMiddleware(example["hello"], sessions)
    for run in (1, 2):
        with TestClient(app) as client:
            assert client.get("/").text == "visit number 1\n"
            assert client.get("/").text == "visit number 2\n"
            assert storage.closes == run - 1
        assert storage.closes == run


@pytest.mark.anyio
async def test_an_app_that_raises_on_lifespan_still_gets_its_storages_closed() -> None:
    """ASGI lets an app refuse lifespan by raising; the storages still need their shutdown."""
    storage = RecordingStorage()

    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "this app only speaks http"

    sent = await drive_lifespan(satchel.SessionMiddleware(http_only, login_sessions(storage)))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert storage.closes == 1


@pytest.mark.anyio
async def test_an_app_that_handles_lifespan_shuts_down_before_the_storages_close() -> None:
    storage = RecordingStorage()
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                seen.append(f"app shut down, {storage.closes} closes")
                await send({"type": "lifespan.shutdown.complete"})
                return

    wrapped = satchel.SessionMiddleware(app, login_sessions(storage))
    for _ in range(2):
        sent = await drive_lifespan(wrapped)
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen == ["app shut down, 0 closes", "app shut down, 1 closes"]
    assert storage.closes == 2


@pytest.mark.anyio
async def test_a_storage_that_fails_to_close_fails_the_shutdown_with_the_reason() -> None:
    """The server hears of it (lifespan.shutdown.failed), and the other storages still close."""
    other = RecordingStorage()
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=FailingToClose(), transformers=[satchel.Sign(KEY)]),
        satchel.header(dict, "X-Api", storage=other),
    )

    async def ignores_lifespan(scope: Any, receive: Any, send: Any) -> None:
        return

    sent = await drive_lifespan(satchel.SessionMiddleware(ignores_lifespan, sessions))
    assert sent[0] == {"type": "lifespan.startup.complete"}
    assert sent[1]["type"] == "lifespan.shutdown.failed"
    assert "the disk went away" in sent[1]["message"]
    assert other.closes == 1


async def drive_lifespan_to_failure(app: Any) -> tuple[list[dict[str, Any]], BaseException]:
    """Like drive_lifespan, for an app that raises after reading (its shutdown failed)."""
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(Exception) as raised:  # noqa: PT011 - whatever the app raised
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent, raised.value


def closed(path: Path) -> bool:
    """Whether no connection holds the file: SQLite removes the WAL when its last one closes."""
    return path.exists() and not Path(f"{path}-wal").exists()


def starlette_failing_at_shutdown(opens: satchel.SessionStorage) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await opens.write("warm", b"x", 60)  # opens the storage, as a first request would
        yield
        raise RuntimeError("the app's own shutdown step broke")

    return Starlette(routes=ROUTES, lifespan=lifespan)


@pytest.mark.anyio
async def test_storages_close_when_the_apps_own_shutdown_fails(tmp_path: Path) -> None:
    """Starlette tells the server lifespan.shutdown.failed when a shutdown step raises;
    the process is ending all the same, so the storages close and the app's reason stays."""
    from satchel_sqlite import SQLiteStorage

    path = tmp_path / "s.db"
    storage = SQLiteStorage(path)
    app = satchel.SessionMiddleware(starlette_failing_at_shutdown(storage), login_sessions(storage))
    sent, raised = await drive_lifespan_to_failure(app)
    assert isinstance(raised, RuntimeError)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "the app's own shutdown step broke" in sent[1]["message"]
    assert closed(path)


@pytest.mark.anyio
async def test_a_storage_failing_to_close_after_the_apps_shutdown_failed_adds_its_reason() -> None:
    storage = FailingToClose()
    app = satchel.SessionMiddleware(starlette_failing_at_shutdown(storage), login_sessions(storage))
    sent, _ = await drive_lifespan_to_failure(app)
    assert sent[1]["type"] == "lifespan.shutdown.failed"
    reason = sent[1]["message"]
    # the app's own reason (Starlette sends the traceback) first, then the storage's
    assert reason.index("RuntimeError: the app's own shutdown step broke") < reason.index(
        "closing a session storage failed: the disk went away"
    )


@pytest.mark.anyio
async def test_a_startup_that_fails_before_reading_lifespan_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Starlette builds its middleware stack on its first call, before it reads lifespan: a
    middleware whose constructor raises looks like an app without lifespan. The server is
    still answered, and the failure is shown at WARNING with its traceback."""
    from starlette.middleware import Middleware

    class Misconfigured:
        def __init__(self, app: ASGIApp) -> None:
            raise ValueError("this middleware needs a setting it was not given")

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            raise AssertionError("never built")

    storage = RecordingStorage()
    app = satchel.SessionMiddleware(
        Starlette(routes=ROUTES, middleware=[Middleware(Misconfigured)]), login_sessions(storage)
    )
    with caplog.at_level(logging.WARNING, logger="satchel"):
        sent = await drive_lifespan(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert storage.closes == 1
    [record] = [r for r in caplog.records if r.name == "satchel"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert "this middleware needs a setting it was not given" in caplog.text  # the traceback


# -- (2) one Starlette app started twice --------------------------------------------------


def test_a_starlette_app_started_twice_works_both_times_and_memory_keeps_its_sessions() -> None:
    storage = RecordingStorage()
    app = satchel.SessionMiddleware(Starlette(routes=ROUTES), login_sessions(storage))
    with TestClient(app) as client:
        client.get("/in", params={"user": "ada"})
        cookie = client.cookies["SID"]
    assert storage.closes == 1
    with TestClient(app, cookies={"SID": cookie}) as client:
        # one process: the memory storage keeps its sessions across aclose()
        assert client.get("/me").json() == "ada"
    assert storage.closes == 2


# -- (3) memory storage after aclose --------------------------------------------------------


@pytest.mark.anyio
async def test_memory_storage_works_after_aclose_and_keeps_its_data() -> None:
    storage = satchel.MemoryStorage()
    await storage.write("a", b"1", 60)
    await storage.aclose()
    assert await storage.read("a") == b"1"
    await storage.write("b", b"2", None)
    await storage.aclose()
    assert await storage.read("b") == b"2"


# -- Sessions as a context manager and as a lifespan ------------------------------------------


@pytest.mark.anyio
async def test_sessions_can_be_entered_again_after_it_closed_its_storages() -> None:
    storage = RecordingStorage()
    sessions = login_sessions(storage)
    for run in (1, 2, 3):
        async with sessions as entered:
            assert entered is sessions
        assert storage.closes == run


def test_the_lifespan_helper_closes_storages_for_starlette_without_the_middleware_seeing_lifespan() -> None:
    """``Starlette(lifespan=sessions.lifespan)``, the middleware in Starlette's list."""
    from starlette.middleware import Middleware

    storage = RecordingStorage()
    sessions = login_sessions(storage)
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(satchel.SessionMiddleware, sessions=sessions)],
        lifespan=sessions.lifespan,
    )
    for run in (1, 2):
        with TestClient(app) as client:
            client.get("/in", params={"user": "ada"})
            assert client.get("/me").json() == "ada"
        # the helper and the middleware (Starlette passes lifespan through it) both close
        assert storage.closes == 2 * run


def test_the_lifespan_helper_inside_an_app_lifespan_of_its_own() -> None:
    storage = RecordingStorage()
    sessions = login_sessions(storage)
    order: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sessions:
            yield
            order.append(f"app shutdown, {storage.closes} closes")

    app = satchel.SessionMiddleware(Starlette(routes=ROUTES, lifespan=lifespan), sessions)
    with TestClient(app) as client:
        client.get("/in", params={"user": "ada"})
    assert order == ["app shutdown, 0 closes"]
    assert storage.closes == 2  # the app's own `async with sessions`, then the middleware


# -- (5) Litestar, whose middleware never sees lifespan -----------------------------------------


@pytest.mark.parametrize("hook", ["on_shutdown", "lifespan"])
def test_litestar_with_define_middleware_closes_storages_through_the_documented_hook(hook: str) -> None:
    storage = RecordingStorage()
    sessions = login_sessions(storage)

    @get("/in")
    async def litestar_sign_in(request: LitestarRequest[Any, Any, Any], user: FromQuery[str]) -> None:
        satchel.sessions_of(request).set(Login(user=user))

    @get("/me")
    async def litestar_whoami(request: LitestarRequest[Any, Any, Any]) -> dict[str, str | None]:
        got = await satchel.sessions_of(request).get(Login)
        return {"user": None if got is None else got.user}

    hooks: dict[str, Any] = (
        {"on_shutdown": [sessions.aclose]} if hook == "on_shutdown" else {"lifespan": [sessions.lifespan]}
    )
    app = Litestar(
        route_handlers=[litestar_sign_in, litestar_whoami],
        middleware=[DefineMiddleware(satchel.SessionMiddleware, sessions=sessions)],
        **hooks,
    )
    for run in (1, 2):
        with LitestarTestClient(app, base_url="https://testserver.local") as client:
            client.get("/in", params={"user": "ada"})
            assert client.get("/me").json() == {"user": "ada"}
            assert storage.closes == run - 1
        assert storage.closes == run


def test_litestar_with_define_middleware_alone_never_closes_its_storages() -> None:
    """Why the hook is documented: Litestar gives its middleware no lifespan."""

    @get("/")
    async def index() -> None:
        return None

    storage = RecordingStorage()
    app = Litestar(
        route_handlers=[index],
        middleware=[DefineMiddleware(satchel.SessionMiddleware, sessions=login_sessions(storage))],
    )
    with LitestarTestClient(app) as client:
        client.get("/")
    assert storage.closes == 0


# -- (4) the ResourceWarning of a storage nobody closed -------------------------------------------


def test_a_memory_storage_holds_nothing_so_it_warns_of_nothing() -> None:
    import warnings

    storage = satchel.MemoryStorage()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del storage
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
