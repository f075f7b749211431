"""A MongoDB wire-compatible server for development: SecantusDB, installed from PyPI.

It is not MongoDB. It speaks MongoDB's wire protocol over a real socket, keeps its
data in a WiredTiger engine and presents itself as a one-node replica set, so a
storage's queries, updates, upserts, indexes and duplicate-key errors go through the
driver exactly as they would to ``mongod``. What it cannot stand for: ``mongod``'s own
error codes and messages in every case, the timing of its TTL monitor, elections and
failover, sharding. Tests that use it say so in their names.

It ships in the workspace's dev dependency group only (GPL-2.0; never a dependency of a
published package), where its wheels exist: Linux x86_64, Python 3.10 to 3.13. It is
started in a subprocess of the running interpreter on a free loopback port, with its
expiry sweep every second (the server's command line does not take that setting; its
Python API does), and stopped afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import Unavailable, free_port, running, wait_until

__all__ = ["mongo_compatible"]

_MODULE = "secantus"
_REPLICA_SET = "secantus"  # the name the server gives its one-node replica set
_HOW = (
    "install the dev dependency group (pip install 'SecantusDB==0.7.0b3'; Linux x86_64, Python 3.10 to 3.13)"
)
# Runs in the subprocess: serve until SIGTERM, then stop the server so its storage closes cleanly.
_SERVE = """\
import signal, sys, threading
from secantus import SecantusDBServer

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stopping = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
with SecantusDBServer(host=host, port=port, storage_path=path, ttl_sweep_seconds=1.0):
    print("serving", flush=True)
    while not stopping.wait(0.5):
        pass
"""


@contextlib.contextmanager
def mongo_compatible(workdir: Path) -> Iterator[str]:
    """Yield a ``mongodb://`` URL to a wire-compatible stand-in for MongoDB (not MongoDB).

    Raise `Unavailable` when the server's package is not importable here.
    """
    if importlib.util.find_spec(_MODULE) is None:
        raise Unavailable(
            f"the MongoDB wire-compatible test server is not importable (no module {_MODULE!r} "
            f"in {sys.executable}): {_HOW}"
        )
    port = free_port()
    storage = workdir / f"mongo-compatible-{port}"
    storage.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-c", _SERVE, "127.0.0.1", str(port), str(storage)]
    try:
        with running(argv, port=port, cwd=workdir, timeout=30.0, name="the MongoDB wire-compatible server"):
            host = f"127.0.0.1:{port}"
            _wait_for_ping(host, timeout=15.0)
            yield f"mongodb://{host}/?replicaSet={_REPLICA_SET}"
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def _wait_for_ping(host: str, *, timeout: float) -> None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, Any]] = MongoClient(
        host, directConnection=True, serverSelectionTimeoutMS=1_000
    )

    def answers() -> bool:
        try:
            return bool(client.admin.command("ping").get("ok"))
        except PyMongoError:
            return False

    try:
        wait_until(f"the MongoDB wire-compatible server on {host} answering a ping", answers, timeout=timeout)
    finally:
        client.close()
