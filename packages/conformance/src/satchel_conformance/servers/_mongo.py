"""MongoDB finder. Filled in by the satchel-mongo work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ._common import Unavailable


@contextlib.contextmanager
def mongodb(workdir: Path) -> Iterator[str]:
    raise Unavailable("mongodb finder not written yet")
    yield ""
