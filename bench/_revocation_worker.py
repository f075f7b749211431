"""One contender of bench_revocation.py, in its own process: one satchel, one storage.

The driver starts it with PYTHONPATH naming the satchel sources to run (the commit
before the change, or none: the tree's own packages). It signs in its sessions through
satchel.SessionMiddleware itself, so each version stores them its own way, prints
``ready <where satchel was imported from>``, then answers each ``run <tasks> <count>
<seed>`` line on stdin with the microseconds per read-modify-write request of one batch:
wall time, and the CPU time of this process (all its threads: the SQLite connections'
included, the Redis server's not).

Only what the commit before the change already had is used here, but ``owner=``, which
the driver asks for only of the current tree.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import satchel
from _harness import Login, discard, read_write_handler, receive, respond, run

TTL = 3600.0
CONCURRENT_SIGN_INS = 50


def user(index: int) -> str:
    """Who signed in as session ``index``: four sessions per user, as four devices."""
    return f"user{index // 4}@example.com"


async def sign_in(scope: Any, receive: Any, send: Any) -> None:
    satchel.sessions_of(scope).set(Login(user=scope["path"].removeprefix("/sign-in/")))
    await respond(send)


def open_storage(kind: str, target: str, namespace: str) -> Any:
    if kind == "sqlite":
        from satchel_sqlite import SQLiteStorage

        return SQLiteStorage(target)  # a file of its own: the schemas differ between versions
    from satchel_redis import RedisStorage

    return RedisStorage.from_url(target, namespace=namespace)


def sessions(storage: Any, owned: bool) -> Any:
    extra: dict[str, Any] = {"owner": lambda login: login.user} if owned else {}
    return satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, max_age=TTL, **extra))


def scope(path: str, cookie: bytes | None) -> dict[str, Any]:
    headers = [(b"host", b"bench.example")]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return {"type": "http", "method": "GET", "path": path, "scheme": "https", "headers": headers}


async def sign_in_all(args: argparse.Namespace) -> list[bytes]:
    """Sign ``args.sessions`` users in through the middleware; the cookie of each."""
    storage = open_storage(args.storage, args.target, args.namespace)
    app = satchel.SessionMiddleware(sign_in, sessions(storage, args.owned))
    cookies: list[bytes] = [b""] * args.sessions

    async def one(index: int) -> None:
        sent: list[Any] = []

        async def keep(message: Any) -> None:
            sent.append(message)

        await app(scope(f"/sign-in/{user(index)}", None), receive, keep)
        (header,) = [v for k, v in sent[0]["headers"] if k == b"set-cookie" and v.startswith(b"SID=")]
        cookies[index] = header.partition(b";")[0]  # "SID=<id>.<when sent>", as a browser sends it back

    async def chunk(indexes: range) -> None:
        for index in indexes:
            await one(index)

    await asyncio.gather(
        *(chunk(range(i, args.sessions, CONCURRENT_SIGN_INS)) for i in range(CONCURRENT_SIGN_INS))
    )
    await storage.aclose()
    return cookies


async def batch(
    args: argparse.Namespace, cookies: list[bytes], tasks: int, count: int, seed: int
) -> tuple[float, float]:
    """Microseconds per read-modify-write request over ``count`` sessions chosen by ``seed``:
    wall time, and this process's CPU time.

    A fresh storage (connections, threads) per batch, as bench_sqlite.py does per round:
    where the OS places one long-lived connection thread can sway a whole run.
    """
    storage = open_storage(args.storage, args.target, args.namespace)
    app = satchel.SessionMiddleware(read_write_handler, sessions(storage, args.owned))
    chosen = random.Random(seed).sample(range(len(cookies)), count)
    scopes = {str(i): scope("/", cookies[i]) for i in chosen}

    async def request(key: str) -> None:
        await app(scopes[key], receive, discard)

    await run(request, list(scopes)[: args.warm_up], 1)  # connections open, scripts loaded, caches warm
    cpu = time.process_time()
    us = await run(request, list(scopes), tasks)
    cpu = (time.process_time() - cpu) / count * 1e6
    await storage.aclose()
    return us, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", choices=("sqlite", "redis"), required=True)
    parser.add_argument("--target", required=True, help="the SQLite file, or the Redis URL")
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--owned", action="store_true", help="owner=lambda login: login.user")
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--warm-up", type=int, default=30, help="untimed requests before each batch")
    parser.add_argument("--expect-under", required=True, help="satchel must be imported from here")
    args = parser.parse_args()
    for module in (
        satchel,
        sys.modules.get(f"satchel_{args.storage}") or __import__(f"satchel_{args.storage}"),
    ):
        where = Path(module.__file__ or "").resolve()
        if not where.is_relative_to(Path(args.expect_under).resolve()):
            raise SystemExit(
                f"{module.__name__} was imported from {where}, not from under {args.expect_under}"
            )
    cookies = asyncio.run(sign_in_all(args))
    print(f"ready {Path(satchel.__file__ or '').resolve().parent}", flush=True)
    for line in sys.stdin:
        command, *numbers = line.split()
        if command != "run":
            break
        tasks, count, seed = map(int, numbers)
        wall, cpu = asyncio.run(batch(args, cookies, tasks, count, seed))
        print(f"{wall:.3f} {cpu:.3f}", flush=True)


if __name__ == "__main__":
    main()
