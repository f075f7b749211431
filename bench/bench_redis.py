"""satchel's Redis storage against the floor of raw redis.asyncio commands, and starsessions.

Per request, read-modify-write: read one session and write it back with its expiry.
The floor: one GET and one SET EX on a plain ``redis.asyncio.Redis``. RedisStorage:
``read`` then ``write``. starsessions: its ``RedisStore.read`` then ``write`` on the same
kind of client. middleware: the same request through ``satchel.SessionMiddleware`` (a
cookie in, the session decoded, changed, encoded and stored, a Set-Cookie out).

Read-only requests: the floor is one GET; RedisStorage ``read``; the middleware with a
handler that only reads. The Redis commands each kind of request costs are counted on
the server (INFO commandstats) and printed with the figures.

All run interleaved, round after round, in one process against one redis-server this
script starts on a free loopback port; the figure is the median over rounds of
microseconds per request, at 1 and 50 concurrent tasks.

    .venv/bin/python bench/bench_redis.py            # full run (about a minute)
    .venv/bin/python bench/bench_redis.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import msgspec
import satchel
from redis.asyncio import Redis
from satchel._codec import pack_record  # the record the middleware stores; bench only
from satchel.testing import store_key  # what the middleware stores a session under
from satchel_conformance.servers import redis as redis_server
from satchel_redis import RedisStorage
from starsessions.stores.redis import RedisStore

VALUE = b"x" * 120  # a small login session, as serialized and signed
TTL = 3600
from _harness import Login, Request, discard, read_write_handler, receive, respond, run  # noqa: E402 - bench/ is on sys.path when run as a script


def session_ids(count: int) -> list[str]:
    rng = random.Random(count)
    return [base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode() for _ in range(count)]


LOGIN = pack_record("SID", time.time(), msgspec.json.encode(Login(user="u" * 80)))


class Floor:
    """What a careful user would write by hand: one GET, one SET EX."""

    def __init__(self, url: str) -> None:
        self.client = Redis.from_url(url, socket_timeout=None)  # as RedisStorage: no per-command wait_for

    async def fill(self, ids: list[str]) -> None:
        await _fill(self.client, (f"floor:{i}" for i in ids), VALUE)

    async def request(self, id: str) -> None:
        data = await self.client.get(f"floor:{id}")
        assert data is not None
        await self.client.set(f"floor:{id}", data, ex=TTL)

    async def read_only(self, id: str) -> None:
        assert await self.client.get(f"floor:{id}") is not None

    async def close(self) -> None:
        await self.client.aclose()


class Storage:
    """satchel's RedisStorage through its read/write API."""

    def __init__(self, url: str) -> None:
        self.storage = RedisStorage.from_url(url, namespace="bench")

    async def fill(self, ids: list[str]) -> None:
        await _fill(self.storage.client, (self.storage.key(i) for i in ids), VALUE)

    async def request(self, id: str) -> None:
        data = await self.storage.read(id)
        assert data is not None
        await self.storage.write(id, data, TTL)

    async def read_only(self, id: str) -> None:
        assert await self.storage.read(id) is not None

    async def close(self) -> None:
        await self.storage.aclose()


class Starsessions:
    """starsessions' RedisStore (the store its SessionMiddleware calls), read then write."""

    def __init__(self, url: str) -> None:
        self.client = Redis.from_url(url, socket_timeout=None)  # as RedisStorage: no per-command wait_for
        self.store = RedisStore(connection=self.client, prefix="starsessions.")

    async def fill(self, ids: list[str]) -> None:
        await _fill(self.client, (f"starsessions.{i}" for i in ids), VALUE)

    async def request(self, id: str) -> None:
        data = await self.store.read(id, lifetime=TTL)
        assert data
        await self.store.write(id, data, lifetime=TTL, ttl=TTL)

    async def read_only(self, id: str) -> None:
        assert await self.store.read(id, lifetime=TTL)

    async def close(self) -> None:
        await self.client.aclose()


async def read_only_handler(scope: Any, receive: Any, send: Any) -> None:
    login = await satchel.sessions_of(scope).get(Login)
    assert login is not None, "the bench's session was not found"
    await respond(send)


class Middleware:
    """The same requests through satchel.SessionMiddleware with RedisStorage."""

    def __init__(self, url: str) -> None:
        self.storage = RedisStorage.from_url(url, namespace="bench-mw")
        json = satchel.JSONSerializer(Login)  # the serializer LOGIN was encoded with
        sessions = satchel.Sessions(
            satchel.cookie(Login, "SID", storage=self.storage, serializer=json, max_age=TTL)
        )
        self.app = satchel.SessionMiddleware(read_write_handler, sessions)
        self.reader = satchel.SessionMiddleware(read_only_handler, sessions)

    async def fill(self, ids: list[str]) -> None:
        # the middleware stores a session under a digest of its ID, not the ID itself
        await _fill(self.storage.client, (self.storage.key(store_key(i)) for i in ids), LOGIN)

    @staticmethod
    def scope(id: str) -> dict[str, Any]:
        return {
            "type": "http",
            "method": "GET",
            "path": "/",
            "scheme": "https",
            # as a browser sends it back: the ID and when the cookie was last sent
            "headers": [(b"host", b"bench.example"), (b"cookie", f"SID={id}.{int(time.time())}".encode())],
        }

    async def request(self, id: str) -> None:
        await self.app(self.scope(id), receive, discard)

    async def read_only(self, id: str) -> None:
        await self.reader(self.scope(id), receive, discard)

    async def close(self) -> None:
        await self.storage.aclose()


async def _fill(client: Any, keys: Any, value: bytes) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, value, ex=TTL * 24)
        await pipe.execute()


async def commands_per_request(admin: Redis, request: Request, ids: list[str]) -> float:
    """Redis commands the server saw per request (connection handshakes excluded)."""
    await request(ids[0])  # connections open, scripts loaded
    await admin.config_resetstat()
    for id in ids:
        await request(id)
    stats = await admin.info("commandstats")
    skip = {"cmdstat_config|resetstat", "cmdstat_hello", "cmdstat_client|setinfo"}
    calls = sum(v["calls"] for k, v in stats.items() if k not in skip)
    return calls / len(ids)


async def bench(url: str, sessions: int, requests: int, rounds: int) -> None:
    ids = session_ids(sessions)
    impls: dict[str, Any] = {
        "floor": Floor(url),
        "RedisStorage": Storage(url),
        "starsessions": Starsessions(url),
        "middleware": Middleware(url),
    }
    for impl in impls.values():
        await impl.fill(ids)
    admin = Redis.from_url(url)
    rng = random.Random(1)
    for kind in ("request", "read_only"):
        title = "read, modify, write" if kind == "request" else "read only"
        sample = rng.sample(ids, 200)
        cost = {
            name: await commands_per_request(admin, getattr(impl, kind), sample)
            for name, impl in impls.items()
        }
        print(f"\n{title}: Redis commands per request: "
              + ", ".join(f"{n} {c:g}" for n, c in cost.items()))  # fmt: skip
        for tasks in (1, 50):
            figures: dict[str, list[float]] = {name: [] for name in impls}
            for _ in range(rounds):
                sample = rng.sample(ids, requests)
                order = list(impls.items())
                rng.shuffle(order)  # no implementation always runs first in a round
                for name, impl in order:
                    figures[name].append(await run(getattr(impl, kind), sample, tasks))
            floor = statistics.median(figures["floor"])
            for name, values in figures.items():
                us = statistics.median(values)
                print(f"  {tasks:>2} task(s)  {name:<13} {us:7.1f} us/request  {us / floor:5.2f}x floor")
    await admin.aclose()
    for impl in impls.values():
        await impl.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions stored")
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.requests, args.rounds = 10_000, 1000, 3
    server = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    print(
        f"python {platform.python_version()}, {' '.join(server[:3])}, redis-py {version('redis')}, "
        f"starsessions {version('starsessions')}, satchel-redis {version('satchel-redis')}, "
        f"{platform.machine()} x {os.cpu_count()} cores, {platform.system()}; "
        f"{args.sessions:,} sessions stored, {args.requests} requests x {args.rounds} rounds"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-redis-") as directory,
        redis_server(Path(directory)) as url,
    ):
        asyncio.run(bench(url, args.sessions, args.requests, args.rounds))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
