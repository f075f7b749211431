"""satchel.integrations.quart: the app stays a Quart app, handlers reach their sessions
with current_sessions(), and the lifespan closes the storages."""

import msgspec
import pytest
import satchel
from quart import Quart, websocket
from satchel.integrations.quart import current_sessions, install

KEY = "_p6ZHpng5Rwf6pgfRJfaslYjyRlMdfUq0QlDazDhb-s"

pytestmark = pytest.mark.anyio


class Visits(msgspec.Struct):
    count: int = 0


class RecordingStorage(satchel.MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1
        await super().aclose()


def counter(storage: satchel.SessionStorage) -> Quart:
    app = Quart(__name__)

    @app.get("/")
    async def home() -> dict[str, int]:
        s = current_sessions()
        visits = await s.get(Visits) or Visits()
        visits.count += 1
        s.set(visits)
        return {"visits": visits.count}

    @app.websocket("/ws")
    async def ws() -> None:
        s = current_sessions()
        visits = await s.get(Visits) or Visits()
        s.set(Visits(count=visits.count + 1))  # before accept: it travels on the handshake
        await websocket.accept()
        await websocket.send_json(visits.count)

    install(
        app, satchel.Sessions(satchel.cookie(Visits, "V", storage=storage, transformers=[satchel.Sign(KEY)]))
    )
    return app


async def test_a_websocket_sets_a_session_before_accept_and_http_reads_it() -> None:
    app = counter(satchel.MemoryStorage())
    async with app.test_app() as running:
        client = running.test_client()
        assert await (await client.get("/")).get_json() == {"visits": 1}
        async with client.websocket("/ws") as socket:
            assert await socket.receive_json() == 1
        assert await (await client.get("/")).get_json() == {"visits": 3}


async def test_the_lifespan_closes_the_storages() -> None:
    storage = RecordingStorage()
    app = counter(storage)
    async with app.test_app() as running:
        await running.test_client().get("/")
        assert storage.closed == 0
    assert storage.closed == 1


async def test_current_sessions_outside_a_request_says_so() -> None:
    with pytest.raises(satchel.ConfigError, match="needs a request or websocket being handled"):
        current_sessions()


async def test_a_handler_of_an_app_not_installed_is_told_to_wrap_it() -> None:
    app = Quart(__name__)

    @app.get("/")
    async def home() -> str:
        current_sessions()
        return "unreachable"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(satchel.ConfigError, match=r"satchel.integrations.quart.install\(app, sessions\)"):
        await app.test_client().get("/")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
