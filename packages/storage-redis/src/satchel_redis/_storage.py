"""``RedisStorage`` and ``RedisClusterStorage``: sessions in Redis, one round trip each.

Key layout: ``satchel:[<namespace>:]{<id>}``. The braces are a hash tag, so every key
of one session maps to one cluster slot. Values are the session bytes as they are.

Each operation is one command (GET; SET with PX; PEXPIRE or PERSIST; DEL), or one Lua
script for ``write_if``. The retry policy is applied here rather than inside the
client, so a compare-and-set that is sent again after a lost reply is recognised
(see ``_WRITE_IF``), and the whole operation, retries included, is bounded by
``timeout``.

The owner index (`satchel.OwnerIndex`) keeps, per owner, a sorted set
``satchel:[<namespace>:]{<sha256 hex of owner>}:owned`` whose members are session IDs,
each scored by when its session expires (milliseconds on the server's clock, ``inf`` for
never). Every script that writes, lists or ends an owner's sessions first drops the
members whose score has passed, and gives the set the expiry of its longest-lived
member, so the set ends when its last session would have. The owner is hashed because it
may hold any character, braces included, and the key's hash tag must be ours. The key
ends in ``:owned``, never in ``}`` as a session key does, so no ID in any namespace
names it.

Standalone and Sentinel: each owner operation is one Lua script, atomic with the session
write it belongs to. ``list_owned`` and ``invalidate_owned`` read the members' session
keys from inside the script (keys not passed in KEYS, which only a cluster forbids), and
drop the members whose session is gone (``invalidate`` of one ID leaves its member).

Cluster: the session and the owner's set live in different slots, so no script spans
both and the guarantees come from ordering instead. ``write_owned`` links first (in the
owner's slot), then runs the session's compare-and-set: a session never exists without
its link. A failed compare-and-set removes a link it had just added, while the link
still holds the score it gave it. A link's score is its session's expiry plus the
operation's deadline and a second for clock skew between nodes, since it is written
before the session; and a write only ever raises it, since the write may fail and leave
a longer-lived session in place. ``list_owned`` and ``invalidate_owned`` read the set,
then the members' sessions (one pipeline, per node), so they are several round trips and
not atomic with writes that run meanwhile; a member whose session is gone is skipped, and
stays in the set until its score passes, since removing it could race a write that has
linked but not yet written.

Connections: a bounded pool (``max_connections``, default 50; per node on a cluster), and a
gate in front of it. redis-py's pools (and its cluster client's nodes) fail a command at
once with "Too many connections" when every connection is in use; its blocking pool waits,
but costs 15 to 30 us more per command. The gate lets at most ``max_connections``
operations through at a time, each holding at most one connection (per node) at a time,
so the pool never runs out under satchel's own traffic, and the rest wait their turn
(FIFO) within their deadline. Storages on one pool (one cluster client) share its gate.

Writes: the connections of a client the storage makes (standalone, Sentinel and
Cluster) send the commands written during one turn of the event loop together, at the
start of the next (see `_outbox`): the server wakes once for the commands of every
request that ran in that turn, not once per command. A client passed in is left as it is.

Closing: `aclose` disconnects the connections of a client the storage made; redis-py
connects them again on the next command, so the storage works after it (and on another
event loop). A client passed in is left as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import math
import sys
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import parse_qs

import anyio
from satchel import ConfigError, OwnedEntry, StorageCapabilities, StorageError, redact_url

from ._outbox import batched
from ._urls import OWN_OPTIONS, Options, parse_hosts, split_options
from ._wire import Wire

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
# is a retry of a call whose reply was lost. Returns 1 written, 0 conflict, -1 refused.
# A retry that finds its own value already in place reports success instead of a false
# conflict. An entry deleted in between stays deleted (deletion wins): a retried update
# finds no entry, so it conflicts; a retried insert that finds no entry cannot tell
# "never ran" from "ran, then deleted", so it refuses rather than bring the entry back.
_WRITE_IF = """
local current = redis.call('GET', KEYS[1])
local matches
if ARGV[1] == '1' then matches = (current == ARGV[2]) else matches = (current == false) end
if not matches then
  if ARGV[5] == '1' and current == ARGV[3] then return 1 end
  return 0
end
if ARGV[5] == '1' and ARGV[1] ~= '1' and ARGV[4] ~= '0' then return -1 end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
elseif ARGV[4] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
"""

# Shared by the owner-index scripts. Times are whole milliseconds on the server's clock,
# formatted by hand: Lua prints a number with 14 significant digits, and a score may be
# read back in exponent form. A member's score is never earlier than its session's
# expiry (the scripts take TIME after setting the expiry), so a member whose score has
# passed has no session, and "score < now" is exactly the members to drop.
_OWNER_LIB = """
local function ms(n) return string.format('%.0f', n) end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(owners, now)
  redis.call('ZREMRANGEBYSCORE', owners, '-inf', '(' .. ms(now))
end
local function number(score)
  if score == 'inf' then return math.huge end
  return tonumber(score)
end
-- the set expires when its longest-lived member does (a key lives through the ms of its
-- expiry, hence the +1); an empty set is already gone
local function settle(owners)
  local last = redis.call('ZRANGE', owners, -1, -1, 'WITHSCORES')
  if last[2] == nil then return end
  local top = number(last[2])
  if top == nil or top == math.huge then
    redis.call('PERSIST', owners)
  else
    redis.call('PEXPIREAT', owners, ms(top + 1))
  end
end
-- mode 'set': the session has just been written, the score is its expiry. 'touch': the
-- same, for a member already there only. 'raise' (Cluster, before the session is written):
-- the score only grows, as the write may fail and leave a longer-lived session in place.
-- Returns 1 when the member is new, and the score when this call wrote it.
local function link(owners, member, px, slack, mode)
  local now = clock()
  prune(owners, now)
  local added, written = 0, false
  if px == '0' then
    redis.call('ZREM', owners, member)
  else
    local score = 'inf'
    if px ~= '' then score = ms(now + tonumber(px) + tonumber(slack)) end
    local old = redis.call('ZSCORE', owners, member)
    local write
    if mode == 'set' then
      write = true
    elseif mode == 'touch' then
      write = old ~= false
    else
      write = (not old) or number(old) < number(score)
    end
    if write then
      redis.call('ZADD', owners, score, member)
      written = score
      if not old then added = 1 end
    end
  end
  settle(owners)
  return added, written
end
"""

# KEYS[1] session key, KEYS[2] the owner's set. ARGV [1] to [5] as _WRITE_IF's, [6] the
# session ID (the set's member). Returns as _WRITE_IF does. The compare-and-set is
# _WRITE_IF's (kept apart so the hot path's script stays as short as it is); when it
# writes, the member is added (or, for an expiry already run out, removed) in the same
# script. A resent call that finds its own value in place links again: the first attempt
# linked, and adding a member that is there only moves its score, a little later.
_WRITE_OWNED = (
    _OWNER_LIB
    + """
local current = redis.call('GET', KEYS[1])
local matches
if ARGV[1] == '1' then matches = (current == ARGV[2]) else matches = (current == false) end
if not matches then
  if not (ARGV[5] == '1' and current == ARGV[3]) then return 0 end
else
  if ARGV[5] == '1' and ARGV[1] ~= '1' and ARGV[4] ~= '0' then return -1 end
  if ARGV[4] == '' then
    redis.call('SET', KEYS[1], ARGV[3])
  elseif ARGV[4] == '0' then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  end
end
link(KEYS[2], ARGV[6], ARGV[4], '0', 'set')
return 1
"""
)

# KEYS[1] session key, KEYS[2] the owner's set. ARGV[1] expiry in ms ("" none, "0"
# already expired), ARGV[2] the session ID. An absent session stays absent and its member
# (if any) is left to its score. A present one gets its new expiry, and its member, if it
# has one, the same; a touch never links a session that was not linked.
_TOUCH_OWNED = (
    _OWNER_LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then
  redis.call('PERSIST', KEYS[1])
elseif ARGV[1] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
link(KEYS[2], ARGV[2], ARGV[1], '0', 'touch')
return 1
"""
)

# KEYS[1] the owner's set. ARGV[1] the namespace's key prefix. Returns, flat, the ID,
# the bytes and the PTTL of each live session. A member whose session is gone (ended by
# invalidate, which does not know its owner) is dropped here: inside one script nothing
# can write the session between the check and the removal.
_LIST_OWNED = (
    _OWNER_LIB
    + """
prune(KEYS[1], clock())
local found = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. '{' .. member .. '}'
  local value = redis.call('GET', key)
  if value then
    found[#found + 1] = member
    found[#found + 1] = value
    found[#found + 1] = redis.call('PTTL', key)
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
settle(KEYS[1])
return found
"""
)

# KEYS[1] the owner's set. ARGV[1] the namespace's key prefix, ARGV[2...] the IDs to
# keep. Deletes every other member's session and the member; returns how many sessions
# existed to delete. Kept members whose session is gone are dropped too.
_INVALIDATE_OWNED = (
    _OWNER_LIB
    + """
prune(KEYS[1], clock())
local keep = {}
for i = 2, #ARGV do keep[ARGV[i]] = true end
local gone = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. '{' .. member .. '}'
  if not keep[member] then
    gone = gone + redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], member)
  elseif redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', KEYS[1], member)
  end
end
settle(KEYS[1])
return gone
"""
)

# Cluster, in the owner's slot. KEYS[1] the owner's set. ARGV[1] expiry in ms ("" none),
# ARGV[2] the session ID, ARGV[3] ms added to the score (the link is written before the
# session, perhaps on another node's clock), ARGV[4] the mode: "raise" before a write,
# "touch" after a touch (see link). Returns [1 when the member is new, the score written
# or nil].
_LINK = (
    _OWNER_LIB
    + """
local added, written = link(KEYS[1], ARGV[2], ARGV[1], ARGV[3], ARGV[4])
return {added, written}
"""
)

# Cluster, in the owner's slot, after a failed compare-and-set. KEYS[1] the owner's set.
# ARGV[1] the session ID, ARGV[2] the score the failed call linked it with. The member
# goes only while it holds that score: a write of the same ID that linked since has
# raised it, and its session needs it.
_UNLINK = (
    _OWNER_LIB
    + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and number(score) == number(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""
)

# Cluster, in the owner's slot. KEYS[1] the owner's set. Drops the members whose score
# has passed; returns the rest.
_MEMBERS = (
    _OWNER_LIB
    + """
prune(KEYS[1], clock())
settle(KEYS[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)

# Cluster, in the session's slot. KEYS[1] session key. ARGV[1] expiry in ms ("" none,
# "0" already expired). Returns 1 when the session existed (PERSIST alone cannot say).
_TOUCH_SESSION = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then
  redis.call('PERSIST', KEYS[1])
elseif ARGV[1] == '0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"""

# How far apart the clocks of two cluster nodes may be, in ms: a link written on the
# owner's node must outlive the session written on another.
_CLOCK_SKEW_MS = 1000

# Connections per pool (per node on a cluster) when max_connections is not given. One
# asyncio worker seldom has more requests waiting on Redis at the same instant (a round
# trip is well under a millisecond), a burst beyond it waits its turn rather than fails,
# and a server's default limit of 10,000 clients leaves room for 200 such processes.
DEFAULT_MAX_CONNECTIONS = 50


class _Watch:
    """The deadlines of one storage's operations on one event loop, and one timer for all.

    What ``asyncio.timeout`` does for each operation, without arming and disarming a timer
    each time (on uvloop that cost 10 to 15 us an operation, a tenth of a round trip's
    client CPU): the timer is set for the soonest deadline of the operations running, and
    when it fires it cancels those past theirs and is set again for the next.
    """

    __slots__ = ("loop", "running", "timer", "timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.running: set[Any] = set()  # of _Deadline
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = math.inf

    def add(self, deadline: Any) -> None:
        self.running.add(deadline)
        if deadline.at < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer, self.timer_at = self.loop.call_at(deadline.at, self._check), deadline.at

    def _check(self) -> None:
        self.timer, self.timer_at = None, math.inf
        now = self.loop.time()
        soonest = math.inf
        # a millisecond early rather than late: uvloop's timers count whole milliseconds
        # and may fire up to one before a deadline that has a fraction of one
        due = now + 0.001
        for deadline in self.running:
            if deadline.at <= due:
                if not deadline.fired:
                    deadline.fired = True
                    deadline.task.cancel()
            elif deadline.at < soonest:
                soonest = deadline.at
        if soonest < math.inf:
            self.timer, self.timer_at = self.loop.call_at(soonest, self._check), soonest


if sys.version_info >= (3, 11):

    class _Deadline:
        """``with _Deadline(watch, seconds):`` raises `TimeoutError` when the block runs past
        ``seconds``, as ``asyncio.timeout`` does (the task is cancelled, and the cancellation
        turned into `TimeoutError` unless someone else cancelled the task too)."""

        __slots__ = ("at", "cancelling", "fired", "task", "watch")

        def __init__(self, watch: _Watch, seconds: float) -> None:
            task = asyncio.current_task()
            assert task is not None  # the storage runs in asyncio tasks
            self.task = task
            self.watch = watch
            self.at = watch.loop.time() + seconds
            self.fired = False

        def __enter__(self) -> None:
            self.cancelling = self.task.cancelling()
            self.watch.add(self)

        def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
            self.watch.running.discard(self)
            # as asyncio.timeout: once fired, the cancellation is taken back; it was the
            # deadline's alone when no other cancellation is pending
            if self.fired and self.task.uncancel() <= self.cancelling and kind is asyncio.CancelledError:
                raise TimeoutError from exc

    def _deadline(watch: _Watch, seconds: float) -> contextlib.AbstractContextManager[None]:
        return _Deadline(watch, seconds)

else:  # pragma: no cover - Python 3.10

    def _deadline(watch: _Watch, seconds: float) -> contextlib.AbstractContextManager[Any]:
        return anyio.fail_after(seconds)


def _millis(ttl: float) -> int:
    """``ttl`` seconds in whole milliseconds, rounded up so nothing expires early."""
    return 0 if ttl <= 0 else max(1, math.ceil(ttl * 1000))


def _fingerprint(id: str) -> str:
    """A short label for session ``id`` in messages: ``session sha256:1a2b3c4d``.

    For a server-side session the ID is the whole credential, and error messages end up
    in logs; these 8 hex digits of its SHA-256 tell sessions apart without giving it away.
    """
    digest = hashlib.sha256(id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"session sha256:{digest[:8]}"


def _owner_digest(owner: str) -> str:
    """The SHA-256 hex of ``owner``: any string names a key, whatever characters it holds."""
    return hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()


def _owner_fingerprint(owner: str) -> str:
    """``owner sha256:1a2b3c4d``: an owner is often an email address or a user name, which
    has no place in a log line."""
    return f"owner sha256:{_owner_digest(owner)[:8]}"


def _expiry_arg(ttl: float | None) -> str:
    """A script's expiry argument: ms, ``""`` for none, ``"0"`` when already run out."""
    return "" if ttl is None else str(_millis(ttl))


def _entry(id: str, data: bytes, pttl: int, now: float) -> OwnedEntry:
    """An `OwnedEntry` from a member, its session's bytes and PTTL (-1: no expiry), as
    of ``now`` on this machine's wall clock."""
    expires = None if pttl < 0 else now + pttl / 1000
    return OwnedEntry(id, bytes(data), expires)


def _waited_for_a_connection(timeout: BaseException) -> bool:
    """Whether the deadline ran out while the operation waited for a pooled connection.

    The cancellation the deadline sent unwound the stack, and its traceback names the
    frames it went through: a pool's ``get_connection`` waiting on an asyncio lock (the
    blocking pool's condition). Read on the failure path only: nothing on the hot path.
    """
    cancelled = timeout.__context__
    tb = cancelled.__traceback__ if cancelled is not None else None
    in_pool = False
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "get_connection":
            in_pool = True
        elif in_pool and code.co_filename == asyncio.locks.__file__:
            return True
        tb = tb.tb_next
    return False


def _pool_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a pool refusing a connection: a full non-blocking pool or
    cluster node ("Too many connections"), or a blocking pool whose own wait ran out."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    if type(exc).__name__ == "MaxConnectionsError" or str(exc) == "Too many connections":
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (
        isinstance(exc, RedisConnectionError)
        and tb is not None
        and tb.tb_frame.f_code.co_name == "get_connection"
    )


def _pool_of(client: Any) -> tuple[Any, int | None]:
    """The object that owns ``client``'s connections (a cluster client owns its nodes'),
    and how many connections it holds at most (per node on a cluster)."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        size = getattr(pool, "max_connections", None)
    else:
        pool, size = client, (getattr(client, "connection_kwargs", None) or {}).get("max_connections")
    return pool, size if isinstance(size, int) and size > 0 else None


# pool -> (the event loop its gate waits in, None until a first operation; the gate)
_GATES: weakref.WeakKeyDictionary[Any, tuple[object, asyncio.Semaphore]] = weakref.WeakKeyDictionary()


def _gate_of(client: Any, loop: object = None) -> asyncio.Semaphore | None:
    """The gate in front of ``client``'s pool on event loop ``loop``: as many places as
    the pool has connections.

    An operation holds at most one connection at a time (on a cluster, one per node:
    several only in a pipeline, which sends to each node once), so with no more
    operations through the gate than the pool has connections, it never runs out.
    Storages on one pool share the gate, and so do all operations on one event loop,
    before and after an `aclose` alike; a gate waits in one loop only, so another loop
    gets a new one (the first loop to ask takes one made before any loop ran, ``loop``
    None). ``None`` when the size cannot be read.
    """
    pool, size = _pool_of(client)
    if size is None:
        return None
    try:
        entry = _GATES.get(pool)
        taken = entry is not None and entry[0] is not None  # a loop waits in it
        if entry is None or (taken and loop is not None and entry[0] is not loop):
            entry = _GATES[pool] = (loop, asyncio.Semaphore(size))
        elif not taken and loop is not None:
            entry = _GATES[pool] = (loop, entry[1])
    except TypeError:  # a pool that cannot be weakly referenced: a gate of its own
        return asyncio.Semaphore(size)
    return entry[1]


def _batch_cluster(client: Any) -> None:
    """Batch the writes (see `_outbox`) of every node ``client`` has and will find.

    redis-py's cluster client takes no connection class: its nodes are made from its
    ``connection_kwargs``, the startup nodes already, the others as the cluster's slots
    are read. Both are set here, before any connection is made.
    """
    client.connection_kwargs["connection_class"] = batched(client.connection_kwargs["connection_class"])
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = batched(node.connection_class)


def _connected(client: Any) -> bool:
    """Whether any connection in ``client``'s pool (a cluster client's nodes') is open.

    Read when a storage is garbage-collected, from redis-py's pools as they are: no
    bookkeeping of satchel's own, which a connect that fails or a retry that reconnects
    after `aclose` would get wrong.
    """
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        held = [*getattr(pool, "_available_connections", ()), *getattr(pool, "_in_use_connections", ())]
    else:
        manager = getattr(client, "nodes_manager", None)
        nodes = [
            *(getattr(manager, "nodes_cache", None) or {}).values(),
            *(getattr(manager, "startup_nodes", None) or {}).values(),
        ]
        held = [c for node in nodes for c in getattr(node, "_connections", ())]
    return any(getattr(connection, "is_connected", False) for connection in held)


def _lost_insert(id: str) -> StorageError:
    return StorageError(
        f"Redis lost the reply to the insert of {_fingerprint(id)}, and whether it was "
        "stored is unknown: sending it again could bring back a session deleted "
        "since; start the session again"
    )


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

    try:
        from redis.backoff import ExponentialWithJitterBackoff as Backoff
    except ImportError:  # redis-py before 6: its exponential backoff with jitter then
        from redis.backoff import EqualJitterBackoff as Backoff  # type: ignore[assignment]

    # after a first failed attempt: up to three more, 20 ms apart and growing
    return Retry(Backoff(base=0.02, cap=0.5), retries=2)


def _no_retry() -> Retry:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), retries=0)


async def _ignore(error: Exception) -> None:
    pass


def _keywords(cls: type) -> set[str] | None:
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up the MRO as
    redis-py's classes pass them on; ``None`` when it takes any."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if all(p.kind is not p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None


def _refuse_unknown(given: Iterable[str], target: type) -> None:
    """A misspelt option fails here, at open, rather than as a TypeError at the first request."""
    accepted = _keywords(target)
    unknown = sorted(set(given) - accepted) if accepted is not None else []
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)}: not satchel's own ({', '.join(OWN_OPTIONS)}) "
            f"and not taken by redis-py's {target.__name__}; check the spelling"
        )


def _refuse_unknown_in_pool(given: Iterable[str], pool: Any) -> None:
    """Check the options of ``given`` that ``pool`` hands on to each new connection
    (not the ones it consumed itself, nor the ones it adds)."""
    _refuse_unknown(set(given) & pool.connection_kwargs.keys(), pool.connection_class)


def _client_kwargs(opts: Options, **fixed: Any) -> dict[str, Any]:
    """Keyword arguments for a client satchel opens: the caller's, then ``fixed``.

    Retries are satchel's own (see `_RedisBase._run`). A caller's
    ``decode_responses=True`` is kept so that `_RedisBase` refuses it.
    """
    return {
        "decode_responses": False,
        "max_connections": DEFAULT_MAX_CONNECTIONS,
        **opts.client_kwargs(),
        **fixed,
        "retry": _no_retry(),
    }


class _RedisBase:
    capabilities = _CAPABILITIES
    # whether the client can hand a command a connection another task is resetting
    _resets_under_commands = False

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
        from redis.exceptions import RedisClusterException, RedisError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if client.get_encoder().decode_responses:
            raise ConfigError(
                "the Redis client decodes responses (decode_responses=True), but sessions "
                "are bytes; give satchel a client made with decode_responses=False"
            )
        self._client = client
        self._prefix = _key_prefix(namespace)
        self._timeout = timeout
        self._retry = retry if retry is not None else _default_retry()
        self._owns_client = owns_client
        self._on_close = on_close
        # other clients this storage made whose connections it closes (a Sentinel's)
        self._watchers: tuple[Any, ...] = ()
        self._label = ""  # what a ResourceWarning names: the URL (redacted), set by from_url
        # RedisClusterException ("cannot be connected", no slots) is not a RedisError
        self._failures: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)
        # redis-py's Retry has no public getter for the errors it retries on
        self._retryable: tuple[type[BaseException], ...] = tuple(
            getattr(self._retry, "_supported_errors", ())
        ) or (RedisConnectionError, RedisTimeoutError)
        self._dropped = RedisConnectionError
        self._script: AsyncScript = client.register_script(_WRITE_IF)
        self._write_owned_script: AsyncScript = client.register_script(_WRITE_OWNED)
        self._touch_owned_script: AsyncScript = client.register_script(_TOUCH_OWNED)
        self._list_owned_script: AsyncScript = client.register_script(_LIST_OWNED)
        self._invalidate_owned_script: AsyncScript = client.register_script(_INVALIDATE_OWNED)
        # at most as many operations at a time as the pool has connections; the rest wait.
        # Taken again (see _gate_of) when an operation runs on another event loop.
        self._gate = _gate_of(client)
        self._gate_loop: object = None
        self._watch: _Watch  # the deadlines of the operations on _gate_loop, set with it
        # GET and the compare-and-set packed by satchel (see _wire); None: through redis-py
        self._wire: Wire | None = None
        self.namespace = namespace

    @property
    def client(self) -> Any:
        """The redis-py client this storage sends its commands through."""
        return self._client

    def key(self, id: str) -> str:
        """The Redis key that holds session ``id``."""
        return f"{self._prefix}{{{id}}}"

    def owner_key(self, owner: str) -> str:
        """The Redis key of ``owner``'s set of session IDs (a sorted set scored by expiry)."""
        return f"{self._prefix}{{{_owner_digest(owner)}}}:owned"

    async def _run(
        self,
        what: str,
        id: str,
        op: Callable[[bool], Awaitable[T]],
        label: Callable[[str], str] = _fingerprint,
    ) -> T:
        """``op(retrying)`` under the storage's deadline, retried by its policy.

        ``op`` may return the client's own awaitable: every coroutine layer between the
        event loop and the socket is paid again each time the command waits. ``label``
        names ``id`` in messages (a fingerprint, never ``id`` itself). Waiting at the gate
        (or in a blocking pool of a client passed in) counts against the deadline.
        """
        attempts = 1
        loop = asyncio.get_running_loop()
        if loop is not self._gate_loop:
            self._gate, self._gate_loop = _gate_of(self._client, loop), loop
            self._watch = _Watch(loop)
        gate = self._gate
        queued = gate is not None  # until the gate lets this operation through
        try:
            with _deadline(self._watch, self._timeout):
                if gate is not None:
                    await gate.acquire()
                    queued = False
                try:
                    try:
                        try:
                            return await op(False)
                        except AttributeError as exc:
                            self._raise_reset(exc)
                    except self._retryable:
                        # the first attempt runs bare (the common case costs nothing
                        # extra); after a failure, the retry policy takes over

                        async def again() -> T:
                            nonlocal attempts
                            attempts += 1
                            try:
                                return await op(True)
                            except AttributeError as exc:
                                self._raise_reset(exc)

                        return await self._retry.call_with_retry(again, _ignore)
                finally:
                    if gate is not None:
                        gate.release()
        except TimeoutError as exc:
            if queued or _waited_for_a_connection(exc):
                raise StorageError(
                    f"Redis could not run {what} of {label(id)} within {self._timeout}s: " + self._exhausted()
                ) from exc
            raise StorageError(
                f"Redis did not answer {what} of {label(id)} within {self._timeout}s "
                f"({attempts} attempt(s)); check that the server is up and reachable, "
                "or raise timeout="
            ) from exc
        except self._failures as exc:
            # redis-py's and the server's messages name hosts, slots and commands, not
            # keys (no command here is keyless, and the script's errors quote no key)
            reason = self._exhausted() if _pool_full(exc) else str(exc)
            raise StorageError(
                f"Redis failed {what} of {label(id)} after {attempts} attempt(s): {reason}"
            ) from exc

    def _exhausted(self) -> str:
        """The end of a message about a pool that had no connection to give."""
        size = self._pool_size()
        busy = f"all {size} connections" if size else "every connection"
        return (
            f"the connection pool was exhausted ({busy} busy, none freed in time); raise "
            f"max_connections= (in the URL: ?max_connections=N; default "
            f"{DEFAULT_MAX_CONNECTIONS}, per node on a cluster) or timeout=, or find what "
            "holds the connections"
        )

    def _pool_size(self) -> int | None:
        """How many connections the pool holds at most (per node on a cluster)."""
        return _pool_of(self._client)[1]

    def _raise_reset(self, exc: AttributeError) -> NoReturn:
        # redis-py's cluster client can hand a command a connection that another task is
        # resetting (its reader or writer is None): a dropped connection, so retried. Any
        # other AttributeError is a bug and goes up as it is.
        if not (self._resets_under_commands and exc.obj is None):
            raise exc
        raise self._dropped(f"connection reset under the command: {exc}") from exc

    async def read(self, id: str) -> bytes | None:
        """The stored bytes (one GET), or ``None`` when absent or expired."""
        key = self.key(id)
        wire = self._wire
        if wire is not None:
            packed_key = wire.encode(key)
            value = await self._run("read", id, lambda retrying: wire.get(packed_key))
        else:
            value = await self._run("read", id, lambda retrying: self._client.get(key))
        return None if value is None else bytes(value)

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        """Store ``data`` (one SET with PX; one DEL when ``ttl`` has already run out)."""
        key, value = self.key(id), bytes(data)

        def put(retrying: bool) -> Awaitable[Any]:
            if ttl is None:
                return self._client.set(key, value)  # type: ignore[no-any-return]
            if ttl <= 0:
                return self._client.delete(key)  # type: ignore[no-any-return]
            return self._client.set(key, value, px=_millis(ttl))  # type: ignore[no-any-return]

        await self._run("write", id, put)

    async def write_if(self, id: str, data: bytes, ttl: float | None, *, expected: bytes | None) -> bool:
        """Write only if the stored value is ``expected`` (``None``: only if absent).

        One Lua script, atomic on the server, safe to send again after a lost reply.
        An insert (``expected=None``) whose reply was lost and that finds no entry when
        sent again raises `StorageError`: it may have been written and deleted since.
        """
        key, value = self.key(id), bytes(data)
        px = "" if ttl is None else str(_millis(ttl))
        has_expected = "0" if expected is None else "1"
        old = b"" if expected is None else bytes(expected)

        wire = self._wire

        def compare_and_set(retrying: bool) -> Awaitable[Any]:
            if wire is not None:
                packed = [has_expected.encode(), old, value, px.encode(), b"1" if retrying else b"0"]
                return wire.script(self._script, [wire.encode(key)], packed)
            args: list[bytes | str] = [has_expected, old, value, px, "1" if retrying else "0"]
            return self._script(keys=[key], args=args)

        outcome = int(await self._run("write_if", id, compare_and_set))
        if outcome < 0:
            raise _lost_insert(id)
        return outcome == 1

    async def satchel_stored_expiry(self, id: str) -> float | None:
        """For the conformance kit: when the key of ``id`` expires, from its PTTL.

        Unix seconds on this machine's clock (the PTTL is relative, so the server's clock
        does not enter), ``None`` for a key without expiry; `LookupError` when there is no key.
        """
        key = self.key(id)
        left = await self._run("read the expiry of", id, lambda retrying: self._client.pttl(key))
        if left == -2:
            raise LookupError("no key for the id")
        return None if left == -1 else time.time() + left / 1000

    async def invalidate(self, id: str) -> None:
        """Delete ``id`` (one DEL); an absent id is not an error."""
        key = self.key(id)

        await self._run("invalidate", id, lambda retrying: self._client.delete(key))

    async def touch(self, id: str, ttl: float | None) -> None:
        """Extend the expiry of ``id`` (one PEXPIRE, or PERSIST for no expiry)."""
        key = self.key(id)

        def extend(retrying: bool) -> Awaitable[Any]:
            if ttl is None:
                return self._client.persist(key)  # type: ignore[no-any-return]
            if ttl <= 0:
                return self._client.delete(key)  # type: ignore[no-any-return]
            return self._client.pexpire(key, _millis(ttl))  # type: ignore[no-any-return]

        await self._run("touch", id, extend)

    # -- OwnerIndex: one script each on standalone and Sentinel; Cluster overrides ----

    async def write_owned(
        self, id: str, data: bytes, ttl: float | None, *, owner: str, expected: bytes | None
    ) -> bool:
        """`write_if`, linking ``id`` to ``owner`` in the same atomic step.

        One Lua script: the compare-and-set of the session, then the member's score in
        the owner's set (its expiry), the set's pruning and its expiry. Safe to send again
        after a lost reply, as `write_if` is. When it returns ``False`` nothing changed.
        """
        key, owners, value = self.key(id), self.owner_key(owner), bytes(data)
        has_expected = "0" if expected is None else "1"
        old = b"" if expected is None else bytes(expected)
        px = _expiry_arg(ttl)

        def compare_and_set(retrying: bool) -> Awaitable[Any]:
            args: list[bytes | str] = [has_expected, old, value, px, "1" if retrying else "0", id]
            return self._write_owned_script(keys=[key, owners], args=args)

        outcome = int(await self._run("write_owned", id, compare_and_set))
        if outcome < 0:
            raise _lost_insert(id)
        return outcome == 1

    async def touch_owned(self, id: str, ttl: float | None, *, owner: str) -> None:
        """`touch`, moving the member's score in ``owner``'s set with the session's expiry.

        One Lua script. An absent session stays absent; a session not linked to
        ``owner`` is touched and stays unlinked.
        """
        key, owners, px = self.key(id), self.owner_key(owner), _expiry_arg(ttl)

        await self._run(
            "touch_owned",
            id,
            lambda retrying: self._touch_owned_script(keys=[key, owners], args=[px, id]),
        )

    async def list_owned(self, owner: str) -> list[OwnedEntry]:
        """The live sessions linked to ``owner``, with their bytes and expiry.

        One Lua script, which also drops the members whose session has ended.
        """
        owners = self.owner_key(owner)
        found = await self._run(
            "list_owned",
            owner,
            lambda retrying: self._list_owned_script(keys=[owners], args=[self._prefix]),
            label=_owner_fingerprint,
        )
        now = time.time()
        return [
            _entry(bytes(found[i]).decode(), found[i + 1], int(found[i + 2]), now)
            for i in range(0, len(found), 3)
            if int(found[i + 2]) != -2
        ]

    async def invalidate_owned(self, owner: str, *, keep: Collection[str] = ()) -> int:
        """Delete every session linked to ``owner`` but those in ``keep``; how many existed.

        One Lua script: it reads the owner's set, deletes the sessions and their members.
        Safe to repeat (then it returns 0). Sent again after a lost reply, it counts only
        what was left to delete.
        """
        owners = self.owner_key(owner)
        args = [self._prefix, *keep]
        gone = await self._run(
            "invalidate_owned",
            owner,
            lambda retrying: self._invalidate_owned_script(keys=[owners], args=args),
            label=_owner_fingerprint,
        )
        return int(gone)

    async def aclose(self) -> None:
        """Close the connections this storage opened; a client you passed in stays open.

        Not final: the next call connects again. Calling it twice is not an error.
        """
        try:
            try:
                if self._owns_client:
                    await self._client.aclose()
            finally:
                if self._on_close is not None:
                    await self._on_close()
        except self._failures as exc:
            raise StorageError(f"closing {self!r} failed: {exc}") from exc

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r})"

    def __del__(self) -> None:
        # what the pools hold now: a call that failed to connect opened nothing, and one
        # that reconnected after aclose (a retry under way) did
        if getattr(self, "_owns_client", False) and any(
            map(_connected, (self._client, *getattr(self, "_watchers", ())))
        ):
            name = f"{type(self).__name__}({self._label!r}, namespace={self.namespace!r})"
            warnings.warn(
                f"{name} was garbage-collected with its connections open; await its aclose() "
                "when the app shuts down (SessionMiddleware does at lifespan shutdown)",
                ResourceWarning,
                source=self,
                stacklevel=2,
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
        ``socket_connect_timeout``, ``max_connections`` (pool size, default 50: a
        request that finds every connection busy waits for one, within ``timeout``);
        keyword only: ``retry`` (a ``redis.asyncio.retry.Retry``), ``client`` (your own
        client). Other keyword arguments go to the redis-py client.
        """
        stripped, opts = split_options(url, options)
        if opts.client is not None:
            return cls(opts.client, namespace=opts.namespace, timeout=opts.timeout, retry=opts.retry)
        if stripped.lower().startswith("redis+sentinel://"):
            storage = cls._sentinel(stripped, opts)
            storage._label = redact_url(url)
            return storage
        from redis.asyncio import ConnectionPool, Redis

        kwargs = _client_kwargs(opts)
        try:
            # bounded, and never asked for more connections than it has: the storage's gate
            # makes a burst wait its turn (redis-py's blocking pool would too, at 15 to 30 us
            # more per command)
            pool = ConnectionPool.from_url(stripped, **kwargs)
        except ValueError as exc:
            raise ConfigError(f"redis-py cannot use this URL or its options: {exc}") from exc
        _refuse_unknown_in_pool([*kwargs, *parse_qs(stripped.partition("?")[2])], pool)
        pool.connection_class = batched(pool.connection_class)
        storage = cls(
            Redis.from_pool(pool),
            namespace=opts.namespace,
            timeout=opts.timeout,
            retry=opts.retry,
            owns_client=True,
        )
        storage._label = redact_url(url)
        storage._wire = Wire(storage.client)  # a client of satchel's own making only
        return storage

    @classmethod
    def _sentinel(cls, url: str, opts: Options) -> RedisStorage:
        from redis.asyncio import Redis
        from redis.asyncio.sentinel import Sentinel

        parsed = parse_hosts(url, default_port=26379)
        if not parsed.path:
            raise ConfigError(
                "redis+sentinel:// URL needs the service name as its path, e.g. "
                "redis+sentinel://127.0.0.1:26379/mymaster/0"
            )
        # split_options has checked that the db, when given, is a number
        service, db = parsed.path[0], int(parsed.path[1]) if len(parsed.path) > 1 else 0
        kwargs = _client_kwargs(opts, db=db, **parsed.credentials())
        # the URL's credentials are the master's; the sentinels' go in sentinel_kwargs. A
        # connection to the master asks a sentinel for its address as it connects, one
        # sentinel at a time: as many connections per sentinel as the master's pool has
        # never run out, even when a burst opens them all at once.
        sentinel_kwargs = kwargs.pop("sentinel_kwargs", None) or {
            "max_connections": kwargs["max_connections"],
            **{k: v for k, v in kwargs.items() if k.startswith("socket_")},
        }
        _refuse_unknown(sentinel_kwargs, Redis)
        sentinel = Sentinel(parsed.hosts, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        client = sentinel.master_for(service, **kwargs)
        _refuse_unknown_in_pool(kwargs, client.connection_pool)
        client.connection_pool.connection_class = batched(client.connection_pool.connection_class)

        async def close_sentinels() -> None:
            # every sentinel connection is closed, even when one of them fails to close
            failure: BaseException | None = None
            for watcher in sentinel.sentinels:
                try:
                    await watcher.aclose()
                except Exception as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure

        storage = cls(
            client,
            namespace=opts.namespace,
            timeout=opts.timeout,
            retry=opts.retry,
            owns_client=True,
            on_close=close_sentinels,
        )
        storage._watchers = tuple(sentinel.sentinels)
        storage._wire = Wire(client)
        return storage


class RedisClusterStorage(_RedisBase):
    """Sessions in a Redis Cluster; every key of a session lives in one slot.

    Examples:
        >>> storage = RedisClusterStorage.from_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")

    Or give it a ``redis.asyncio.RedisCluster`` you made yourself; it is left open by
    `aclose`.
    """

    _resets_under_commands = True

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
        self._link_script: AsyncScript = client.register_script(_LINK)
        self._unlink_script: AsyncScript = client.register_script(_UNLINK)
        self._members_script: AsyncScript = client.register_script(_MEMBERS)
        self._touch_session_script: AsyncScript = client.register_script(_TOUCH_SESSION)
        # A link is written before its session, within the same deadline, and perhaps on
        # another node's clock: its score leads the session's expiry by both.
        self._slack = str(_millis(timeout) + _CLOCK_SKEW_MS)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisClusterStorage:
        """Open ``redis+cluster://host:port[,host:port...]``: any reachable nodes will do.

        Takes the same options as `RedisStorage.from_url`; ``max_connections`` (default
        50) is per node, and also how many operations run at once: the rest wait for
        their turn, within ``timeout``.
        """
        stripped, opts = split_options(url, options)
        if opts.client is not None:
            return cls(opts.client, namespace=opts.namespace, timeout=opts.timeout, retry=opts.retry)
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        parsed = parse_hosts(stripped, default_port=6379)
        nodes = [ClusterNode(host, port) for host, port in parsed.hosts]
        kwargs = _client_kwargs(opts, startup_nodes=nodes, **parsed.credentials())
        _refuse_unknown(kwargs, RedisCluster)
        client = RedisCluster(**kwargs)
        _batch_cluster(client)
        storage = cls(
            client,
            namespace=opts.namespace,
            timeout=opts.timeout,
            retry=opts.retry,
            owns_client=True,
        )
        storage._label = redact_url(url)
        return storage

    # -- OwnerIndex: the session and the owner's set are in different slots ----------

    async def write_owned(
        self, id: str, data: bytes, ttl: float | None, *, owner: str, expected: bytes | None
    ) -> bool:
        """`write_if`, with ``id`` linked to ``owner`` before the session is written.

        Two round trips: the link (in the owner's slot), then the compare-and-set (in
        the session's), so the session never exists without its link. When the
        compare-and-set fails, a link this call added is removed again, unless a write of
        the same ID has linked it since.
        """
        key, owners, value = self.key(id), self.owner_key(owner), bytes(data)
        has_expected = "0" if expected is None else "1"
        old = b"" if expected is None else bytes(expected)
        px = _expiry_arg(ttl)
        added = False  # whether this call made the member, rather than found it
        score: bytes | None = None  # the score this call last gave the member
        sent = False  # whether the compare-and-set went out: a retry of it says so

        async def link_then_write(retrying: bool) -> int:
            nonlocal added, score, sent
            if px != "0":  # an expiry already run out deletes: nothing to link
                new, written = await self._link_script(keys=[owners], args=[px, id, self._slack, "raise"])
                added = added or int(new) == 1
                score = score if written is None else bytes(written)
            resent, sent = sent, True
            args: list[bytes | str] = [has_expected, old, value, px, "1" if resent else "0"]
            return int(await self._script(keys=[key], args=args))

        # a StorageError goes up as it is: the session may have been written, so its link stays
        outcome = await self._run("write_owned", id, link_then_write)
        if outcome != 1 and added and score is not None:
            # best effort: a link left behind is harmless, its session does not exist
            mine = score
            with contextlib.suppress(StorageError):
                await self._run(
                    "write_owned",
                    id,
                    lambda retrying: self._unlink_script(keys=[owners], args=[id, mine]),
                )
        if outcome < 0:
            raise _lost_insert(id)
        return outcome == 1

    async def touch_owned(self, id: str, ttl: float | None, *, owner: str) -> None:
        """`touch`, then, when the session exists, its member's score in ``owner``'s set.

        Two round trips. The link's score leads the session's expiry by more than the
        moment between them, so the session does not outlive its link in between.
        """
        key, owners, px = self.key(id), self.owner_key(owner), _expiry_arg(ttl)

        async def touch_then_link(retrying: bool) -> None:
            existed = await self._touch_session_script(keys=[key], args=[px])
            if int(existed) == 1 and px != "0":
                await self._link_script(keys=[owners], args=[px, id, self._slack, "touch"])

        await self._run("touch_owned", id, touch_then_link)

    async def _members(self, what: str, owner: str) -> list[str]:
        owners = self.owner_key(owner)
        members = await self._run(
            what,
            owner,
            lambda retrying: self._members_script(keys=[owners], args=[]),
            label=_owner_fingerprint,
        )
        return [bytes(member).decode() for member in members]

    async def _pipeline(self, what: str, owner: str, add: Callable[[Any], None]) -> list[Any]:
        """One pipeline (one round trip per node, run side by side) of what ``add`` queues."""

        def send(retrying: bool) -> Awaitable[list[Any]]:
            # built afresh on each attempt: a pipeline is emptied by its execute()
            pipe = self._client.pipeline(transaction=False)
            add(pipe)
            return pipe.execute()  # type: ignore[no-any-return]

        return await self._run(what, owner, send, label=_owner_fingerprint)

    async def list_owned(self, owner: str) -> list[OwnedEntry]:
        """The live sessions linked to ``owner``, with their bytes and expiry.

        Two steps: the owner's set (pruned of expired members), then GET and PTTL of each
        member's session, pipelined per node. A member whose session is gone is skipped.
        """
        ids = await self._members("list_owned", owner)
        if not ids:
            return []

        def queue(pipe: Any) -> None:
            for id in ids:
                pipe.get(self.key(id))
                pipe.pttl(self.key(id))

        replies = await self._pipeline("list_owned", owner, queue)
        now = time.time()
        return [
            _entry(id, data, int(pttl), now)
            for id, data, pttl in zip(ids, replies[::2], replies[1::2], strict=True)
            if data is not None and int(pttl) != -2
        ]

    async def invalidate_owned(self, owner: str, *, keep: Collection[str] = ()) -> int:
        """Delete every session linked to ``owner`` but those in ``keep``; how many existed.

        Two steps: the owner's set, then one DEL per session, pipelined per node. Members
        stay in the set until their score passes (removing one could race a write that has
        linked but not yet written); their sessions are gone, so nothing reports them.
        """
        spared = set(keep)
        doomed = [id for id in await self._members("invalidate_owned", owner) if id not in spared]
        if not doomed:
            return 0

        def queue(pipe: Any) -> None:
            for id in doomed:
                pipe.delete(self.key(id))

        return sum(int(n) for n in await self._pipeline("invalidate_owned", owner, queue))
