"""Deletion wins: no request that was under way can bring back a session another one ended.

Each race runs deterministically: the request under test goes through `Gate`, a storage
wrapper that holds it before a chosen storage call until the test lets it go, while the
racing request (or a revoke without any request) runs to completion in between. Every
interleaving below runs every time, on every built-in storage with a server here.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
import satchel
import satchel.testing
from satchel._codec import unpack_record  # what a key holds: a session or a tombstone
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

pytestmark = pytest.mark.anyio

_names = itertools.count()


class Login(msgspec.Struct):
    user: str
    visits: int = 0


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


# -- the gate ----------------------------------------------------------------------------


class Stop:
    """Where a request is held: ``reached`` when it gets there, it goes on after ``release``."""

    def __init__(self) -> None:
        self.reached = anyio.Event()
        self._go = anyio.Event()

    def release(self) -> None:
        self._go.set()


class Gate:
    """A storage that passes every call to ``inner``, holding the caller before chosen calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.capabilities = satchel.capabilities_of(inner)
        self.calls: list[str] = []
        self.keys: list[str] = []  # every key the caller named, in order
        self._stops: dict[tuple[str, int], Stop] = {}

    def stop_before(self, method: str, nth: int = 1) -> Stop:
        """Hold the caller before its ``nth`` call of ``method`` ("*": of any method)."""
        stop = self._stops[(method, nth)] = Stop()
        return stop

    async def _pass(self, method: str, id: str = "") -> None:
        self.calls.append(method)
        if id:
            self.keys.append(id)
        stop = self._stops.get((method, self.calls.count(method))) or self._stops.get(("*", len(self.calls)))
        if stop is not None:
            stop.reached.set()
            await stop._go.wait()

    async def read(self, id: str) -> bytes | None:
        await self._pass("read", id)
        return await self.inner.read(id)  # type: ignore[no-any-return]

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        await self._pass("write", id)
        await self.inner.write(id, data, ttl)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        await self._pass("write_if", id)
        return await self.inner.write_if(id, data, ttl, expected=expected)  # type: ignore[no-any-return]

    async def invalidate(self, id: str) -> None:
        await self._pass("invalidate", id)
        await self.inner.invalidate(id)

    async def touch(self, id: str, ttl: float | None) -> None:
        await self._pass("touch", id)
        await self.inner.touch(id, ttl)

    async def write_owned(
        self, id: str, data: bytes, ttl: float | None, *, owner: str, expected: bytes | None
    ) -> bool:
        await self._pass("write_owned", id)
        return await self.inner.write_owned(id, data, ttl, owner=owner, expected=expected)  # type: ignore[no-any-return]

    async def touch_owned(self, id: str, ttl: float | None, *, owner: str) -> None:
        await self._pass("touch_owned", id)
        await self.inner.touch_owned(id, ttl, owner=owner)

    async def list_owned(self, owner: str) -> list[satchel.OwnedEntry]:
        await self._pass("list_owned")
        return await self.inner.list_owned(owner)  # type: ignore[no-any-return]

    async def invalidate_owned(self, owner: str, *, keep: Any = ()) -> int:
        await self._pass("invalidate_owned")
        return await self.inner.invalidate_owned(owner, keep=keep)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        pass  # the test closes the storage it opened


# -- the storages ------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "sqlite", "redis", "redis-cluster", "mongo-compatible"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """One real storage of each built-in kind, empty, in a namespace of its own."""
    kind = request.param
    namespace = f"race{next(_names)}"
    if kind == "memory":
        store: Any = satchel.MemoryStorage()
    elif kind == "sqlite":
        store = satchel.open_storage(f"sqlite:///{tmp_path / 'sessions.db'}")
    elif kind == "redis":
        store = satchel.open_storage(request.getfixturevalue("satchel_redis_url"), namespace=namespace)
    elif kind == "redis-cluster":
        store = satchel.open_storage(
            request.getfixturevalue("satchel_redis_cluster_url"), namespace=namespace
        )
    else:
        url = request.getfixturevalue("satchel_mongo_compatible_url")
        store = satchel.open_storage(url, namespace=namespace)
    try:
        yield store
    finally:
        await store.aclose()


# -- the app -----------------------------------------------------------------------------


class Shop:
    """The same app twice over one storage: ``gated`` through a `Gate`, ``direct`` not."""

    def __init__(self, storage: Any, *, owner: bool = False, clock: Clock | None = None) -> None:
        self.storage = storage
        self.gate = Gate(storage)
        self.clock = clock or Clock()
        options: dict[str, Any] = {"max_age": 3600}
        if owner:
            options["owner"] = lambda login: login.user
        self.gated = self._sessions(self.gate, options)
        self.direct = self._sessions(storage, options)

    def _sessions(self, storage: Any, options: dict[str, Any]) -> satchel.Sessions:
        return satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, **options), clock=self.clock)

    def app(self, sessions: satchel.Sessions) -> satchel.SessionMiddleware:
        async def login(request: Request) -> JSONResponse:
            s = satchel.sessions_of(request)
            s.clear(Login)
            s.set(Login(user=request.query_params["user"]))
            return JSONResponse("ok")

        async def visit(request: Request) -> JSONResponse:
            s = satchel.sessions_of(request)
            found = await s.get(Login)
            if found is None:
                return JSONResponse(None)
            s.set(Login(user=found.user, visits=found.visits + 1))
            return JSONResponse(found.visits + 1)

        async def whoami(request: Request) -> JSONResponse:
            found = await satchel.sessions_of(request).get(Login)
            return JSONResponse(None if found is None else found.user)

        async def logout(request: Request) -> JSONResponse:
            s = satchel.sessions_of(request)
            await s.get(Login)  # a logout page that greets the user first: the record is known
            s.clear(Login)
            return JSONResponse("bye")

        async def regenerate(request: Request) -> JSONResponse:
            s = satchel.sessions_of(request)
            await s.get(Login)
            s.regenerate(Login)
            return JSONResponse("ok")

        routes = [
            Route(f"/{f.__name__}", f, methods=["GET", "POST"])
            for f in (login, visit, whoami, logout, regenerate)
        ]
        return satchel.SessionMiddleware(Starlette(routes=routes), sessions)

    async def call(self, path: str, cookie: str | None, *, gated: bool = False) -> httpx.Response:
        app = self.app(self.gated if gated else self.direct)
        headers = {"cookie": f"SID={cookie}"} if cookie else {}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="https://testserver"
        ) as client:
            return await client.get(path, headers=headers)

    async def sign_in(self, user: str = "ada") -> str:
        return cookie_of(await self.call(f"/login?user={user}", None))

    async def who(self, cookie: str | None) -> Any:
        return (await self.call("/whoami", cookie)).json() if cookie else None

    async def holds_a_session(self, cookie: str) -> bool:
        """Whether storage holds a live session (not a tombstone) for the cookie's ID."""
        raw = await self.storage.read(satchel.testing.store_key(cookie.rpartition(".")[0]))
        record = unpack_record(raw) if raw is not None else None
        return record is not None and not record.is_tombstone


def cookie_of(response: httpx.Response) -> str | None:
    """The SID the response set; ``None`` when it set none or deleted it."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "SID":
            value = rest.partition(";")[0]
            return None if "Max-Age=0" in header or not value else value
    return None


async def racing(
    gated: Callable[[], Awaitable[httpx.Response]], stop: Stop, meanwhile: Callable[[], Awaitable[Any]]
) -> httpx.Response:
    """Run ``gated`` until it reaches ``stop``, run ``meanwhile`` to the end, then let it go."""
    result: list[httpx.Response] = []

    async def run() -> None:
        result.append(await gated())

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(10):
            await stop.reached.wait()
        await meanwhile()
        stop.release()
    return result[0]


async def assert_signed_out(shop: Shop, *cookies: str | None) -> None:
    for cookie in cookies:
        if cookie is not None:
            assert await shop.who(cookie) is None, "a signed-out session still works"
            assert not await shop.holds_a_session(cookie), "storage still holds the ended session"


# -- write against clear -------------------------------------------------------------------


async def test_an_update_held_before_its_write_does_not_undo_a_logout(storage: Any) -> None:
    shop = Shop(storage)
    sid = await shop.sign_in()
    stop = shop.gate.stop_before("write_if")
    response = await racing(
        lambda: shop.call("/visit", sid, gated=True), stop, lambda: shop.call("/logout", sid)
    )
    assert response.status_code == 200
    assert cookie_of(response) is None, "the late update issued a cookie"
    await assert_signed_out(shop, sid)


async def test_an_update_retried_after_a_lost_compare_and_set_does_not_undo_a_logout(storage: Any) -> None:
    """The retry after another writer won is conditional too: a logout that lands between
    the re-read and the retry stays.

    Regression test for the fallback "write_if failed, the entry is there, write anyway".
    """
    shop = Shop(storage)
    sid = await shop.sign_in()
    first = shop.gate.stop_before("write_if", 1)
    retry = shop.gate.stop_before("write_if", 2)
    result: list[httpx.Response] = []

    async def update() -> None:
        result.append(await shop.call("/visit", sid, gated=True))

    async with anyio.create_task_group() as tg:
        tg.start_soon(update)
        with anyio.fail_after(10):
            await first.reached.wait()
        await shop.call("/visit", sid)  # another writer wins the first compare-and-set
        first.release()
        with anyio.fail_after(10):
            await retry.reached.wait()
        await shop.call("/logout", sid)  # the logout lands between the re-read and the retry
        retry.release()
    assert cookie_of(result[0]) is None
    await assert_signed_out(shop, sid)


async def test_concurrent_updates_both_land_as_last_writer_wins(storage: Any) -> None:
    """Without a logout, an update that lost its compare-and-set is retried and kept."""
    shop = Shop(storage)
    sid = await shop.sign_in()
    stop = shop.gate.stop_before("write_if")
    response = await racing(
        lambda: shop.call("/visit", sid, gated=True), stop, lambda: shop.call("/visit", sid)
    )
    assert response.json() == 1
    assert await shop.who(sid) == "ada"
    assert await shop.holds_a_session(sid)


# -- touch against clear -------------------------------------------------------------------


async def test_a_touch_held_before_it_lands_does_not_undo_a_logout(storage: Any) -> None:
    shop = Shop(storage)
    sid = await shop.sign_in()
    assert sid is not None
    shop.clock.now += 2000  # past half the idle timeout: the next read extends the session
    stop = shop.gate.stop_before("touch")
    response = await racing(
        lambda: shop.call("/whoami", sid, gated=True), stop, lambda: shop.call("/logout", sid)
    )
    assert response.json() == "ada"  # it read the session before the logout
    await assert_signed_out(shop, sid, cookie_of(response))


# -- regenerate against clear --------------------------------------------------------------


@pytest.mark.parametrize(
    "held_before_call",
    [2, 3, 4],
    ids=["the new session's write", "the link to it", "the old record's replacement"],
)
async def test_a_regenerate_racing_a_logout_issues_nothing_live(storage: Any, held_before_call: int) -> None:
    """The regenerate read the session (its first call), the logout ends it before the
    regenerate's next step: no new ID is issued, and nothing it wrote is a live session."""
    shop = Shop(storage)
    sid = await shop.sign_in()
    stop = shop.gate.stop_before("*", held_before_call)
    response = await racing(
        lambda: shop.call("/regenerate", sid, gated=True), stop, lambda: shop.call("/logout", sid)
    )
    assert cookie_of(response) is None, "the regenerate issued a new ID after the logout"
    await assert_signed_out(shop, sid)
    for key in shop.gate.keys:
        raw = await storage.read(key)
        record = unpack_record(raw) if raw is not None else None
        assert record is None or record.is_tombstone, "a regenerated session outlived the logout"


async def test_a_logout_that_read_before_a_regenerate_ends_the_regenerated_session(storage: Any) -> None:
    """The logout read the old record; a regenerate then replaced it with a new ID before
    the logout deleted it. The logout follows the regenerate's link and ends the new
    session too."""
    shop = Shop(storage)
    sid = await shop.sign_in()
    stop = shop.gate.stop_before("invalidate")  # the logout's delete
    moved: list[str | None] = []

    async def regenerate() -> None:
        moved.append(cookie_of(await shop.call("/regenerate", sid)))

    await racing(lambda: shop.call("/logout", sid, gated=True), stop, regenerate)
    assert moved[0] is not None, "the regenerate ran to the end first"
    await assert_signed_out(shop, sid, moved[0])


# -- revoke-all against sign-in and updates --------------------------------------------------


async def test_an_update_held_before_its_write_does_not_undo_a_revoke_all(storage: Any) -> None:
    shop = Shop(storage, owner=True)
    phone, laptop = await shop.sign_in(), await shop.sign_in()
    stop = shop.gate.stop_before("write_owned")
    response = await racing(
        lambda: shop.call("/visit", phone, gated=True),
        stop,
        lambda: shop.direct.revoke_owner(Login, "ada"),
    )
    assert cookie_of(response) is None
    await assert_signed_out(shop, phone, laptop)
    assert await shop.direct.list_owned(Login, "ada") == []


async def test_a_sign_in_during_a_revoke_all_is_a_new_session_and_survives_it(storage: Any) -> None:
    """Revoke-all ends every session that existed when it started; a sign-in that
    completes after it is a new session, and stays."""
    shop = Shop(storage, owner=True)
    before = await shop.sign_in()
    stop = shop.gate.stop_before("write_owned")
    response = await racing(
        lambda: shop.call("/login?user=ada", None, gated=True),
        stop,
        lambda: shop.direct.revoke_owner(Login, "ada"),
    )
    after = cookie_of(response)
    await assert_signed_out(shop, before)
    assert await shop.who(after) == "ada"
    listed = await shop.direct.list_owned(Login, "ada")
    assert [info.handle for info in listed] == [satchel.testing.store_key(str(after).rpartition(".")[0])]


async def test_a_regenerate_racing_a_revoke_all_issues_nothing_live(storage: Any) -> None:
    shop = Shop(storage, owner=True)
    sid = await shop.sign_in()
    stop = shop.gate.stop_before("write_if")  # the old session's end, after the new one's write
    response = await racing(
        lambda: shop.call("/regenerate", sid, gated=True),
        stop,
        lambda: shop.direct.revoke_owner(Login, "ada"),
    )
    assert cookie_of(response) is None
    await assert_signed_out(shop, sid)
    assert await shop.direct.list_owned(Login, "ada") == []


# -- real concurrency over uvicorn ------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    return f"{request.getfixturevalue('satchel_redis_url')}?namespace=uvicorn{next(_names)}"


def test_many_writers_and_one_logout_over_uvicorn_never_leave_the_cookie_working(storage_url: str) -> None:
    """40 concurrent updates of one session and a logout among them, over real sockets,
    8 times: after each, the logged-out cookie, and every cookie the writers were sent,
    opens nothing."""
    from core_helpers import serve

    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=satchel.open_storage(storage_url)))
    app = Shop.app(Shop.__new__(Shop), sessions)

    async def trial(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as client:
            signed_in = await client.get("/login?user=ada")
            sid = cookie_of(signed_in)
            headers = {"cookie": f"SID={sid}"}
            responses: list[httpx.Response] = []

            async def call(path: str) -> None:
                responses.append(await client.get(path, headers=headers))

            async with anyio.create_task_group() as tg:
                for n in range(41):
                    tg.start_soon(call, "/logout" if n == 20 else "/visit")
            assert all(r.status_code == 200 for r in responses), [r.status_code for r in responses]
            issued = [c for c in map(cookie_of, responses) if c is not None]
            for cookie in [sid, *issued]:
                found = await client.get("/whoami", headers={"cookie": f"SID={cookie}"})
                assert found.json() is None, "a logged-out session still works"

    with serve(app) as host:
        for _ in range(8):
            anyio.run(trial, f"http://{host}")


# -- regenerate against regenerate and updates ---------------------------------------------


async def test_two_regenerates_racing_then_a_logout_leave_nothing_alive(storage: Any) -> None:
    """A form sent twice regenerates one session twice: the request that links second
    issues nothing, and a logout with the old cookie still reaches the winner's session."""
    shop = Shop(storage)
    sid = await shop.sign_in()
    stop = shop.gate.stop_before("write_if", 2)  # the loser, before it links its new ID
    winner: list[str | None] = []

    async def regenerate() -> None:
        winner.append(cookie_of(await shop.call("/regenerate", sid)))

    loser = await racing(lambda: shop.call("/regenerate", sid, gated=True), stop, regenerate)
    assert winner[0] is not None
    assert "set-cookie" not in loser.headers, "the losing regenerate touched the cookie"
    assert await shop.who(winner[0]) == "ada"
    await shop.call("/logout", sid)  # a tab that still had the old cookie signs out
    await assert_signed_out(shop, sid, winner[0])


async def test_an_update_that_loses_to_a_regenerate_leaves_the_new_cookie_alone(storage: Any) -> None:
    """The update finds its session regenerated by another request, which is sending the
    new ID: it writes nothing and sends no cookie, so it cannot delete the new one."""
    shop = Shop(storage)
    sid = await shop.sign_in()
    stop = shop.gate.stop_before("write_if")
    moved: list[str | None] = []

    async def regenerate() -> None:
        moved.append(cookie_of(await shop.call("/regenerate", sid)))

    response = await racing(lambda: shop.call("/visit", sid, gated=True), stop, regenerate)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers, "the late update deleted or replaced the new cookie"
    assert await shop.who(moved[0]) == "ada"
    assert await shop.who(sid) is None
