"""Commands written during one turn of the event loop leave together, at its end.

redis-py writes a command to its socket the moment it is sent (when it has no
``socket_timeout``, as satchel's clients have not: the storage bounds each operation
itself). Under concurrent requests that is one write system call per command, each
arriving at a server that has just gone back to sleep: it wakes once per command, and
every wake costs both processes a round through the kernel. On a two-core machine,
under 32 concurrent read-modify-writes over HTTP, that cost the server twice the CPU
per request and the application about 40 us of system time per request.

The connections of the clients satchel opens put their writes in the loop's outbox
instead, and the outbox sends them at the start of the loop's next turn (one
``call_soon`` per turn, not per command): the commands of every request that ran in
this turn reach the server back to back, and it answers them in one wake. A command
waits for at most the rest of the current turn, which is work the process would do
before it could read the reply anyway.

A write to a connection that was closed meanwhile (its command cancelled, its
operation past its deadline) is dropped: the command was never sent, and its caller
has already been told. A write that fails closes the connection, so its caller's read
fails as a lost connection would, and the storage's retry policy decides.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

__all__ = ["batched", "outbox_of"]


class _Outbox:
    """The writes queued on one event loop, sent at the start of its next turn."""

    __slots__ = ("__weakref__", "loop", "queued")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weakly: the outboxes are kept per loop in a weak mapping, and a value that
        # held its key would keep every loop that ever ran a storage alive
        self.loop = weakref.ref(loop)
        self.queued: list[tuple[Any, Any]] = []

    def put(self, transport: Any, data: Any) -> None:
        if not self.queued:
            loop = self.loop()
            assert loop is not None  # a write runs on its loop, so the loop is alive
            loop.call_soon(self.flush)
        self.queued.append((transport, data))

    def flush(self) -> None:
        queued, self.queued = self.queued, []
        for transport, data in queued:
            if transport.is_closing():
                continue
            try:
                transport.writelines(data)
            except Exception:
                transport.abort()


_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox] = weakref.WeakKeyDictionary()


def outbox_of(loop: asyncio.AbstractEventLoop) -> _Outbox:
    """The outbox of ``loop``, made on first use."""
    box = _outboxes.get(loop)
    if box is None:
        box = _outboxes[loop] = _Outbox(loop)
    return box


class _Batched:
    """Mixed into a redis-py asyncio connection class: its writes go to the outbox.

    redis-py sends every command through its stream writer's ``writelines``; after the
    connection is made, that one method of this connection's writer is replaced.
    Reading, draining and closing stay redis-py's.
    """

    async def _connect(self) -> None:
        await super()._connect()  # type: ignore[misc]
        writer = getattr(self, "_writer", None)
        if isinstance(writer, asyncio.StreamWriter):
            box, transport = outbox_of(asyncio.get_running_loop()), writer.transport

            def writelines(data: Any) -> None:
                box.put(transport, data)

            writer.writelines = writelines  # type: ignore[method-assign]


_classes: dict[type, type] = {}


def batched(connection_class: type) -> type:
    """``connection_class`` with its writes batched per turn of the event loop (made once
    per class, and named as it is)."""
    if issubclass(connection_class, _Batched):
        return connection_class
    made = _classes.get(connection_class)
    if made is None:
        made = _classes[connection_class] = type(
            connection_class.__name__, (_Batched, connection_class), {"__module__": __name__}
        )
    return made
