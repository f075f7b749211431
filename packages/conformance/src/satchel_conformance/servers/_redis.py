"""Redis finders: standalone, a 3-master Cluster, and a master watched by a Sentinel.

Each yields a URL: from the environment (``SATCHEL_TEST_REDIS_URL``,
``SATCHEL_TEST_REDIS_CLUSTER_URL``, ``SATCHEL_TEST_REDIS_SENTINEL_URL``), else from
``redis-server`` started on free loopback ports (no persistence, stopped on exit),
else, for the standalone server only, from testcontainers when a Docker engine answers.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from ._common import Unavailable, docker_answers, free_port, running, wait_until, which

__all__ = ["redis", "redis_cluster", "redis_sentinel", "SENTINEL_SERVICE"]

SENTINEL_SERVICE = "satchel"
"""The service name the Sentinel finder monitors (the path of its URL)."""

# In-memory only, loopback only: a test server keeps nothing and serves no one else.
_EPHEMERAL = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


def _unavailable(kind: str, env: str, containers: bool) -> Unavailable:
    docker = (
        "or start a Docker engine (with `pip install satchel-conformance[containers]`)"
        if containers
        else "(testcontainers cannot start one)"
    )
    return Unavailable(
        f"no Redis {kind} for tests: set {env}, or install redis-server "
        f"(`apt-get install redis-server`) so it is on PATH, {docker}"
    )


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    """Run ``redis-cli -p port args`` and return its output."""
    cli = which("redis-cli")
    if cli is None:
        raise Unavailable("redis-cli not found next to redis-server; install redis-tools")
    done = subprocess.run(  # noqa: S603 - a fixed redis-cli argv, no shell
        [cli, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout + done.stderr


def _wait_until(what: str, check: Callable[[], bool]) -> None:
    wait_until(f"test Redis setup: {what}", check, timeout=20.0)


def _server(stack: contextlib.ExitStack, binary: str, workdir: Path, *extra: str) -> int:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--dir", str(workdir), *_EPHEMERAL, *extra]
    stack.enter_context(running(argv, port=port, cwd=workdir))
    return port


@contextlib.contextmanager
def redis(workdir: Path) -> Iterator[str]:
    """A standalone server: ``redis://127.0.0.1:PORT/0``."""
    url = os.environ.get("SATCHEL_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = which("redis-server")
    if binary is not None:
        with contextlib.ExitStack() as stack:
            port = _server(stack, binary, workdir)
            yield f"redis://127.0.0.1:{port}/0"
        return
    if docker_answers():
        try:
            from testcontainers.redis import RedisContainer
        except ImportError:
            pass
        else:
            with RedisContainer("redis:7-alpine") as container:
                host = container.get_container_host_ip()
                port = container.get_exposed_port(6379)
                yield f"redis://{host}:{port}/0"
            return
    raise _unavailable("server", "SATCHEL_TEST_REDIS_URL=redis://HOST:PORT/0", True)


@contextlib.contextmanager
def redis_cluster(workdir: Path) -> Iterator[str]:
    """Three masters, no replicas: ``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3``."""
    url = os.environ.get("SATCHEL_TEST_REDIS_CLUSTER_URL")
    if url:
        yield url
        return
    binary = which("redis-server")
    if binary is None:
        raise _unavailable("Cluster", "SATCHEL_TEST_REDIS_CLUSTER_URL=redis+cluster://HOST:PORT,...", False)
    with contextlib.ExitStack() as stack:
        ports = []
        for index in range(3):
            # the bus port is given explicitly: port + 10000 may be taken or past 65535
            ports.append(
                _server(
                    stack,
                    binary,
                    workdir / f"node{index}",
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "2000",
                    "--cluster-port", str(free_port()),
                )
            )  # fmt: skip
        nodes = [f"127.0.0.1:{port}" for port in ports]
        out = _cli(ports[0], "--cluster", "create", *nodes, "--cluster-replicas", "0",
                   "--cluster-yes", timeout=30)  # fmt: skip
        if "All 16384 slots covered" not in out:
            raise Unavailable(f"redis-cli --cluster create failed: {out[-2000:]}")
        for port in ports:

            def ready(port: int = port) -> bool:
                return "cluster_state:ok" in _cli(port, "cluster", "info")

            _wait_until(f"cluster_state:ok on port {port}", ready)
        yield "redis+cluster://" + ",".join(nodes)


@contextlib.contextmanager
def redis_sentinel(workdir: Path) -> Iterator[str]:
    """A master, a replica and a Sentinel: ``redis+sentinel://127.0.0.1:PORT/satchel/0``.

    Failover is quick (down after 1 s), so tests can force one with ``SENTINEL FAILOVER``.
    """
    url = os.environ.get("SATCHEL_TEST_REDIS_SENTINEL_URL")
    if url:
        yield url
        return
    binary = which("redis-server")
    if binary is None:
        raise _unavailable(
            "Sentinel setup",
            f"SATCHEL_TEST_REDIS_SENTINEL_URL=redis+sentinel://HOST:PORT/{SENTINEL_SERVICE}/0",
            False,
        )
    with contextlib.ExitStack() as stack:
        master = _server(stack, binary, workdir / "master")
        replica = _server(stack, binary, workdir / "replica", "--replicaof", "127.0.0.1", str(master))
        _wait_until(
            "the replica syncing with the master",
            lambda: "master_link_status:up" in _cli(replica, "info", "replication"),
        )
        port = free_port()
        home = workdir / "sentinel"
        home.mkdir(parents=True, exist_ok=True)
        # Sentinel rewrites its configuration file, so it gets its own copy.
        conf = home / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {home}\n"
            f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {master} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n"
            f"sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
            f"sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
        )
        stack.enter_context(running([binary, str(conf), "--sentinel"], port=port, cwd=home))
        _wait_until(
            "the Sentinel discovering the replica",
            lambda: str(replica) in _cli(port, "sentinel", "replicas", SENTINEL_SERVICE),
        )
        yield f"redis+sentinel://127.0.0.1:{port}/{SENTINEL_SERVICE}/0"
