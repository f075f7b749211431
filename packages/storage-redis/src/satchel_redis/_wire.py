"""The two commands of every request, sent without redis-py's per-command bookkeeping.

A read is one GET; a write after a read is one EVALSHA of the compare-and-set script.
On the clients satchel opens for standalone and Sentinel URLs, these two are packed
here (the Redis protocol for a few byte strings is a handful of concatenations) and sent
on a connection of the client's pool: taken, written, its reply read, given back, as
redis-py's ``execute_command`` does. What that skips is bookkeeping satchel does not
use: argument encoding and splitting, a retry wrapper (satchel's own policy retries,
see ``_RedisBase._run``), per-command metrics hooks. Measured on uvloop, a GET costs
about 40 us less CPU this way (``bench/README.md``), two per read-modify-write.

Everything about the connection stays redis-py's: connecting, authenticating, the
handshake, health checks, reading and parsing replies, error replies raised as
redis-py's exceptions, and dropping a connection whose command failed or was
cancelled, so that no reply is left unread on a connection given back. Every other
command, a Cluster, and a client passed in go through redis-py as they did. redis-py's
own metrics hooks do not see these two commands on the clients satchel opens.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["Wire", "pack", "taker"]


def pack(*args: bytes) -> bytes:
    """One command in the Redis protocol: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def taker(pool: Any) -> Callable[[], Awaitable[Any]]:
    """``pool.get_connection`` as a call without arguments, on every redis-py version:
    redis-py 5 asks for a command name (unused by its plain pools); later versions warn
    when given one."""
    first = inspect.signature(pool.get_connection).parameters.get("command_name")
    needs_name = first is not None and first.default is inspect.Parameter.empty
    take: Callable[[], Awaitable[Any]] = (
        functools.partial(pool.get_connection, "GET") if needs_name else pool.get_connection
    )
    return take


class Wire:
    """Packed commands on connections of ``client``'s pool (a ``redis.asyncio.Redis``)."""

    __slots__ = ("client", "encoding", "errors", "no_script", "pool", "take")

    take: Callable[[], Awaitable[Any]]  # a connection of the pool, connected

    def __init__(self, client: Redis) -> None:
        from redis.exceptions import NoScriptError

        self.client = client
        self.no_script = NoScriptError
        self.pool = pool = client.connection_pool
        # keys are encoded as the client encodes them in every other command (its
        # ``encoding`` and ``encoding_errors`` options), so both name the same key
        encoder = client.get_encoder()  # type: ignore[no-untyped-call]
        self.encoding: str = encoder.encoding
        self.errors: str = encoder.encoding_errors
        self.take = taker(pool)

    def encode(self, key: str) -> bytes:
        """``key`` as the client's other commands send it."""
        return key.encode(self.encoding, self.errors)

    async def send(self, packed: bytes) -> Any:
        """Send ``packed`` and return its reply (an error reply raises)."""
        pool = self.pool
        connection = await self.take()
        try:
            await connection.send_packed_command(packed)
            return await connection.read_response()
        finally:
            await pool.release(connection)

    async def get(self, key: bytes) -> Any:
        return await self.send(pack(b"GET", key))

    async def script(self, script: AsyncScript, keys: list[bytes], args: list[bytes]) -> Any:
        """EVALSHA of ``script``; loaded first if the server does not have it (a restart,
        a failover, ``SCRIPT FLUSH``), as redis-py's scripts do."""
        tail = (b"%d" % len(keys), *keys, *args)
        try:
            return await self.send(pack(b"EVALSHA", script.sha.encode(), *tail))
        except self.no_script:
            script.sha = await self.client.script_load(script.script)
            return await self.send(pack(b"EVALSHA", script.sha.encode(), *tail))
