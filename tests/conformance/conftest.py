from __future__ import annotations

from pathlib import Path

import pytest

# the built-in storages a URL run reaches: SQLite on a file, and the servers the tests start
_SERVERS = {
    "redis": "satchel_redis_url",
    "redis-cluster": "satchel_redis_cluster_url",
    "mongo-compatible": "satchel_mongo_compatible_url",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "plugin_from_docs: builds the docs' example plugin in a throwaway venv (about 30 s)",
    )


@pytest.fixture(params=["sqlite", *_SERVERS])
def builtin_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of each built-in storage, as a user passes it to ``satchel conformance``."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kit.db'}"
    return str(request.getfixturevalue(_SERVERS[request.param]))
