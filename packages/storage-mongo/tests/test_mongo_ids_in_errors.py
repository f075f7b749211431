"""Session IDs never reach an error message, nor the chained cause a log prints.

A server's error reply can quote the document's ``_id`` (a duplicate key names it, a
failed validation reports ``failingDocumentId``); for a server-side session the ID is
the whole credential. The refusals here are real: a collection whose validator rejects
every session document, on a MongoDB (or the wire-compatible stand-in, where no MongoDB
is available); the outage is a port nothing listens on.
"""

from __future__ import annotations

import secrets
import traceback
from collections.abc import AsyncIterator

import anyio
import pytest
import satchel
from pymongo import AsyncMongoClient
from pymongo.errors import ServerSelectionTimeoutError, WriteError
from satchel_conformance.servers import free_port
from satchel_mongo import MongoStorage

pytestmark = pytest.mark.anyio

HANG = 10
VALIDATION_FAILED = 121  # DocumentValidationFailure


def formatted(exc: BaseException) -> str:
    """What a log line with ``exc_info`` prints: messages and tracebacks of the whole chain."""
    return "".join(traceback.format_exception(exc))


@pytest.fixture
def id() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture(params=[None, "shop"], ids=["no-namespace", "namespace"])
def namespace(request: pytest.FixtureRequest) -> str | None:
    return request.param  # type: ignore[no-any-return]


async def test_no_server_outage_does_not_name_the_id(id: str, namespace: str | None) -> None:
    store = MongoStorage.from_url(
        f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=200", namespace=namespace
    )
    try:
        for call in (
            store.read(id),
            store.write(id, b"x", 60),
            store.write_if(id, b"x", 60, expected=b"old"),
            store.touch(id, 60),
            store.invalidate(id),
            store.write_owned(id, b"x", 60, owner="ada", expected=None),
            store.touch_owned(id, 60, owner="ada"),
            store.invalidate_owned("ada", keep=[id]),
        ):
            with anyio.fail_after(HANG), pytest.raises(satchel.StorageError) as caught:
                await call
            assert isinstance(caught.value.__cause__, ServerSelectionTimeoutError)
            assert id not in formatted(caught.value)
    finally:
        await store.aclose()


@pytest.fixture(params=["satchel_mongodb_url", "satchel_mongo_compatible_url"])
def server_url(request: pytest.FixtureRequest) -> str:
    """A MongoDB, then the wire-compatible stand-in; each skips when it is not available."""
    return str(request.getfixturevalue(request.param))


@pytest.fixture
async def refusing(server_url: str, namespace: str | None) -> AsyncIterator[MongoStorage]:
    """A storage whose collection's validator refuses every session document."""
    database = f"ids_{secrets.token_hex(4)}"
    admin: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(server_url)
    try:
        await admin[database].create_collection(
            "sessions", validator={"$jsonSchema": {"required": ["never_written"]}}
        )
        store = MongoStorage.from_url(server_url, database=database, namespace=namespace)
        try:
            yield store
        finally:
            await store.aclose()
    finally:
        await admin.drop_database(database)
        await admin.close()


async def test_a_refused_write_shows_the_code_not_the_id(refusing: MongoStorage, id: str) -> None:
    for call in (
        refusing.write(id, b"x", 60),
        refusing.write_if(id, b"x", 60, expected=None),
        refusing.write_owned(id, b"x", 60, owner="ada", expected=None),
    ):
        with anyio.fail_after(HANG), pytest.raises(satchel.StorageError) as caught:
            await call
        assert id not in formatted(caught.value)
        message = str(caught.value)
        assert f"code {VALIDATION_FAILED}" in message
        assert "left out" in message
        cause = caught.value.__cause__
        # still the driver's error type and code, for code that looks at the cause ...
        assert isinstance(cause, WriteError)
        assert cause.code == VALIDATION_FAILED
        assert cause.__traceback__ is not None
        # ... without the server's reply, which names the document's _id
        assert cause.details is None
