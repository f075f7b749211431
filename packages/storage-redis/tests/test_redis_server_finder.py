"""The server finders' shared start-up helper, as the Redis finders use it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from satchel_conformance.servers import Unavailable, free_port
from satchel_conformance.servers._common import running, which


def test_a_server_that_exits_at_start_is_reported_at_once(tmp_path: Path) -> None:
    binary = which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server on PATH")
    port = free_port()
    started = time.monotonic()
    argv = [binary, "--port", str(port), "--no-such-option", "x"]
    with pytest.raises(Unavailable, match="no-such-option"), running(argv, port=port, cwd=tmp_path):
        pass
    # the process dies within milliseconds (the message carries its log); waiting out
    # the 15 s port timeout hid that
    assert time.monotonic() - started < 5
