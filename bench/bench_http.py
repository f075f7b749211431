"""Sessions over real sockets: requests per second through uvicorn, measured with wrk.

Run: ``.venv/bin/python bench/bench_http.py [--quick] [--rounds N] [--duration S]
[--only NAME ...]`` (or ``make bench BENCH_ARGS=http``; ``bench/run.py`` leaves it
out of a plain run because it takes minutes).

Each contender is an app of ``bench/_http_apps.py`` served by its own uvicorn process
(``--loop uvloop --http httptools``, one worker) on a free loopback port; a redis-server
and a SQLite file are started and made here. Every timed run is ``wrk -t1 -c32`` (``-c`` is
``--connections``: 1 measures a single user's requests one after another) for
``--duration`` seconds against one contender, with a Lua script that sends the session
cookie:

- read-modify-write (``/rmw``): a cookie-carried session sends back the last
  ``Set-Cookie`` it got, so every request carries a fresh value; a server-side session
  sends the IDs of 256 sessions made beforehand in turn (an ID does not change), so the
  32 connections never write the same session at once;
- read-only (``/ro``): the same cookies, never updated.

Schemes: ``http`` is what uvicorn reports for a plain request; for ``https`` wrk adds
``X-Forwarded-Proto: https`` and uvicorn (``--forwarded-allow-ips 127.0.0.1``) makes the
scope https, as behind a TLS-terminating proxy.

Rounds interleave every run in a rotated order; a ratio is taken within each round
(contender / reference, same workload and scheme) and the figure is the median of
those paired ratios. Before timing, a counting pass sends 50 requests of each kind in
order and counts the ``Set-Cookie`` headers and the storage operations per request
(Redis: INFO commandstats before and after; SQLite: a second satchel server whose
storage counts its calls).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import httpx
from redis import Redis
from satchel_conformance.servers import free_port, redis, wait_for_port

HERE = Path(__file__).resolve().parent
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CONNECTIONS = 32
POOL = 256  # server-side sessions made per contender, sent in turn
HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml",
}
OTHER_COOKIES = "_ga=GA1.2.1843614120.1712345678; theme=dark"


@dataclass(frozen=True)
class Contender:
    name: str  # the factory is _http_apps.app_<name>
    label: str
    kind: str  # "cookie" (the value travels), "server" (an ID travels), "bare"
    redis: bool = False


CONTENDERS = [
    Contender("bare", "bare ASGI app (no sessions)", "bare"),
    Contender("floor_cookie", "floor cookie (msgspec+HMAC+b64)", "cookie"),
    Contender("floor_cookie_full", "floor cookie, satchel's guarantees", "cookie"),
    Contender("starlette_cookie", "starlette SessionMiddleware", "cookie"),
    Contender("starsessions_cookie", "starsessions CookieStore", "cookie"),
    Contender("satchel_sign", "satchel Sign", "cookie"),
    Contender("satchel_encrypt", "satchel Encrypt (satchel-crypto)", "cookie"),
    Contender("floor_redis", "floor Redis (GET + SET EX)", "server", redis=True),
    Contender("floor_redis_cas", "floor Redis (GET + CAS script)", "server", redis=True),
    Contender("starsessions_redis", "starsessions RedisStore", "server", redis=True),
    Contender("litestar_bare", "Litestar app (no sessions)", "bare"),
    Contender("litestar_redis", "Litestar server-side, RedisStore", "server", redis=True),
    Contender("satchel_redis", "satchel redis://", "server", redis=True),
    Contender("satchel_sqlite", "satchel sqlite://", "server"),
]
BY_NAME = {c.name: c for c in CONTENDERS}

# (contender, reference, workload, schemes, target, direction): the paired ratios reported
TARGETS = [
    ("satchel_sign", "floor_cookie", "rmw", ("http", "https"), 0.9, ">="),
    ("satchel_sign", "floor_cookie_full", "rmw", ("http", "https"), None, ""),
    ("floor_cookie_full", "floor_cookie", "rmw", ("http", "https"), None, ""),
    ("satchel_sign", "starlette_cookie", "rmw", ("http", "https"), None, ""),
    ("satchel_encrypt", "satchel_sign", "rmw", ("http", "https"), None, ""),
    ("satchel_redis", "floor_redis_cas", "rmw", ("http", "https"), 0.9, ">="),
    ("satchel_redis", "floor_redis", "rmw", ("http", "https"), None, ""),
    ("satchel_redis", "starsessions_redis", "rmw", ("http", "https"), 1.2, ">="),
    ("floor_redis_cas", "floor_redis", "rmw", ("http", "https"), None, ""),
    ("litestar_redis", "litestar_bare", "rmw", ("http", "https"), None, ""),
    ("satchel_redis", "bare", "rmw", ("http", "https"), None, ""),
    ("satchel_sqlite", "satchel_redis", "rmw", ("http", "https"), None, ""),
    ("satchel_sign", "starsessions_cookie", "ro", ("http", "https"), 1.4, ">="),
    ("satchel_redis", "starsessions_redis", "ro", ("http", "https"), 1.4, ">="),
    ("satchel_sign", "floor_cookie", "ro", ("http", "https"), None, ""),
    ("satchel_redis", "floor_redis", "ro", ("http", "https"), None, ""),
]


# -- servers ---------------------------------------------------------------------------


@dataclass
class Server:
    contender: Contender
    port: int
    process: subprocess.Popen[bytes]
    cookies: list[str] = field(default_factory=list)  # "NAME=value" pairs to send

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(contender: Contender, env: dict[str, str], log: Path) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", f"_http_apps:app_{contender.name}", "--factory",
        "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--workers", "1",
        "--no-access-log", "--log-level", "warning",
        "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
    except Exception:
        process.kill()
        raise SystemExit(f"{contender.name}: uvicorn did not start; see {log}") from None
    return Server(contender, port, process)


@contextlib.contextmanager
def servers(contenders: list[Contender], env: dict[str, str], log: Path) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for contender in contenders:
            started[contender.name] = start(contender, env, log)
        yield started
    finally:
        for server in started.values():
            server.process.terminate()
        for server in started.values():
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()


def pair(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].strip()


def sign_in(server: Server, count: int) -> None:
    """Make ``count`` sessions on ``server`` and keep their cookies."""
    with httpx.Client(base_url=server.url) as client:
        for _ in range(count):
            response = client.get("/login", headers={"X-Forwarded-Proto": "https"})
            values = response.headers.get_list("set-cookie")
            if response.status_code != 200 or len(values) != 1:
                raise SystemExit(f"{server.contender.name}: /login answered {response.status_code}, {values}")
            server.cookies.append(pair(values[0]))


# -- the counting pass -----------------------------------------------------------------


def redis_calls(admin: Redis) -> dict[str, int]:
    stats = admin.info("commandstats")
    skip = {"cmdstat_config|resetstat", "cmdstat_info", "cmdstat_hello", "cmdstat_client|setinfo"}
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if k not in skip}


def count(server: Server, workload: str, scheme: str, admin: Redis | None, counter: Server | None,
          n: int = 50) -> str:  # fmt: skip
    """Set-Cookie and storage operations per request, as the timed runs make them."""
    target = counter or server
    cookies = list(target.cookies)
    headers = {**HEADERS, **({"X-Forwarded-Proto": "https"} if scheme == "https" else {})}
    carry = target.contender.kind == "cookie" and workload == "rmw"
    set_cookies = 0
    secure = 0
    path = "/rmw" if target.contender.kind != "bare" else "/"
    with httpx.Client(base_url=target.url) as client:
        client.get(
            path, headers={**headers, "Cookie": f"{OTHER_COOKIES}; {cookies[0]}"} if cookies else headers
        )
        if counter is not None:
            client.get("/_count")
        if admin is not None:
            admin.config_resetstat()
        for i in range(n):
            cookie = cookies[i % len(cookies)] if cookies else None
            sent = {**headers, **({"Cookie": f"{OTHER_COOKIES}; {cookie}"} if cookie else {})}
            response = client.get(f"/{workload}" if target.contender.kind != "bare" else "/", headers=sent)
            if response.status_code != 200:
                raise SystemExit(
                    f"{target.contender.name} {workload} {scheme}: status {response.status_code}"
                )
            values = response.headers.get_list("set-cookie")
            set_cookies += len(values)
            secure += sum("secure" in v.lower() for v in values)
            if carry and values:
                cookies[0] = pair(values[0])
        parts = [f"Set-Cookie {set_cookies / n:g}" + (f" (Secure {secure / n:g})" if set_cookies else "")]
        if counter is not None:
            calls = json.loads(client.get("/_count").text)
            parts.append(
                "storage calls " + (", ".join(f"{k} {v / n:g}" for k, v in sorted(calls.items())) or "0")
            )
    if admin is not None:
        calls = redis_calls(admin)
        total = sum(calls.values())
        listed = ", ".join(f"{k} {v / n:g}" for k, v in sorted(calls.items()))
        parts.append(f"Redis commands {total / n:g} ({listed})")
    return "; ".join(parts)


# -- wrk ---------------------------------------------------------------------------------

LUA = """
local cookies = {%(cookies)s}
local headers = %(headers)s
local i = 0
request = function()
  i = i %% #cookies + 1
  if cookies[i] ~= "" then headers["Cookie"] = "%(other)s; " .. cookies[i] end
  return wrk.format("GET", "%(path)s", headers)
end
%(response)s
"""
CARRY = """
response = function(status, headers, body)
  local c = headers["set-cookie"] or headers["Set-Cookie"]
  if c then cookies[1] = string.match(c, "^[^;]+") end
end
"""


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(server: Server, workload: str, scheme: str, directory: Path) -> Path:
    kind = server.contender.kind
    headers = {**HEADERS, **({"X-Forwarded-Proto": "https"} if scheme == "https" else {})}
    cookies = server.cookies[:1] if kind == "cookie" else server.cookies
    text = LUA % {
        "cookies": ", ".join(lua_string(c) for c in cookies) or '""',
        "headers": "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()) + "}",
        "other": OTHER_COOKIES,
        "path": "/" if kind == "bare" else f"/{workload}",
        "response": CARRY if kind == "cookie" and workload == "rmw" else "",
    }
    path = directory / f"{server.contender.name}-{workload}-{scheme}.lua"
    path.write_text(text)
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu(admin: Redis) -> float:
    info = admin.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass(frozen=True)
class Sample:
    rps: float  # requests per second, as wrk counted them
    cpu_us: float  # server CPU per request: the uvicorn process, plus redis-server's for Redis contenders


def wrk(
    server: Server, lua: Path, duration: float, admin: Redis | None = None, connections: int = CONNECTIONS
) -> Sample:
    """One timed run; any non-2xx answer or socket error stops the bench."""
    cpu = cpu_seconds(server.process.pid) + (redis_cpu(admin) if admin is not None else 0.0)
    out = subprocess.run(
        [WRK, "-t1", f"-c{connections}", f"-d{duration:g}s", "-s", str(lua), server.url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if bad:
        raise SystemExit(f"{server.contender.name} ({lua.name}): {bad.group(0)}\n{out}")
    cpu = cpu_seconds(server.process.pid) + (redis_cpu(admin) if admin is not None else 0.0) - cpu
    found, requests = re.search(r"Requests/sec:\s+([\d.]+)", out), re.search(r"(\d+) requests in", out)
    if not found or not requests:
        raise SystemExit(f"{server.contender.name}: no Requests/sec in wrk's output:\n{out}")
    return Sample(float(found.group(1)), cpu / int(requests.group(1)) * 1e6)


# -- the run -----------------------------------------------------------------------------


def runs_of(names: list[str], workloads: list[str], schemes: list[str]) -> list[tuple[str, str, str]]:
    runs: list[tuple[str, str, str]] = []
    for name in names:
        for workload in workloads:
            if BY_NAME[name].kind == "bare" and workload != "rmw":
                continue  # a bare app has one workload, filed under rmw
            runs.extend((name, workload, scheme) for scheme in schemes)
    return runs


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def report(samples: dict[tuple[str, str, str], list[Sample]], schemes: list[str]) -> None:
    print("\nmedian over rounds (min-max): requests/s; server CPU us per request")
    for key, values in samples.items():
        name, workload, scheme = key
        rps, cpu = [v.rps for v in values], [v.cpu_us for v in values]
        print(
            f"  {BY_NAME[name].label:36} {workload:>3} {scheme:<5} {statistics.median(rps):9.0f}"
            f" ({min(rps):.0f}-{max(rps):.0f})  {statistics.median(cpu):7.1f} us"
            f" ({min(cpu):.1f}-{max(cpu):.1f})"
        )
    print(
        "\npaired ratios, median over rounds (min-max): requests/s contender / reference;"
        "\n  then the same from server CPU (reference's CPU per request / contender's)"
    )
    for name, reference, workload, wanted, target, direction in TARGETS:
        for scheme in (s for s in wanted if s in schemes):
            a, b = samples.get((name, workload, scheme)), samples.get((reference, workload, scheme))
            if not a or not b:
                continue
            rps = [x.rps / y.rps for x, y in zip(a, b, strict=True)]
            cpu = [y.cpu_us / x.cpu_us for x, y in zip(a, b, strict=True)]
            median = statistics.median(rps)
            verdict = ""
            if target is not None:
                verdict = f"  target {direction} {target}x: {'met' if median >= target else 'MISSED'}"
            print(
                f"  {name} / {reference} {workload} {scheme:<5} {median:5.2f}x"
                f" ({min(rps):.2f}-{max(rps):.2f}); CPU {statistics.median(cpu):5.2f}x"
                f" ({min(cpu):.2f}-{max(cpu):.2f}){verdict}"
            )


def bench(args: argparse.Namespace) -> None:
    if not Path(WRK).exists():
        raise SystemExit(f"no wrk at {WRK}: install wrk (the load generator) or put it on PATH")
    if not Path("/proc/self/stat").exists():
        raise SystemExit("bench_http.py reads server CPU time from /proc: it runs on Linux only")
    names = args.only or [c.name for c in CONTENDERS]
    unknown = set(names) - set(BY_NAME)
    if unknown:
        raise SystemExit(f"unknown contenders {sorted(unknown)}; have {list(BY_NAME)}")
    contenders = [BY_NAME[n] for n in names]
    server_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()  # fmt: skip
    libraries = [
        "satchel",
        "uvicorn",
        "uvloop",
        "httptools",
        "starlette",
        "starsessions",
        "litestar",
        "redis",
    ]
    print(", ".join([f"python {platform.python_version()}"] + [f"{n} {version(n)}" for n in libraries]))
    print(
        f"{' '.join(server_version[:3])}; {platform.machine()} x {os.cpu_count()} cores, "
        f"{platform.system()}; wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} rounds, "
        f"load average {load_average()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        directory = Path(tmp)
        with redis(directory / "redis") as redis_url:
            env = {
                **os.environ,
                "BENCH_HTTP_KEY": secrets.token_hex(32),
                "BENCH_HTTP_REDIS": redis_url,
                "BENCH_HTTP_SQLITE": str(directory / "sessions.db"),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            }
            log = directory / "uvicorn.log"
            admin = Redis.from_url(redis_url)
            try:
                with servers(contenders, env, log) as running:
                    measure(args, running, admin, env, log, directory)
            finally:
                admin.close()
                if log.exists() and log.read_text().strip():
                    print(f"\nuvicorn's log:\n{log.read_text()[-3000:]}")


def measure(
    args: argparse.Namespace,
    running: dict[str, Server],
    admin: Redis,
    env: dict[str, str],
    log: Path,
    directory: Path,
) -> None:
    for server in running.values():
        kind = server.contender.kind
        if kind != "bare":
            sign_in(server, POOL if kind == "server" else 1)
    print("\nper request, from a counting pass of 50 requests in order:")
    counted_ones = [BY_NAME["satchel_sqlite"]] if "satchel_sqlite" in running else []
    with servers(counted_ones, {**env, "BENCH_HTTP_COUNT": "1"}, log) as counted:
        counter = counted.get("satchel_sqlite")
        if counter is not None:
            sign_in(counter, POOL)
        for name, workload, scheme in runs_of(list(running), args.workloads, args.schemes):
            server = running[name]
            figures = count(
                server,
                workload,
                scheme,
                admin if server.contender.redis else None,
                counter if name == "satchel_sqlite" else None,
            )
            print(f"  {server.contender.label:36} {workload:>3} {scheme:<5} {figures}")
    runs = runs_of(list(running), args.workloads, args.schemes)
    scripts = {run: script(running[run[0]], run[1], run[2], directory) for run in runs}

    def timed(run: tuple[str, str, str], duration: float) -> Sample:
        server = running[run[0]]
        redis_admin = admin if server.contender.redis else None
        return wrk(server, scripts[run], duration, redis_admin, args.connections)

    for run in runs:  # warm up: imports, connections, scripts loaded
        timed(run, 1)
    samples: dict[tuple[str, str, str], list[Sample]] = {run: [] for run in runs}
    for r in range(args.rounds):
        start = time.perf_counter()
        shift = (r * 7) % len(runs)
        for run in runs[shift:] + runs[:shift]:
            samples[run].append(timed(run, args.duration))
        took = time.perf_counter() - start
        print(f"  round {r + 1}/{args.rounds}: {took:.0f} s, load average {load_average()}", flush=True)
    report(samples, args.schemes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s runs")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 2)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"contenders, among {list(BY_NAME)}")
    parser.add_argument("--workloads", nargs="+", default=["rmw", "ro"], choices=["rmw", "ro"])
    parser.add_argument("--schemes", nargs="+", default=["http", "https"], choices=["http", "https"])
    parser.add_argument(
        "--connections",
        type=int,
        default=CONNECTIONS,
        help=f"wrk's connections, each one request at a time (default {CONNECTIONS}; 1: one user)",
    )
    args = parser.parse_args(argv)
    if args.connections < 1:
        parser.error("--connections: at least 1")
    args.rounds = args.rounds or (1 if args.quick else 7)
    args.duration = args.duration or 2.0
    bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
