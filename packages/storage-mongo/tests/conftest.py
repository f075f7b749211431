"""Fixtures for satchel-mongo's tests.

``satchel_mongodb_url`` comes from the conformance kit's server finder: it yields a URL
(``SATCHEL_TEST_MONGODB_URL``, a ``mongod`` on PATH, or a container) or skips every
test that needs a server, saying which of the three to provide.
``satchel_mongo_compatible_url`` starts a MongoDB wire-compatible stand-in from the dev
dependency group (not MongoDB; see test_mongo_server.py), or skips saying it is missing.
"""

from __future__ import annotations

import pytest

# Named here as well as in the kit's pytest plugin, so this package's tests find it on their own.
from satchel_conformance.servers.fixtures import (  # noqa: F401 - fixtures
    satchel_mongo_compatible_url,
    satchel_mongodb_url,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
