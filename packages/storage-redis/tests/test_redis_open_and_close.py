"""What a Redis storage refuses when it is opened, and a close that always finishes.

A URL or an option that cannot work (a malformed URL, a database that is not a number or
that a Cluster does not have, a NaN timeout, a misspelt option, a client that decodes
replies to text) is a ConfigError at open, or at worst a StorageError at the first call,
never a wrong database or a TypeError; a close that fails is a StorageError and still
closes the rest.
"""

from __future__ import annotations

import pytest
import redis.asyncio as redis_asyncio
import satchel
from satchel_redis import RedisClusterStorage, RedisStorage


@pytest.fixture
def url(satchel_redis_url: str) -> str:
    return satchel_redis_url


@pytest.mark.parametrize(
    "bad",
    [
        "redis://127.0.0.1:notaport/0",
        "redis://[::1:6379/0",
        "redis+sentinel://127.0.0.1:26379/mymaster/notadb",
    ],
)
def test_malformed_url_is_a_config_error(bad: str) -> None:
    """A URL with a port that is not a number, an unclosed IPv6 bracket, or a Sentinel database
    that is not a number is a ConfigError at open."""
    with pytest.raises(satchel.ConfigError):
        RedisStorage.from_url(bad)


def test_a_db_that_is_not_a_number_is_refused(url: str) -> None:
    """A database that is not a number is refused: redis-py would fall back to database 0 for it,
    and sessions would land in another database."""
    # redis-py silently falls back to db 0 for /abc: sessions land in another database
    with pytest.raises(satchel.ConfigError):
        RedisStorage.from_url(url.rsplit("/", 1)[0] + "/sessions")


def test_a_db_number_on_a_cluster_url_is_refused() -> None:
    """A database number on a Cluster URL is refused: a Cluster has only database 0, so /5 would be
    dropped without a word."""
    # Cluster has only db 0: /5 is silently dropped and data shares db 0 with everything
    with pytest.raises(satchel.ConfigError):
        RedisClusterStorage.from_url("redis+cluster://127.0.0.1:7000/5")


def test_nan_timeout_is_refused() -> None:
    """timeout=nan is refused: NaN passes a "> 0" check and would disable the deadline."""
    # NaN passes the "> 0" check (NaN <= 0 is False) and disables the deadline
    with pytest.raises(satchel.ConfigError):
        RedisStorage.from_url("redis://127.0.0.1:6379/0?timeout=nan")


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["query", "keyword"])
async def test_a_misspelt_option_is_a_config_error_at_open(url: str, how: str) -> None:
    """A misspelt option, in the query or as a keyword, is refused at open, or at worst fails the
    first call as a StorageError (not a TypeError from the driver)."""
    try:
        if how == "query":
            store = RedisStorage.from_url(url + "?namspace=shop")
        else:
            store = RedisStorage.from_url(url, max_conections=4)
    except satchel.ConfigError:
        return
    try:
        # not refused at open: the first request must at least fail as a StorageError
        # (it failed with TypeError: AbstractConnection.__init__() got an unexpected keyword)
        with pytest.raises(satchel.StorageError):
            await store.read("x")
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("url", "option"),
    [
        ("redis+sentinel://127.0.0.1:26379/mymaster/0", {"max_conections": 4}),
        ("redis+sentinel://127.0.0.1:26379/mymaster/0", {"sentinel_kwargs": {"pasword": "x"}}),
        ("redis+cluster://127.0.0.1:7000", {"max_conections": 4}),
    ],
)
def test_a_misspelt_option_is_named_at_open_on_every_deployment(url: str, option: dict[str, object]) -> None:
    """On Sentinel and Cluster URLs too a misspelt option is a ConfigError at open that names it;
    nothing is contacted, so no server is needed."""
    # nothing is contacted at open, so no server is needed to see the refusal
    opener = RedisClusterStorage if url.startswith("redis+cluster") else RedisStorage
    with pytest.raises(satchel.ConfigError, match=r"max_conections|pasword"):
        opener.from_url(url, **option)


@pytest.mark.anyio
async def test_a_client_that_decodes_responses_is_refused_or_fails_as_storage_error(url: str) -> None:
    """A client made with decode_responses=True cannot hold session bytes: it is refused, or at
    worst a read fails as a StorageError (not a UnicodeDecodeError)."""
    client = redis_asyncio.Redis.from_url(url, decode_responses=True)
    try:
        try:
            store = RedisStorage(client, namespace="decode")
        except satchel.ConfigError:
            return
        await store.write("x", b"\xff\x00binary", 60)
        with pytest.raises(satchel.StorageError):
            await store.read("x")  # UnicodeDecodeError escapes instead
        await store.aclose()
    finally:
        await client.aclose()


class _FailsToClose(redis_asyncio.Redis):
    """A real client whose close reports a broken socket after closing."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        raise OSError("connection reset while closing")


@pytest.mark.anyio
async def test_a_failed_close_is_a_storage_error_and_still_closes_the_rest(url: str) -> None:
    """A client whose close fails makes aclose() raise StorageError after closing the rest (the
    Sentinel connections, by on_close): a close always finishes."""
    closed_rest = []

    async def on_close() -> None:
        closed_rest.append(True)

    client = _FailsToClose.from_url(url)
    store = RedisStorage(client, owns_client=True, on_close=on_close)
    with pytest.raises(satchel.StorageError):
        await store.aclose()
    # the sentinels (on_close) are closed even though the client's close failed
    assert closed_rest == [True]
