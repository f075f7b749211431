"""Outages against a real redis-server this module starts, stops, restarts and pauses.

A down or paused server gives StorageError within the storage's timeout, never a hang;
when it is back, the same storage works again. ``fail_after`` is only the hang detector.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
import satchel
from satchel_conformance.servers import free_port, wait_for_port
from satchel_conformance.servers._common import which
from satchel_redis import RedisStorage

pytestmark = pytest.mark.anyio

TIMEOUT = 0.5
HANG = 10  # far above TIMEOUT: reaching it means the storage hung


class Server:
    """One redis-server on a fixed port and unix socket, which tests stop and pause."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.argv = [binary, "--port", str(free_port()), "--bind", "127.0.0.1", "--save", ""]
        self.port = int(self.argv[2])
        self.socket = workdir / "redis.sock"
        self.argv += ["--unixsocket", str(self.socket), "--dir", str(workdir)]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The process stopped (SIGSTOP) inside the block: it accepts connections and
        answers nothing; continued (SIGCONT) however the block ends."""
        self.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.signal(signal.SIGCONT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = which("redis-server")
    if binary is None:
        pytest.skip("the outage tests stop and pause their own server: install redis-server")
    srv = Server(binary, tmp_path_factory.mktemp("redis-outage"))
    srv.start()
    try:
        yield srv
    finally:
        if srv.proc is not None:
            srv.signal(signal.SIGCONT)
        srv.stop()


@pytest.fixture
async def storage(server: Server) -> AsyncIterator[RedisStorage]:
    if server.proc is None:
        server.start()
    store = RedisStorage.from_url(server.url, namespace="outage", timeout=TIMEOUT)
    yield store
    await store.aclose()


async def test_stopped_server_raises_then_the_same_storage_recovers(
    server: Server, storage: RedisStorage
) -> None:
    await storage.write("s", b"before", None)
    server.stop()
    with anyio.fail_after(HANG):
        with pytest.raises(satchel.StorageError) as caught:
            await storage.read("s")
        with pytest.raises(satchel.StorageError):
            await storage.write("s", b"during", None)
    assert caught.value.__cause__ is not None
    server.start()
    # the pool still holds connections to the dead server: the first call must not fail
    await storage.write("s", b"after", None)
    assert await storage.read("s") == b"after"


async def test_paused_server_times_out_then_recovers(server: Server, storage: RedisStorage) -> None:
    await storage.write("p", b"v", None)
    with server.paused(), anyio.fail_after(HANG), pytest.raises(satchel.StorageError, match="within"):
        await storage.read("p")
    assert await storage.read("p") == b"v"


async def test_a_reply_that_comes_after_the_deadline_is_never_taken_for_the_next_answer(
    server: Server,
) -> None:
    """The storage sets no socket timeout of its own, so its deadline alone stops a read
    mid-way; the connection it was reading on must not hand the late reply to the next
    command. One connection, so the next command would get that very connection."""
    store = RedisStorage.from_url(server.url, namespace="late", timeout=TIMEOUT, max_connections=1)
    try:
        await store.write("first", b"the first session", None)
        await store.write("second", b"the second session", None)
        expected = pytest.raises(satchel.StorageError, match="within")
        with server.paused(), anyio.fail_after(HANG), expected:
            await store.read("first")
        # the server now answers the GET it held, on the connection the deadline gave up on
        assert await store.read("second") == b"the second session"
        assert await store.read("first") == b"the first session"
    finally:
        await store.aclose()


async def test_operations_started_one_after_another_each_time_out_at_their_own_deadline(
    server: Server, storage: RedisStorage
) -> None:
    """One timer watches every operation of the storage: after the first deadline it must be
    set again for the next, so each operation ends about TIMEOUT after it began, not at the
    first one's deadline nor never."""
    await storage.write("staggered", b"v", None)
    ended: list[tuple[float, float, BaseException | None]] = []

    async def read_at(delay: float) -> None:
        await anyio.sleep(delay)
        began = time.monotonic()
        try:
            await storage.read("staggered")
        except satchel.StorageError as exc:
            ended.append((began, time.monotonic(), exc))
        else:
            ended.append((began, time.monotonic(), None))

    with server.paused():
        with anyio.fail_after(HANG):
            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(read_at, 0.15 * i)
    assert len(ended) == 4
    for began, end, exc in ended:
        assert isinstance(exc, satchel.StorageError)
        assert "within" in str(exc)
        assert TIMEOUT - 0.01 <= end - began < TIMEOUT + 0.4
    assert await storage.read("staggered") == b"v"


async def test_a_request_cancelled_while_waiting_is_cancelled_not_timed_out(
    server: Server, storage: RedisStorage
) -> None:
    """A request cancelled from outside (a client that went away) ends as cancelled: its
    deadline neither turns that into a StorageError nor cancels anything later."""
    await storage.write("gone", b"v", None)
    outcome: list[str] = []

    async def reader() -> None:
        try:
            await storage.read("gone")
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise
        except satchel.StorageError:
            outcome.append("storage error")

    with server.paused():
        with anyio.fail_after(HANG):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await anyio.sleep(0.1)
                tg.cancel_scope.cancel()
    assert outcome == ["cancelled"]
    # past where the cancelled read's deadline was: a read running then is not cut short
    with anyio.fail_after(HANG):
        assert await storage.read("gone") == b"v"
        await anyio.sleep(TIMEOUT)
        assert await storage.read("gone") == b"v"


async def test_a_server_that_accepts_connections_but_never_answers_times_out(server: Server) -> None:
    """A stopped process still has its connections accepted by the kernel: the connect
    succeeds, and the handshake's reply never comes."""
    store = RedisStorage.from_url(server.url, namespace="mute", timeout=TIMEOUT)
    expected = pytest.raises(satchel.StorageError, match="did not answer")
    with server.paused(), anyio.fail_after(HANG), expected:
        await store.read("m")
    try:
        assert await store.read("m") is None
    finally:
        await store.aclose()


async def test_client_pause_on_writes_times_out_writes_only(server: Server, storage: RedisStorage) -> None:
    admin = RedisStorage.from_url(server.url)
    try:
        await storage.write("w", b"v", None)
        await admin.client.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
        with anyio.fail_after(HANG):
            assert await storage.read("w") == b"v"
            with pytest.raises(satchel.StorageError):
                await storage.write("w", b"paused", None)
            with pytest.raises(satchel.StorageError):
                await storage.write_if("w", b"paused", None, expected=b"v")
        await admin.client.execute_command("CLIENT", "UNPAUSE")
        await storage.write("w", b"resumed", None)
        assert await storage.read("w") == b"resumed"
    finally:
        await admin.aclose()


async def test_connection_refused_at_open_is_a_storage_error() -> None:
    store = satchel.open_storage(f"redis://127.0.0.1:{free_port()}/0", timeout=TIMEOUT)
    with anyio.fail_after(HANG), pytest.raises(satchel.StorageError) as caught:
        await store.read("x")
    await store.aclose()
    assert "attempt" in str(caught.value)


async def test_an_unreachable_cluster_is_a_storage_error() -> None:
    # redis-py raises RedisClusterException here, which is not a RedisError
    store = satchel.open_storage(f"redis+cluster://127.0.0.1:{free_port()}/?timeout={TIMEOUT}")
    try:
        calls = [
            lambda: store.read("x"),
            lambda: store.write("x", b"v", 10),
            lambda: store.touch("x", 10),
            lambda: store.invalidate("x"),
        ]
        for call in calls:
            with anyio.fail_after(HANG), pytest.raises(satchel.StorageError):
                await call()
    finally:
        await store.aclose()


async def test_unix_socket_url(server: Server) -> None:
    store = satchel.open_storage(f"unix://{server.socket}?db=0&namespace=unix")
    try:
        await store.write("u", b"over a socket", 10)
        assert await store.read("u") == b"over a socket"
    finally:
        await store.aclose()
