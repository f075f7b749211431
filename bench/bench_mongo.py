"""satchel's MongoDB storage against a hand-written PyMongo floor.

Per request: read one session and write it back. The floor is what a careful user would
write by hand on the same ``AsyncMongoClient`` settings: one ``find_one`` on ``_id`` and
one ``replace_one`` upsert of ``{_id, data, expires}``. The implementations run
interleaved, round after round, in one process; the figure is the median over rounds of
microseconds per request, at 1 and 50 concurrent tasks.

The server comes from the kit's finder (``SATCHEL_TEST_MONGODB_URL``, a ``mongod`` on PATH,
or a container); without one the script says so and exits 0.

    .venv/bin/python bench/bench_mongo.py
    .venv/bin/python bench/bench_mongo.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import secrets
import statistics
import tempfile
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from satchel_conformance.servers import Unavailable, mongodb
from satchel_mongo import MongoStorage
from satchel_mongo import _documents as doc

VALUE = b"x" * 120  # a small login session, as serialized and signed
TTL = 3600.0
COLLECTION = "bench_sessions"
from _harness import run  # noqa: E402 - bench/ is on sys.path when run as a script


class Floor:
    """One find_one and one replace_one, no namespace, no digest, no index check."""

    def __init__(self, url: str) -> None:
        parsed = doc.parse_url(url)
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            parsed.client_url, **doc.client_options(parsed.query_keys, {})
        )
        database = parsed.database or doc.DEFAULT_DATABASE
        self.collection = self.client[database][COLLECTION + "_floor"]

    async def fill(self, ids: list[str]) -> None:
        expires = datetime.now(timezone.utc) + timedelta(days=1)
        await self.collection.insert_many([{"_id": i, "data": VALUE, "expires": expires} for i in ids])

    async def request(self, id: str) -> None:
        found = await self.collection.find_one({"_id": id, "expires": {"$gt": datetime.now(timezone.utc)}})
        assert found is not None
        expires = datetime.now(timezone.utc) + timedelta(seconds=TTL)
        await self.collection.replace_one(
            {"_id": id}, {"_id": id, "data": found["data"], "expires": expires}, upsert=True
        )

    async def close(self) -> None:
        await self.collection.drop()
        await self.client.close()


class Storage:
    """satchel's MongoStorage through its read/write API, in a namespace."""

    def __init__(self, url: str) -> None:
        self.storage = MongoStorage.from_url(url, collection=COLLECTION, namespace="bench")
        self.raw = Floor(url)
        self.raw.collection = self.raw.collection.database[COLLECTION]

    async def fill(self, ids: list[str]) -> None:
        await self.storage.read("warm-up")  # creates the TTL index
        expires = datetime.now(timezone.utc) + timedelta(days=1)
        await self.raw.collection.insert_many(
            [doc.session_document(doc.document_id("bench", i), VALUE, expires) for i in ids]
        )

    async def request(self, id: str) -> None:
        data = await self.storage.read(id)
        assert data is not None
        await self.storage.write(id, data, TTL)

    async def close(self) -> None:
        await self.storage.aclose()
        await self.raw.close()


async def bench(url: str, size: int, requests: int, rounds: int) -> None:
    ids = [secrets.token_urlsafe(32) for _ in range(size)]
    impls: dict[str, Any] = {"floor": Floor(url), "MongoStorage": Storage(url)}
    try:
        for impl in impls.values():
            await impl.fill(ids)
        print(f"\n{size:,} sessions stored")
        rng = random.Random(1)
        for tasks in (1, 50):
            figures: dict[str, list[float]] = {name: [] for name in impls}
            for _ in range(rounds):
                sample = rng.sample(ids, requests)
                for name, impl in impls.items():
                    figures[name].append(await run(impl.request, sample, tasks))
            floor = statistics.median(figures["floor"])
            for name, values in figures.items():
                us = statistics.median(values)
                print(f"  {tasks:>2} task(s)  {name:<13} {us:8.1f} us/request  {us / floor:5.2f}x")
    finally:
        for impl in impls.values():
            await impl.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--size", type=int, default=100_000, help="sessions stored")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.size, args.requests, args.rounds = 10_000, 500, 3
    print(
        f"python {platform.python_version()}, pymongo {version('pymongo')}, "
        f"satchel-mongo {version('satchel-mongo')}, "
        f"{platform.machine()} x {os.cpu_count()} cores, {platform.system()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-mongo-") as directory:
        try:
            with mongodb(Path(directory)) as url:
                asyncio.run(bench(url, args.size, args.requests, args.rounds))
        except Unavailable as exc:
            print(f"not measured: {exc}")


if __name__ == "__main__":
    main()
