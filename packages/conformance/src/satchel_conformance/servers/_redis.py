"""Redis finders (standalone, Cluster, Sentinel). Filled in by the satchel-redis work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ._common import Unavailable


@contextlib.contextmanager
def redis(workdir: Path) -> Iterator[str]:
    raise Unavailable("redis finder not written yet")
    yield ""


@contextlib.contextmanager
def redis_cluster(workdir: Path) -> Iterator[str]:
    raise Unavailable("redis cluster finder not written yet")
    yield ""


@contextlib.contextmanager
def redis_sentinel(workdir: Path) -> Iterator[str]:
    raise Unavailable("redis sentinel finder not written yet")
    yield ""
