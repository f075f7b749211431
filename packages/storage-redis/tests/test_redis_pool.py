"""The connection pool under a burst: bounded, and a request that finds it full waits.

500 users sign in at once through `satchel.SessionMiddleware`, sharing 10 connections, and
no request fails: redis-py's pools (a cluster client's per node) refuse a command at once
when every connection is in use, so the storage's gate makes the burst wait its turn. A
wait that outlasts the operation's deadline is a `StorageError` that says the pool was
exhausted and names ``max_connections``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import msgspec
import pytest
import satchel
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from satchel_redis import RedisClusterStorage, RedisStorage
from satchel_redis._storage import DEFAULT_MAX_CONNECTIONS
from satchel_redis._wire import taker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

pytestmark = pytest.mark.anyio

Storage = RedisStorage | RedisClusterStorage
BURST = 500
POOL = 10


class Login(msgspec.Struct):
    user: str
    visits: int = 0


def app_on(storage: Storage) -> satchel.SessionMiddleware:
    async def sign_in(request: Request) -> JSONResponse:
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
        return JSONResponse(found.user)

    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, max_age=3600))
    routes = [Route("/sign_in", sign_in, methods=["POST"]), Route("/visit", visit)]
    return satchel.SessionMiddleware(Starlette(routes=routes), sessions)


def cookie_of(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "SID":
            return rest.partition(";")[0]
    raise AssertionError(f"no session cookie in {response.headers}")


def connections_open(storage: Storage) -> list[int]:
    """How many connections each pool (each node, on a cluster) has opened."""
    client: Any = storage.client
    if isinstance(storage, RedisClusterStorage):
        return [len(node._connections) for node in client.get_nodes()]
    pool = client.connection_pool
    return [len(pool._in_use_connections) + len(pool._available_connections)]


@pytest.fixture
async def small_pool(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    join = "&" if "?" in redis_url else "?"
    store = satchel.open_storage(
        f"{redis_url}{join}max_connections={POOL}", namespace=f"t-{request.node.name}"[:120]
    )
    assert isinstance(store, RedisStorage | RedisClusterStorage)
    yield store
    await store.aclose()


async def test_a_burst_of_sign_ins_shares_a_small_pool(small_pool: Storage, redis_url: str) -> None:
    app = app_on(small_pool)
    # the storage has loaded what it needs (a cluster's slot map) before the clock starts
    assert await small_pool.read("warm-up") is None
    # a failed request is answered 500 rather than raised, and counted
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        started = time.perf_counter()
        signed_in = await asyncio.gather(*(client.post(f"/sign_in?user=u{i}") for i in range(BURST)))
        sign_in_took = time.perf_counter() - started

        assert Counter(r.status_code for r in signed_in) == {200: BURST}
        cookies = [cookie_of(r) for r in signed_in]
        started = time.perf_counter()
        visits = await asyncio.gather(
            *(client.get("/visit", headers={"cookie": f"SID={c}"}) for c in cookies)
        )
        visit_took = time.perf_counter() - started

    assert Counter(r.status_code for r in visits) == {200: BURST}
    assert [r.json() for r in visits] == [f"u{i}" for i in range(BURST)]
    assert max(connections_open(small_pool)) <= POOL
    deployment = redis_url.partition(":")[0]
    print(
        f"\n{deployment}: {BURST} concurrent sign-ins on {POOL} connections in {sign_in_took:.2f}s, "
        f"then {BURST} concurrent visits (read and write each) in {visit_took:.2f}s"
    )


async def test_the_pool_is_bounded_and_gated_by_default() -> None:
    for url in ("redis://127.0.0.1:1/0", "redis+sentinel://127.0.0.1:1/mymaster"):
        store = RedisStorage.from_url(url, timeout=2)
        pool: Any = store.client.connection_pool
        assert isinstance(pool, ConnectionPool)
        assert pool.max_connections == DEFAULT_MAX_CONNECTIONS
        assert store._gate is not None
        assert store._gate._value == DEFAULT_MAX_CONNECTIONS
        await store.aclose()
        for store in (
            RedisStorage.from_url(f"{url}?max_connections=7"),
            RedisStorage.from_url(url, max_connections=7),
        ):
            assert store.client.connection_pool.max_connections == 7
            assert store._gate is not None
            assert store._gate._value == 7
            await store.aclose()

    for cluster in (
        RedisClusterStorage.from_url("redis+cluster://127.0.0.1:1"),
        RedisClusterStorage.from_url("redis+cluster://127.0.0.1:1?max_connections=7"),
    ):
        size = cluster.client.connection_kwargs["max_connections"]
        assert size in (DEFAULT_MAX_CONNECTIONS, 7)
        assert cluster._gate is not None
        assert cluster._gate._value == size
        await cluster.aclose()


async def test_storages_on_one_pool_share_its_gate() -> None:
    client = Redis.from_pool(ConnectionPool.from_url("redis://127.0.0.1:1/0", max_connections=3))
    one, two = RedisStorage(client, namespace="one"), RedisStorage(client, namespace="two")
    assert one._gate is two._gate
    assert one._gate is not None
    assert one._gate._value == 3
    await client.aclose()


@pytest.mark.parametrize("value", ["0", "-1", "many", "2.5"])
def test_max_connections_must_be_a_positive_whole_number(value: str) -> None:
    with pytest.raises(satchel.ConfigError, match="max_connections"):
        RedisStorage.from_url(f"redis://127.0.0.1:1/0?max_connections={value}")


async def test_a_full_pool_past_the_deadline_is_a_storage_error(redis_url: str) -> None:
    # writes stop being answered for a moment (reads and the sentinels' pings go on):
    # two slow writes hold both connections, and a write with a shorter deadline, on
    # another storage sharing the pool (and its gate), waits for one until its deadline
    slow = satchel.open_storage(redis_url, namespace="t-exhausted", max_connections=2, timeout=0.5)
    assert isinstance(slow, RedisStorage | RedisClusterStorage)
    quick = type(slow)(slow.client, namespace="t-exhausted", timeout=0.2)
    admins: list[Any] = []  # redis.asyncio.Redis
    try:
        await slow.write("a", b"v", 60)  # connected (and a cluster's slot map loaded)
        client: Any = slow.client
        if isinstance(slow, RedisClusterStorage):
            servers = [(node.host, node.port) for node in client.get_primaries()]
        else:
            connection = client.connection_pool.get_available_connection()
            servers = [(connection.host, connection.port)]
            await client.connection_pool.release(connection)
        admins = [Redis(host=host, port=port) for host, port in servers]
        for admin in admins:
            await admin.execute_command("CLIENT", "PAUSE", "600", "WRITE")
        paused_at = time.monotonic()
        held = [asyncio.ensure_future(slow.write(id, b"w", 60)) for id in ("a", "b")]
        await anyio.sleep(0.05)
        with pytest.raises(satchel.StorageError) as caught:
            await quick.write("c", b"w", 60)
        waited = time.monotonic() - paused_at - 0.05
        message = str(caught.value)
        assert "Redis could not run write of session sha256:" in message
        assert "within 0.2s: the connection pool was exhausted (all 2 connections busy" in message
        assert "raise max_connections= (in the URL: ?max_connections=N" in message
        assert 0.15 <= waited < 0.45  # it waited up to its deadline, and no longer
        for outcome in await asyncio.gather(*held, return_exceptions=True):
            assert "did not answer write" in str(outcome)
        assert await quick.read("a") == b"v"  # reads were not paused
        await anyio.sleep(max(0.0, 0.7 - (time.monotonic() - paused_at)))  # the pause is over
        await quick.write("a", b"after", 60)
        assert await slow.read("a") == b"after"
    finally:
        for admin in admins:
            await admin.aclose()
        await slow.aclose()


async def test_a_blocking_pool_of_your_own_held_past_the_deadline_is_named(satchel_redis_url: str) -> None:
    # a client you pass in may use redis-py's blocking pool, and code of yours may hold
    # its connections: the wait in that pool ends at the deadline, and says why
    pool: Any = BlockingConnectionPool.from_url(satchel_redis_url, max_connections=2, timeout=None)
    client = Redis.from_pool(pool)
    store = RedisStorage(client, namespace="t-own-pool", timeout=0.3)
    try:
        await store.write("a", b"v", 60)
        take = taker(pool)  # redis-py 5 wants a command name, later ones warn at one
        held = [await take() for _ in range(2)]
        started = time.monotonic()
        with pytest.raises(satchel.StorageError) as caught:
            await store.read("a")
        assert 0.25 <= time.monotonic() - started < 1.0
        message = str(caught.value)
        assert "Redis could not run read of session sha256:" in message
        assert "connection pool was exhausted (all 2 connections busy" in message

        async def give_back() -> None:  # a connection freed within the deadline is taken
            await anyio.sleep(0.1)
            await pool.release(held.pop())

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(give_back)
            assert await store.read("a") == b"v"
        for connection in held:
            await pool.release(connection)
    finally:
        await store.aclose()
        await client.aclose()


async def test_a_pool_full_of_other_commands_is_named(satchel_redis_url: str) -> None:
    # connections taken through the client directly do not pass the gate: a pool they
    # hold all refuses satchel's command at once, which is retried within the deadline
    # and then named as an exhausted pool
    store = RedisStorage.from_url(satchel_redis_url, namespace="t-pool-full", max_connections=2, timeout=2)
    try:
        await store.write("a", b"v", 60)
        pool: Any = store.client.connection_pool
        take = taker(pool)  # redis-py 5 wants a command name, later ones warn at one
        held = [await take() for _ in range(2)]
        with pytest.raises(satchel.StorageError) as caught:
            await store.read("a")
        message = str(caught.value)
        assert "Redis failed read of session sha256:" in message
        assert "attempt(s): the connection pool was exhausted (all 2 connections busy" in message
        for connection in held:
            await pool.release(connection)
        assert await store.read("a") == b"v"
    finally:
        await store.aclose()


async def test_a_cluster_node_full_of_other_commands_is_named(satchel_redis_cluster_url: str) -> None:
    # the same on a cluster: blocking commands sent through the client hold every
    # connection to the node that serves the session
    store = RedisClusterStorage.from_url(
        satchel_redis_cluster_url, namespace="t-node-full", max_connections=2, timeout=2
    )
    try:
        await store.write("a", b"v", 60)
        hold = store.key("a") + ":held"  # the same slot as the session's key
        blockers = [asyncio.ensure_future(store.client.blpop([hold], timeout=1)) for _ in range(2)]
        await anyio.sleep(0.1)
        with pytest.raises(satchel.StorageError) as caught:
            await store.read("a")
        message = str(caught.value)
        assert "Redis failed read of session sha256:" in message
        assert "the connection pool was exhausted (all 2 connections busy" in message
        assert await asyncio.gather(*blockers) == [None, None]
        assert await store.read("a") == b"v"
    finally:
        await store.aclose()


async def test_calls_under_way_at_aclose_and_calls_after_it_share_one_bound(satchel_redis_url: str) -> None:
    """A call that started before `aclose` still holds its place at the gate and its
    connection; a call made after waits its turn behind it instead of finding the pool
    full. No retries: a refused connection would fail the second call at once."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    store = RedisStorage.from_url(
        satchel_redis_url, namespace="shutdown", max_connections=1, retry=Retry(NoBackoff(), 0)
    )
    pool: Any = store.client.connection_pool
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_a_connection(retrying: bool) -> None:
        connection = await taker(pool)()
        holding.set()
        try:
            await release.wait()
        finally:
            await pool.release(connection)

    under_way = asyncio.create_task(store._run("read", "held", hold_a_connection))
    await holding.wait()
    await store.aclose()  # shutdown begins while the first call holds the only connection
    after = asyncio.create_task(store.read("after"))
    for _ in range(10):  # a refused call would have failed by now: it does no I/O
        await asyncio.sleep(0)
    assert not after.done()
    release.set()
    await under_way
    assert await after is None
    await store.aclose()
