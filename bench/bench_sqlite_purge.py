"""SQLiteStorage.purge(): its time against the rows stored, and the longest stall of
requests running while it purges.

Each file is filled in the storage's own schema (the storage creates it; the rows go in
through the storage's own UPSERT statement, in one transaction on a plain sqlite3
connection, so each row gets the purge hint the storage would give it): random 43-character
IDs, 120-byte values, half of them expired at random times over the past day and half
expiring over the next day. The same file is then purged by a fresh SQLiteStorage.

    python bench/bench_sqlite_purge.py                    # 10^3 .. 10^6 rows, stalls at 10^6
    python bench/bench_sqlite_purge.py --quick            # 10^3 .. 10^5, stalls at 10^5
    python bench/bench_sqlite_purge.py --sizes 100000 --stall-size 100000

Figures, per size: the seconds purge() took, per row removed, the way it went (through
the purge index, or along the primary key), and the median cost of one read-modify-write
request (``read`` + ``write_if``, one task) on the file before the purge, which must not
grow with the rows stored: through the storage, and its SQLite time alone.

Under load: one task loops read-modify-write requests on live sessions, from another
process on the same file (a worker, while ``satchel purge`` runs from cron) or through
the purging storage itself (an app's own purge task), before and while it purges; the
figure is the longest request, against the longest before the purge.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from satchel_sqlite import SQLiteStorage, _sql

VALUE = b"x" * 120  # a small login session, as serialized and signed
DAY = 86400.0
TTL = 3600.0
TARGET_SECONDS = 3.0  # 500,000 expired among 10^6


def session_ids(count: int, rng: random.Random) -> list[str]:
    return [rng.randbytes(32).hex()[:43] for _ in range(count)]


def fill(path: str, count: int, now: float, seed: int, expired: float = 0.5, sql: Any = _sql) -> list[str]:
    """``count`` sessions in a new file, the fraction ``expired`` of them expired; returns
    the live IDs. ``sql``: the storage's statements module (another revision's, to compare)."""
    sql.connect(path, 5.0, time.monotonic() + 5.0, "normal").close()  # the schema, as the storage makes it
    rng = random.Random(seed)
    ids = sorted(session_ids(count, rng))  # key order: the table is written front to back
    expiries = [
        now - rng.uniform(0, DAY) if rng.random() < expired else now + rng.uniform(1, DAY) for _ in ids
    ]
    db = sqlite3.connect(path, isolation_level=None)
    try:
        # the purge index is built once at the end, from sorted entries, rather than
        # updated a row at a time: the same index, in a fraction of the time
        (index_sql,) = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (f"{sql.TABLE}_purge",)
        ).fetchone()
        db.execute("BEGIN")
        db.execute(f"DROP INDEX {sql.TABLE}_purge")
        db.executemany(sql.UPSERT, (("", id, VALUE, e) for id, e in zip(ids, expiries, strict=True)))
        db.execute(index_sql)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return [id for id, e in zip(ids, expiries, strict=True) if e > now + 600]


def remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def way(path: str, now: float) -> str:
    """Which way purge() will go on this file (the storage's own rule)."""
    plan = getattr(_sql, "purge_plan", None)
    if plan is None:
        return "key (old)"
    from satchel_sqlite import _storage

    with sqlite3.connect(path) as db:
        dead, band, pages = plan(db, now)
    db.close()
    index = _storage._PURGE_DEAD_COST * dead + band <= _storage._PURGE_PAGE_COST * pages
    return "index" if index else "key"


async def request_cost(path: str, live: list[str], count: int, clock: float) -> float:
    """Median microseconds of one read + write_if on random live sessions, one task.

    Each session is rewritten once untimed first, then timed: a session's first write
    after the fill moves its purge hint (its new expiry is an hour away, the filled one
    anywhere within a day), which a session rewritten on every request does not do.
    """
    storage = SQLiteStorage(path, clock=lambda: clock)
    sample = random.Random(3).sample(live, min(count, len(live)))
    times = []
    try:
        await storage.read("warm-up")
        for timed in (False, True):
            for id in sample:
                start = time.perf_counter()
                data = await storage.read(id)
                assert data is not None
                await storage.write_if(id, data, TTL, expected=data)
                if timed:
                    times.append(time.perf_counter() - start)
    finally:
        await storage.aclose()
    return statistics.median(times) * 1e6


def sql_cost(path: str, live: list[str], count: int, clock: float, sql: Any = _sql) -> float:
    """The same request's SQLite time alone: median microseconds of the storage's own read
    and write_if functions called on a connection set up as the storage sets up its own,
    without the hop to a connection thread (which dominates, and varies, at one task)."""
    db = sql.connect(path, 5.0, time.monotonic() + 5.0, "normal")
    sample = random.Random(4).sample(live, min(count, len(live)))
    times = []
    try:
        for timed in (False, True):
            for id in sample:
                start = time.perf_counter()
                data = sql.read(db, "", id, clock)
                assert data is not None
                sql.write_if(db, "", id, data, clock + TTL, data, clock)
                if timed:
                    times.append(time.perf_counter() - start)
    finally:
        db.close()
    return statistics.median(times) * 1e6


async def timed_purge(path: str, now: float) -> tuple[int, float]:
    storage = SQLiteStorage(path, clock=lambda: now)
    try:
        await storage.read("warm-up")  # the connections are open: the purge alone is timed
        start = time.perf_counter()
        removed = await storage.purge()
        return removed, time.perf_counter() - start
    finally:
        await storage.aclose()


def summary(samples: list[tuple[float, float]], start: float, end: float) -> dict[str, float]:
    """Latencies (ms) of the requests that started before ``start`` and between the two."""
    before = sorted(ms for at, ms in samples if at < start)
    during = sorted(ms for at, ms in samples if start <= at <= end)
    return {
        "requests": len(during),
        "median": statistics.median(during),
        "p99": during[int(len(during) * 0.99)],
        "max": during[-1],
        "median_before": statistics.median(before),
        "p99_before": before[int(len(before) * 0.99)],
        "max_before": before[-1],
    }


async def requests_loop(
    storage: SQLiteStorage, live: list[str], samples: list[tuple[float, float]], stop: Any
) -> None:
    """Read-modify-write requests on random live sessions until ``stop()``; each one's
    wall-clock start and its latency in ms."""
    rng = random.Random(5)
    while not stop():
        id = rng.choice(live)
        at, start = time.time(), time.perf_counter()
        data = await storage.read(id)
        assert data is not None
        await storage.write_if(id, data, TTL, expected=data)
        samples.append((at, (time.perf_counter() - start) * 1000))


async def purge_under_load_here(path: str, live: list[str], now: float, before: float) -> dict[str, float]:
    """Requests through the purging storage itself (an app's own purge task)."""
    storage = SQLiteStorage(path, clock=lambda: now)
    samples: list[tuple[float, float]] = []
    stopped = False
    try:
        await storage.read("warm-up")
        task = asyncio.create_task(requests_loop(storage, live, samples, lambda: stopped))
        await asyncio.sleep(before)
        start, t0 = time.time(), time.perf_counter()
        removed = await storage.purge()
        end, elapsed = time.time(), time.perf_counter() - t0
        stopped = True
        await task
    finally:
        await storage.aclose()
    return {"removed": removed, "seconds": elapsed, **summary(samples, start, end)}


async def purge_under_load_elsewhere(
    path: str, live: list[str], now: float, before: float
) -> dict[str, float]:
    """Requests from another process on the same file (a worker), while this one purges
    (``satchel purge`` from cron)."""
    with tempfile.NamedTemporaryFile("w", suffix=".ids", delete=False) as ids:
        ids.write("\n".join(live))
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        *("--load", path, "--ids", ids.name, "--now", repr(now)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        assert (await worker.stdout.readline()).strip() == b"ready"
        await asyncio.sleep(before)
        storage = SQLiteStorage(path, clock=lambda: now)
        try:
            await storage.read("warm-up")
            start, t0 = time.time(), time.perf_counter()
            removed = await storage.purge()
            end, elapsed = time.time(), time.perf_counter() - t0
        finally:
            await storage.aclose()
        out, _ = await asyncio.wait_for(worker.communicate(b"stop\n"), timeout=60)
    finally:
        if worker.returncode is None:
            worker.kill()
        os.unlink(ids.name)
    samples = [tuple(map(float, line.split())) for line in out.decode().splitlines() if line]
    return {"removed": removed, "seconds": elapsed, **summary(samples, start, end)}  # type: ignore[arg-type]


def load(path: str, ids: str, now: float) -> None:
    """The worker process: requests until a line arrives on stdin, then each request's
    start and latency on stdout."""
    live = Path(ids).read_text().split()
    samples: list[tuple[float, float]] = []
    stopped = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stopped.set()

    async def run() -> None:
        storage = SQLiteStorage(path, clock=lambda: now)
        try:
            await storage.read("warm-up")
            print("ready", flush=True)
            threading.Thread(target=wait_for_stop, daemon=True).start()
            await requests_loop(storage, live, samples, stopped.is_set)
        finally:
            await storage.aclose()

    asyncio.run(run())
    print("\n".join(f"{at!r} {ms!r}" for at, ms in samples), flush=True)


def paired_rmw(sizes: list[int], against: str, rounds: int, directory: str) -> None:
    """The request's SQLite time with this tree's statements and with those in
    ``against`` (another revision's ``packages/storage-sqlite/src``), each on a file of
    its own schema, interleaved round by round."""
    spec = importlib.util.spec_from_file_location(
        "other_sql", os.path.join(against, "satchel_sqlite", "_sql.py")
    )
    assert spec is not None
    assert spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    now = time.time()
    files = {}
    for size in sizes:
        for name, sql in (("this", _sql), ("other", other)):
            path = os.path.join(directory, f"rmw-{name}-{size}.db")
            files[name, size] = (path, fill(path, size, now, seed=size, sql=sql), sql)
    figures: dict[tuple[str, int], list[float]] = {key: [] for key in files}
    for round in range(rounds):
        keys = list(files)
        for key in keys[round % len(keys) :] + keys[: round % len(keys)]:
            path, live, sql = files[key]
            figures[key].append(sql_cost(path, live, 2000, now, sql))
    print(f"\nread-modify-write, SQLite time alone, median of {rounds} interleaved rounds (us):")
    schemas = f"(schema {_sql.SCHEMA_VERSION} / {other.SCHEMA_VERSION})"
    print(f"{'rows':>9} {'this tree':>10} {'against':>8}  {schemas}")
    for size in sizes:
        this, them = statistics.median(figures["this", size]), statistics.median(figures["other", size])
        print(f"{size:>9,} {this:>10.1f} {them:>8.1f}")
    for path, _, _ in files.values():
        remove(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--stall-size", type=int, default=1_000_000, help="rows stored for the load runs (0: none)"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests timed per size, before purging")
    parser.add_argument("--repeat", type=int, default=3, help="purges per size, each of a copy of one file")
    parser.add_argument("--expired", type=float, default=0.5, help="the fraction of sessions expired")
    parser.add_argument("--dir", help="where the files go (default: a temporary directory)")
    parser.add_argument(
        "--rmw-against",
        metavar="DIR",
        help="only compare the request's SQLite time with another revision's packages/storage-sqlite/src",
    )
    parser.add_argument("--quick", action="store_true", help="10^3 to 10^5 rows, load runs at 10^5")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the worker process of a load run
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--now", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(args.load, args.ids, args.now)
        return
    if args.quick:
        args.sizes, args.stall_size, args.requests, args.repeat = [1000, 10_000, 100_000], 100_000, 500, 1
    if args.requests < 1:
        parser.error("--requests: at least 1 (the request columns are medians of them)")
    print(
        f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"aiosqlite {version('aiosqlite')}, satchel-sqlite {version('satchel-sqlite')} "
        f"(schema {_sql.SCHEMA_VERSION}), {platform.machine()} x {os.cpu_count()} cores, "
        f"{platform.system()}; load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-purge-", dir=args.dir) as directory:
        if args.rmw_against:
            paired_rmw([args.sizes[0], args.sizes[-1]], args.rmw_against, 9, directory)
            return
        header = ("rows", "expired", "fill s", "way", "purge s", "(runs)", "us/row", "rmw us", "sql us")
        print("\n{:>9} {:>8} {:>7} {:>6} {:>8} {:>13} {:>7} {:>7} {:>7}".format(*header))
        for size in args.sizes:
            path = os.path.join(directory, f"purge-{size}.db")
            now = time.time()
            start = time.perf_counter()
            live = fill(path, size, now, seed=size, expired=args.expired)
            filled = time.perf_counter() - start
            rmw = asyncio.run(request_cost(path, live, args.requests, now))
            sql = sql_cost(path, live, args.requests * 4, now)
            how = way(path, now)
            if size == args.stall_size:
                shutil.copyfile(path, path + ".other")
                shutil.copyfile(path, path + ".same")
            runs = []
            for run in range(args.repeat):
                copy = path
                if run < args.repeat - 1:  # every run but the last purges a copy
                    copy = f"{path}.{run}"
                    shutil.copyfile(path, copy)
                os.sync()  # the setup's writes on disk first, not during the purge
                removed, seconds = asyncio.run(timed_purge(copy, now))
                runs.append(seconds)
                if copy != path:
                    remove(copy)
            seconds = statistics.median(runs)
            spread = f"{min(runs):.3f}-{max(runs):.3f}"
            print(
                f"{size:>9,} {removed:>8,} {filled:>7.1f} {how:>6} {seconds:>8.3f} {spread:>13} "
                f"{seconds / max(removed, 1) * 1e6:>7.2f} {rmw:>7.0f} {sql:>7.1f}",
                flush=True,
            )
            if size == args.stall_size:
                for same in (False, True):
                    copy = path + (".same" if same else ".other")
                    os.sync()
                    if same:
                        figures = asyncio.run(purge_under_load_here(copy, live, now, before=2.0))
                        who = "through the purging storage"
                    else:
                        figures = asyncio.run(purge_under_load_elsewhere(copy, live, now, before=2.0))
                        who = "from another process"
                    print(
                        f"  under load, requests {who}: purge {figures['seconds']:.2f} s "
                        f"({figures['removed']:,} rows); {figures['requests']:,} requests meanwhile, "
                        f"median {figures['median']:.2f} ms, p99 {figures['p99']:.1f} ms, "
                        f"longest {figures['max']:.1f} ms (before the purge: median "
                        f"{figures['median_before']:.2f} ms, p99 {figures['p99_before']:.1f} ms, "
                        f"longest {figures['max_before']:.1f} ms)",
                        flush=True,
                    )
                    remove(copy)
            remove(path)
            if size == 1_000_000 and args.expired == 0.5:
                verdict = "met" if seconds <= TARGET_SECONDS else "missed"
                target = f"{removed:,} expired among 10^6 purged in at most {TARGET_SECONDS:.0f} s"
                print(f"  target: {target}: {verdict}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
