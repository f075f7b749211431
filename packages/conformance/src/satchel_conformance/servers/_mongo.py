"""MongoDB finder: ``SATCHEL_TEST_MONGODB_URL``, else ``mongod`` on PATH, else a container.

A ``mongod`` found on PATH is started as a single-node replica set on a free loopback
port (so retryable writes and transactions behave as in production), initiated, and
stopped afterwards. PyMongo (needed to initiate the replica set) and testcontainers are
imported only on the branch that uses them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import Unavailable, docker_answers, running, which

__all__ = ["mongodb"]

ENV = "SATCHEL_TEST_MONGODB_URL"
_REPLICA_SET = "satchel"
_IMAGE = "mongo:7.0"
_HOW = (
    f"set {ENV}=mongodb://host:port/ (a server or cluster you can write to), put a "
    "`mongod` binary on PATH (it is started as a single-node replica set), or run a "
    "Docker engine with satchel-conformance[containers] installed"
)


@contextlib.contextmanager
def mongodb(workdir: Path) -> Iterator[str]:
    """Yield a ``mongodb://`` URL, or raise `Unavailable` naming the three ways."""
    url = os.environ.get(ENV)
    if url:
        yield url
        return
    mongod = which("mongod")
    if mongod is not None:
        with _replica_set(mongod, workdir) as url:
            yield url
        return
    if docker_answers():
        with _container() as url:
            yield url
        return
    raise Unavailable(f"no MongoDB for tests: {_HOW}")


@contextlib.contextmanager
def _replica_set(mongod: str, workdir: Path) -> Iterator[str]:
    try:
        from pymongo import MongoClient
    except ImportError as exc:
        raise Unavailable(f"{mongod} is on PATH but pymongo is not installed: {_HOW}") from exc
    from ._common import free_port

    port = free_port()
    dbpath = workdir / f"mongod-{port}"
    dbpath.mkdir(parents=True, exist_ok=True)
    argv = [
        mongod,
        "--replSet", _REPLICA_SET,
        "--bind_ip", "127.0.0.1",
        "--port", str(port),
        "--dbpath", str(dbpath),
        "--nounixsocket",
        "--oplogSize", "64",
        "--wiredTigerCacheSizeGB", "0.25",
        "--setParameter", "diagnosticDataCollectionEnabled=false",
    ]  # fmt: skip
    with running(argv, port=port, cwd=workdir, timeout=60.0):
        host = f"127.0.0.1:{port}"
        direct: MongoClient[dict[str, Any]] = MongoClient(
            host, directConnection=True, serverSelectionTimeoutMS=10_000
        )
        try:
            direct.admin.command(
                "replSetInitiate", {"_id": _REPLICA_SET, "members": [{"_id": 0, "host": host}]}
            )
            _wait_for_primary(direct, timeout=30.0)
        except Exception as exc:
            raise Unavailable(f"{mongod} started but its replica set did not come up: {exc}") from exc
        finally:
            direct.close()
        yield f"mongodb://{host}/?replicaSet={_REPLICA_SET}"


def _wait_for_primary(client: Any, *, timeout: float) -> None:
    from pymongo.errors import OperationFailure

    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = client.admin.command("hello")
        except OperationFailure:  # servers before 4.4.2 only know the legacy name
            reply = client.admin.command("isMaster")
        if reply.get("isWritablePrimary") or reply.get("ismaster"):
            return
        if time.monotonic() > deadline:
            raise Unavailable(f"the replica set elected no primary within {timeout}s: {reply}")
        time.sleep(0.1)


@contextlib.contextmanager
def _container() -> Iterator[str]:
    try:
        from testcontainers.community.mongodb import MongoDbContainer
    except ImportError:
        try:
            # testcontainers releases before the ``community`` package
            from testcontainers.mongodb import MongoDbContainer
        except ImportError as exc:
            raise Unavailable(f"a Docker engine answers but testcontainers is not installed: {_HOW}") from exc
    container = MongoDbContainer(_IMAGE)
    try:
        container.start()
    except Exception as exc:
        raise Unavailable(f"Docker answered but {_IMAGE} did not start ({exc}): {_HOW}") from exc
    try:
        # No database in the path: the container's root user authenticates against admin.
        yield container.get_connection_url()
    finally:
        container.stop()
