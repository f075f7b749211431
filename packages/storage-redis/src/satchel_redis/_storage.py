"""``RedisStorage`` and ``RedisClusterStorage``: sessions in Redis, one round trip each.

Key layout: ``satchel:[<namespace>:]{<id>}``. The braces are a hash tag, so every key
of one session maps to one cluster slot. Values are the session bytes as they are.

Each operation is one command (GET; SET with PX; PEXPIRE or PERSIST; DEL), or one Lua
script for ``write_if``. The retry policy is applied here rather than inside the
client, so a compare-and-set that is sent again after a lost reply is recognised
(see ``_WRITE_IF``), and the whole operation, retries included, is bounded by
``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from satchel import ConfigError, StorageCapabilities, StorageError

from ._urls import Options, parse_hosts, split_options

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.commands.core import AsyncScript

__all__ = ["RedisStorage", "RedisClusterStorage"]

T = TypeVar("T")

_CAPABILITIES = StorageCapabilities(
    persistent=True,
    # Redis accepts bulk strings up to proto-max-bulk-len (512 MiB by default); a session
    # is a mistake long before that, so this promises what is sensible, not the ceiling.
    max_value_size=16 * 1024 * 1024,
    event_loops=frozenset({"asyncio"}),
)

# KEYS[1] session key. ARGV: [1] "1" when a value is expected, [2] the expected value,
# [3] the new value, [4] expiry in ms ("" none, "0" already expired), [5] "1" when this
# is a retry of a call whose reply was lost. A retry that finds its own value already
# in place reports success instead of a false conflict; an entry deleted in between
# stays deleted (deletion wins).
_WRITE_IF = """
local current = redis.call('GET', KEYS[1])
local matches
if ARGV[1] == '1' then matches = (current == ARGV[2]) else matches = (current == false) end
if not matches then
  if ARGV[5] == '1' and current == ARGV[3] then return 1 end
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
elseif ARGV[4] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
"""


if sys.version_info >= (3, 11):
    _deadline = asyncio.timeout
else:  # pragma: no cover - Python 3.10

    @contextlib.asynccontextmanager
    async def _deadline(seconds: float) -> AsyncIterator[None]:
        with anyio.fail_after(seconds):
            yield


def _millis(ttl: float) -> int:
    """``ttl`` seconds in whole milliseconds, rounded up so nothing expires early."""
    return 0 if ttl <= 0 else max(1, math.ceil(ttl * 1000))


def _key_prefix(namespace: str | None) -> str:
    if namespace is None:
        return "satchel:"
    if "{" in namespace or "}" in namespace:
        raise ConfigError(
            f"namespace {namespace!r} contains a brace, which would break the key's "
            "cluster hash tag; use letters, digits, ':', '-' or '_'"
        )
    return f"satchel:{namespace}:"


def _default_retry() -> Retry:
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    # after a first failed attempt: up to three more, 20 ms apart and growing
    return Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.5), retries=2)


def _no_retry() -> Retry:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), retries=0)


async def _ignore(error: Exception) -> None:
    pass


class _RedisBase:
    capabilities = _CAPABILITIES

    def __init__(
        self,
        client: Any,
        *,
        namespace: str | None,
        timeout: float,
        retry: Retry | None,
        owns_client: bool,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import RedisError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self._client = client
        self._prefix = _key_prefix(namespace)
        self._timeout = timeout
        self._retry = retry if retry is not None else _default_retry()
        self._owns_client = owns_client
        self._on_close = on_close
        self._closed = False
        self._failures: tuple[type[BaseException], ...] = (RedisError, OSError)
        # redis-py's Retry has no public getter for the errors it retries on
        self._retryable: tuple[type[BaseException], ...] = tuple(
            getattr(self._retry, "_supported_errors", ())
        ) or (RedisConnectionError, RedisTimeoutError)
        self._dropped = RedisConnectionError
        self._script: AsyncScript = client.register_script(_WRITE_IF)
        self.namespace = namespace

    @property
    def client(self) -> Any:
        """The redis-py client this storage sends its commands through."""
        return self._client

    def key(self, id: str) -> str:
        """The Redis key that holds session ``id``."""
        return f"{self._prefix}{{{id}}}"

    async def _run(self, what: str, id: str, op: Callable[[bool], Awaitable[T]]) -> T:
        if self._closed:
            raise StorageError(f"{self!r} is closed; open a new storage")
        attempts = 1

        async def again() -> T:
            nonlocal attempts
            attempts += 1
            return await self._attempt(op, retrying=True)

        try:
            async with _deadline(self._timeout):
                try:
                    return await self._attempt(op, retrying=False)
                except self._retryable:
                    # the first attempt runs bare (the common case costs nothing extra);
                    # after a failure, the retry policy takes over
                    return await self._retry.call_with_retry(again, _ignore)
        except TimeoutError as exc:
            raise StorageError(
                f"Redis did not answer {what} of session {id!r} within {self._timeout}s "
                f"({attempts} attempt(s)); check that the server is up and reachable, "
                "or raise timeout="
            ) from exc
        except self._failures as exc:
            raise StorageError(
                f"Redis failed {what} of session {id!r} after {attempts} attempt(s): {exc}"
            ) from exc

    async def _attempt(self, op: Callable[[bool], Awaitable[T]], *, retrying: bool) -> T:
        await self._prepare()
        try:
            return await op(retrying)
        except AttributeError as exc:
            # redis-py's cluster client can hand a command a connection that another
            # task is resetting (its writer is None): a dropped connection, so retried
            raise self._dropped(f"connection reset under the command: {exc}") from exc

    async def _prepare(self) -> None:
        """Anything the client needs once before its first command."""

    async def read(self, id: str) -> bytes | None:
        """The stored bytes (one GET), or ``None`` when absent or expired."""
        key = self.key(id)

        async def get(retrying: bool) -> bytes | None:
            value = await self._client.get(key)
            return None if value is None else bytes(value)

        return await self._run("read", id, get)

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        """Store ``data`` (one SET with PX; one DEL when ``ttl`` has already run out)."""
        key, value = self.key(id), bytes(data)

        async def put(retrying: bool) -> None:
            if ttl is None:
                await self._client.set(key, value)
            elif ttl <= 0:
                await self._client.delete(key)
            else:
                await self._client.set(key, value, px=_millis(ttl))

        await self._run("write", id, put)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        """Write only if the stored value is ``expected`` (``None``: only if absent).

        One Lua script, atomic on the server, safe to send again after a lost reply.
        """
        key, value = self.key(id), bytes(data)
        px = "" if ttl is None else str(_millis(ttl))
        has_expected = "0" if expected is None else "1"
        old = b"" if expected is None else bytes(expected)

        async def compare_and_set(retrying: bool) -> bool:
            args: list[bytes | str] = [has_expected, old, value, px, "1" if retrying else "0"]
            return bool(await self._script(keys=[key], args=args))

        return await self._run("write_if", id, compare_and_set)

    async def invalidate(self, id: str) -> None:
        """Delete ``id`` (one DEL); an absent id is not an error."""
        key = self.key(id)

        async def delete(retrying: bool) -> None:
            await self._client.delete(key)

        await self._run("invalidate", id, delete)

    async def touch(self, id: str, ttl: float | None) -> None:
        """Extend the expiry of ``id`` (one PEXPIRE, or PERSIST for no expiry)."""
        key = self.key(id)

        async def extend(retrying: bool) -> None:
            if ttl is None:
                await self._client.persist(key)
            elif ttl <= 0:
                await self._client.delete(key)
            else:
                await self._client.pexpire(key, _millis(ttl))

        await self._run("touch", id, extend)

    async def aclose(self) -> None:
        """Close the connections this storage opened; a client you passed in stays open."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()
        if self._on_close is not None:
            await self._on_close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r})"


def _refuse_query(scheme: str, query: dict[str, str]) -> None:
    if query:
        names = ", ".join(sorted(query))
        raise ConfigError(
            f"{scheme}:// URLs take only namespace, timeout, socket_timeout, "
            f"socket_connect_timeout and max_connections in the query; pass {names} "
            "as keyword arguments instead"
        )


class RedisStorage(_RedisBase):
    """Sessions in a standalone Redis (or Valkey) server, or a Sentinel-managed master.

    Examples:
        >>> storage = RedisStorage.from_url("redis://127.0.0.1:6379/0?namespace=shop")

    Or give it a ``redis.asyncio.Redis`` client you made yourself; it is left open by
    `aclose`. Values are stored as they are under ``satchel:[namespace:]{id}``.
    """

    def __init__(
        self,
        client: Redis,
        *,
        namespace: str | None = None,
        timeout: float = 5.0,
        retry: Retry | None = None,
        owns_client: bool = False,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(
            client,
            namespace=namespace,
            timeout=timeout,
            retry=retry,
            owns_client=owns_client,
            on_close=on_close,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStorage:
        """Open ``redis://``, ``rediss://``, ``unix://`` or ``redis+sentinel://`` URLs.

        Options (keyword or query): ``namespace``, ``timeout`` (seconds any operation
        may take, retries included; default 5), ``socket_timeout``,
        ``socket_connect_timeout``, ``max_connections`` (pool size); keyword only:
        ``retry`` (a ``redis.asyncio.retry.Retry``), ``client`` (your own client).
        Other keyword arguments go to the redis-py client.
        """
        stripped, opts = split_options(url, options)
        if opts.client is not None:
            return cls(opts.client, namespace=opts.namespace, timeout=opts.timeout, retry=opts.retry)
        if stripped.lower().startswith("redis+sentinel://"):
            return cls._sentinel(stripped, opts)
        from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis

        kwargs = {"retry": _no_retry(), "decode_responses": False, **opts.client_kwargs()}
        if opts.max_connections is None:
            pool = ConnectionPool.from_url(stripped, **kwargs)
        else:
            # a bounded pool waits for a free connection (within the timeout) instead of
            # failing with "Too many connections" under a burst of requests
            pool = BlockingConnectionPool.from_url(stripped, timeout=opts.timeout, **kwargs)
        return cls(
            Redis.from_pool(pool),
            namespace=opts.namespace,
            timeout=opts.timeout,
            retry=opts.retry,
            owns_client=True,
        )

    @classmethod
    def _sentinel(cls, url: str, opts: Options) -> RedisStorage:
        from redis.asyncio.sentinel import Sentinel

        parsed = parse_hosts(url, default_port=26379)
        _refuse_query("redis+sentinel", parsed.query)
        if not parsed.path:
            raise ConfigError(
                "redis+sentinel:// URL needs the service name as its path, e.g. "
                "redis+sentinel://127.0.0.1:26379/mymaster/0"
            )
        service, db = parsed.path[0], parsed.path[1] if len(parsed.path) > 1 else "0"
        kwargs = opts.client_kwargs()
        sentinel_kwargs = kwargs.pop("sentinel_kwargs", None) or {
            k: v for k, v in kwargs.items() if k.startswith("socket_")
        }
        sentinel = Sentinel(parsed.hosts, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        kwargs.update(
            db=int(db),
            username=parsed.username,
            password=parsed.password,
            retry=_no_retry(),
            decode_responses=False,
        )
        client = sentinel.master_for(service, **kwargs)

        async def close_sentinels() -> None:
            for watcher in sentinel.sentinels:
                await watcher.aclose()

        return cls(
            client,
            namespace=opts.namespace,
            timeout=opts.timeout,
            retry=opts.retry,
            owns_client=True,
            on_close=close_sentinels,
        )


class RedisClusterStorage(_RedisBase):
    """Sessions in a Redis Cluster; every key of a session lives in one slot.

    Examples:
        >>> storage = RedisClusterStorage.from_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")

    Or give it a ``redis.asyncio.RedisCluster`` you made yourself; it is left open by
    `aclose`.
    """

    def __init__(
        self,
        client: RedisCluster,
        *,
        namespace: str | None = None,
        timeout: float = 5.0,
        retry: Retry | None = None,
        owns_client: bool = False,
    ) -> None:
        super().__init__(client, namespace=namespace, timeout=timeout, retry=retry, owns_client=owns_client)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisClusterStorage:
        """Open ``redis+cluster://host:port[,host:port...]``: any reachable nodes will do.

        Takes the same options as `RedisStorage.from_url`; ``max_connections``
        is per node.
        """
        stripped, opts = split_options(url, options)
        if opts.client is not None:
            return cls(opts.client, namespace=opts.namespace, timeout=opts.timeout, retry=opts.retry)
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        parsed = parse_hosts(stripped, default_port=6379)
        _refuse_query("redis+cluster", parsed.query)
        kwargs = opts.client_kwargs()
        kwargs.update(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.hosts],
            username=parsed.username,
            password=parsed.password,
            retry=_no_retry(),
            decode_responses=False,
        )
        client = RedisCluster(**kwargs)
        return cls(
            client,
            namespace=opts.namespace,
            timeout=opts.timeout,
            retry=opts.retry,
            owns_client=True,
        )
