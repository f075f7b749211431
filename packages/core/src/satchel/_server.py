"""The server-side path: only an ID travels; the data lives in storage.

Deletion wins. On a storage with compare-and-set, every write that follows a read is
conditional on what was read, so nothing a request started before a session was ended
(cleared, regenerated, revoked) can bring it back:

- an update is ``write_if(expected=<the record read>)``; when it fails, the record is
  read again, and if the session is gone the request ends as if it had been cleared; if
  another request rewrote it, the update is retried against that record (last writer
  wins, still conditionally), a few times at most;
- a regenerate writes the new session first, then a *successor link* from the old key to
  the new one, then turns the old record into a tombstone, conditionally; if the old
  session was ended meanwhile, the new one is removed again and nothing is issued;
- an end (clear, or a revoke of one session) deletes the record unconditionally, so no
  number of concurrent writers can hold it off, then follows the successor link: a
  regenerate that raced the end, and replaced the old session just before it, has its
  new session ended too (the link is written before the old record is replaced, and the
  end reads it after deleting).

On a storage without compare-and-set the writes are plain; docs/concepts.md names the
races that remain there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._codec import RECORD_OVERHEAD, Record, pack_record, pack_tombstone, store_key, unpack_record
from ._exceptions import StorageError
from ._state import ABSENT, CLEARED, FOUND, MAX_CANDIDATES, SUPERSEDED, Phase, State
from ._storage_calls import conflict, storage_errors

if TYPE_CHECKING:
    from ._mapping import Mapping
    from ._sessions import Header, RequestSessions

__all__ = ["clear", "commit", "drop", "end_key", "load", "open_id", "save"]

log = logging.getLogger("satchel")

_RETRIES = 4  # compare-and-set attempts against records other requests keep rewriting
_CHAIN = 8  # tombstones followed from one ended session, at most
# How long a tombstone outlives its session: longer than any request that read the session
# before it ended can still be running.
TOMBSTONE_TTL = 60.0
_ENDED = pack_tombstone()


def successor_key(key: str) -> str:
    """Where a regenerate links the session stored under ``key`` to the one that replaced it."""
    return store_key(f"successor:{key}")


# -- reading -------------------------------------------------------------------------


async def read(m: Mapping[Any], key: str) -> bytes | None:
    with storage_errors(m, "read"):
        return await m.store.read(key)


def _live(m: Mapping[Any], raw: bytes | None) -> Record | None:
    """The record in ``raw`` if it is a session of ``m`` (not a tombstone, not another mapping's)."""
    record = unpack_record(raw) if raw is not None else None
    return record if record is not None and record.name == m.name else None


def _gone(raw: bytes | None) -> Phase:
    """How a session that is no longer live went: a tombstone is left only by a regenerate
    (another request is sending the new ID: leave the cookie alone); anything else ended."""
    record = unpack_record(raw) if raw is not None else None
    return SUPERSEDED if record is not None and record.is_tombstone else CLEARED


async def load(rs: RequestSessions, m: Mapping[Any], st: State) -> None:
    st.phase = ABSENT
    now = rs._sessions.clock()
    candidates = 0
    for text in rs._incoming(m):
        opened, hint = open_id(m, text)
        if opened is None:
            log.debug("%s %r: refused an ID the server could not have issued", m.transport, m.name)
            continue
        candidates += 1
        if candidates > MAX_CANDIDATES:  # each costs a storage read
            break
        session_id, reissue = opened
        key = store_key(session_id)
        try:
            raw = await read(m, key)
        except StorageError:
            _raise_or_log(m, "storage read failed; treating as no session")
            return
        record = unpack_record(raw) if raw is not None else None
        if record is not None and record.name != m.name:
            # a tombstone (ended while requests still held it), or another mapping's session
            log.debug("%s %r: an ended session, or one of another mapping, refused", m.transport, m.name)
            continue
        if record is None or (m.max_lifetime is not None and record.created + m.max_lifetime <= now):
            log.debug("%s %r: unknown or expired session ID, not adopted", m.transport, m.name)
            if raw is not None:  # past its absolute lifetime, or unreadable: drop it
                st.drop_later(key)
            continue
        value = rs._decode(m, record.data)
        if value is None:
            st.drop_later(key)
            continue
        st.phase, st.id, st.key, st.raw, st.reissue = FOUND, session_id, key, raw, reissue
        st.created, st.owner, st.hint = record.created, record.owner, _parse_hint(hint)
        if st.attributes is None:
            st.attributes = record.attributes
        if not st.dirty:  # a value set before the load stays the session
            st.value, st.data = value, record.data
        return


def _raise_or_log(m: Mapping[Any], what: str) -> None:
    """In an ``except StorageError`` block: raise it again, or, where the mapping was made
    with ``on_storage_error="ignore"``, log it and let the request go on without."""
    if m.on_storage_error == "raise":
        raise  # re-raises what the caller caught: this runs inside its except block
    log.warning("%s %r: %s", m.transport, m.name, what, exc_info=True)


def open_id(m: Mapping[Any], text: str) -> tuple[tuple[str, bool] | None, str]:
    """The ID in a server-side value ``<sealed id>.<when it was last sent>``, and the hint.

    Exactly ``<id>`` or ``<id>.<1 to 12 digits>``: anything else after the last dot is
    taken as part of the ID, which then reads as no session unless the generator could
    have made it (a custom generator's IDs may hold dots). The hint is not protected:
    whatever it says must not lose the session.
    """
    sealed, dot, hint = text.rpartition(".")
    if not (dot and sealed and 0 < len(hint) <= 12 and hint.isascii() and hint.isdigit()):
        sealed, hint = text, ""
    return m._open_id(sealed), hint


def _parse_hint(hint: str) -> float:
    return float(hint) if hint else 0.0


# -- the handler's clear -------------------------------------------------------------


def clear(rs: RequestSessions, m: Mapping[Any], st: State) -> None:
    if st.key is not None:
        st.doom(st.key, st.raw)
    else:  # not read, or the read failed: end whatever the client holds
        for text in rs._incoming(m):
            opened = open_id(m, text)[0]
            if opened is not None and len(st.dead or ()) < MAX_CANDIDATES:
                st.doom(store_key(opened[0]), None)
    st.end()


# -- writing -------------------------------------------------------------------------


async def save(rs: RequestSessions, m: Mapping[Any], st: State) -> None:
    """Write what changed in this mapping (the endings come after every write: `drop`)."""
    if not st.loaded and (st.regen or st.dirty):
        # the ID in the request is only kept if storage knows it (never adopt one)
        await load(rs, m, st)
    changed = rs._changed(m, st)
    regen, st.regen = st.regen, False
    if st.data is None or st.value is None:
        return
    if changed and len(st.data) + RECORD_OVERHEAD > m.value_limit:
        # grown in place past what the storage accepts (set() refuses it in the handler)
        rs._refuse(m, st, st.data, f"{len(st.data)} bytes, more than {m.storage!r} accepts")
        return
    owner = m._owner_of(st.value) if m.owner is not None else ""
    if st.found and (regen or owner != st.owner):  # a new owner is a new session (fixation)
        await _rotate(rs, m, st, owner)
    elif changed:
        await (_update(rs, m, st, owner) if st.found else _create(rs, m, st, owner))


def _record(rs: RequestSessions, m: Mapping[Any], st: State, owner: str) -> tuple[bytes, float | None]:
    assert st.data is not None
    now = rs._sessions.clock()
    created = st.created if st.found else now  # a regenerated ID keeps when the session began
    st.created = created
    record = pack_record(m.name, created, st.data, owner=owner, used=now, attributes=st.attributes)
    return record, m._lifetime(created, now)


async def _put(
    m: Mapping[Any], key: str, record: bytes, ttl: float | None, *, expected: bytes | None, owner: str
) -> bool:
    """Compare-and-set ``record`` over ``expected`` (linked to ``owner`` when there is one)."""
    with storage_errors(m, "write"):
        if owner and m.owners is not None:
            return await m.owners.write_owned(key, record, ttl, owner=owner, expected=expected)
        if m.cas is not None:
            return await m.cas.write_if(key, record, ttl, expected=expected)
        await m.store.write(key, record, ttl)
        return True


async def _create(rs: RequestSessions, m: Mapping[Any], st: State, owner: str) -> None:
    record, ttl = _record(rs, m, st, owner)
    session_id, key = await _insert(m, record, ttl, owner, conditional=bool(owner) or m.detect_conflicts)
    _written(m, st, session_id, key, record, ttl, owner)


async def _insert(
    m: Mapping[Any], record: bytes, ttl: float | None, owner: str, *, conditional: bool = True
) -> tuple[str, str]:
    """Store ``record`` under a fresh ID; returns the ID and its key.

    Unconditional where nothing asks otherwise: no other request can know a fresh random ID,
    let alone have ended it.
    """
    session_id = m._new_id()
    key = store_key(session_id)
    if not conditional:
        with storage_errors(m, "write"):
            await m.store.write(key, record, ttl)
    elif not await _put(m, key, record, ttl, expected=None, owner=owner):
        raise StorageError(
            f"a fresh ID for {m.transport} {m.name!r} is taken in {m.storage!r}; the identity "
            "generator repeats itself: give it more randomness"
        )
    return session_id, key


async def _update(rs: RequestSessions, m: Mapping[Any], st: State, owner: str) -> None:
    assert st.key is not None
    assert st.id is not None
    record, ttl = _record(rs, m, st, owner)
    key = st.key
    outcome = await _conditionally(
        m, key, st.raw, lambda expected: _put(m, key, record, ttl, expected=expected, owner=owner)
    )
    if outcome is FOUND:
        _written(m, st, st.id, key, record, ttl, owner, issued=False)
    elif outcome is None:  # every attempt met a newer record: those writers came last
        log.debug("%s %r: rewritten by other requests meanwhile; their value stands", m.transport, m.name)
        st.dirty = False
    else:
        log.debug("%s %r: ended or regenerated by another request; not written", m.transport, m.name)
        st.end(outcome)


async def _conditionally(
    m: Mapping[Any], key: str, expected: bytes | None, attempt: Callable[[bytes | None], Awaitable[bool]]
) -> Phase | None:
    """Run ``attempt(expected)``, a compare-and-set of ``key``, until it lands: ``FOUND``.

    When it fails the record is read again: if the session is no longer live, how it went
    (``CLEARED`` or ``SUPERSEDED``); if another request rewrote it, the attempt is made again
    against that record, never over one this request did not see. ``None`` when every
    attempt met a newer record. With ``detect_conflicts`` the first failure raises.
    """
    for _ in range(_RETRIES):
        if await attempt(expected):
            return FOUND
        if m.detect_conflicts:
            raise conflict(m)
        expected = await read(m, key)
        if _live(m, expected) is None:
            return _gone(expected)
    return None


async def _rotate(rs: RequestSessions, m: Mapping[Any], st: State, owner: str) -> None:
    """Give the session a new ID: write it under the new one now; `drop` ends the old one
    after every mapping's writes, so a failed write elsewhere leaves the old one working."""
    assert st.key is not None
    old_key, old_raw = st.key, st.raw
    record, ttl = _record(rs, m, st, owner)
    session_id, key = await _insert(m, record, ttl, owner)
    if m.cas is None:
        st.doom(old_key, old_raw)
    else:
        st.moving = (old_key, old_raw)
    _written(m, st, session_id, key, record, ttl, owner)


async def _finish_rotation(m: Mapping[Any], st: State) -> None:
    """End the session a regenerate replaced, unless another request ended or regenerated
    it first: then the new one is removed again, and nothing of it is issued."""
    assert st.moving is not None
    assert st.key is not None
    assert m.cas is not None
    (old_key, old_raw), st.moving = st.moving, None
    try:
        # the link first: an end that deletes the old record after the replacement reads it
        linked = await _link(m, old_key, st.key)
        outcome = await _replace(m, old_key, old_raw) if linked else SUPERSEDED
    except BaseException:
        # the old session may still be alive: issue nothing new (the mapping is marked
        # failed, so its cookie is left as it is)
        await _invalidate(m, st.key)
        raise
    if outcome is not FOUND:
        log.debug("%s %r: ended or regenerated by another request; no new ID", m.transport, m.name)
        await _invalidate(m, st.key)
        st.end(outcome)


async def _link(m: Mapping[Any], old_key: str, key: str) -> bool:
    """Link the replaced session to its successor, unless another regenerate of it linked
    first: that one alone replaces it, and an end follows its link.

    A link is never taken over, even from a regenerate that died before replacing the
    session: one still running could not be told apart, and its new session would then be
    out of an end's reach. Such a link only keeps the session from being regenerated for
    the link's 60 seconds; the session itself goes on working.
    """
    assert m.cas is not None
    with storage_errors(m, "write"):
        return await m.cas.write_if(successor_key(old_key), pack_tombstone(key), TOMBSTONE_TTL, expected=None)


async def _replace(m: Mapping[Any], key: str, expected: bytes | None) -> Phase:
    """Turn the live session at ``key`` into a tombstone (``FOUND``), or say how it went."""
    cas = m.cas
    assert cas is not None

    async def attempt(expected: bytes | None) -> bool:
        with storage_errors(m, "write"):
            return await cas.write_if(key, _ENDED, TOMBSTONE_TTL, expected=expected)

    outcome = await _conditionally(m, key, expected, attempt)
    if outcome is None:
        raise conflict(m)  # rewritten by other requests at every attempt: retry the request
    return outcome


def _written(
    m: Mapping[Any],
    st: State,
    session_id: str,
    key: str,
    record: bytes,
    ttl: float | None,
    owner: str,
    *,
    issued: bool = True,
) -> None:
    """Record a write; ``issued``: under an ID the client does not hold yet."""
    assert st.data is not None
    st.phase, st.id, st.key, st.raw, st.owner, st.dirty = FOUND, session_id, key, record, owner, False
    st.issued = st.issued or issued
    st.sealed = (st.data, st.created, m._seal_id(session_id), ttl)


async def _invalidate(m: Mapping[Any], key: str) -> None:
    with storage_errors(m, "invalidate"):
        await m.store.invalidate(key)


# -- ending --------------------------------------------------------------------------


async def drop(m: Mapping[Any], st: State) -> None:
    """End what the request ended, then drop unusable records (best effort)."""
    if st.moving is not None:
        await _finish_rotation(m, st)
    while st.dead:  # ended by the handler: a failure must be seen
        await end_key(m, *st.dead.pop())
    while st.stale:  # unusable leftovers: storage expiry gets them anyway
        stale = st.stale.pop()
        try:
            await _invalidate(m, stale)
        except StorageError:
            log.warning("%s %r: could not drop an unusable entry", m.transport, m.name, exc_info=True)


async def end_key(m: Mapping[Any], key: str, known: bytes | None = None, depth: int = 0) -> bool:
    """End the session stored under ``key`` and every session a regenerate replaced it with.

    ``known`` is its record as this request read it, if it did. Returns whether a live
    session was (probably) ended. Safe to repeat.
    """
    await _invalidate(m, key)
    link = await read(m, successor_key(key))
    record = unpack_record(link) if link is not None else None
    ended = known is not None and _live(m, known) is not None
    if record is not None and record.is_tombstone and record.data and depth < _CHAIN:
        ended = await end_key(m, record.data.decode("ascii", "replace"), None, depth + 1) or ended
    return ended


# -- response start ------------------------------------------------------------------


async def commit(rs: RequestSessions, m: Mapping[Any], st: State, headers: list[Header]) -> None:
    now = rs._sessions.clock()
    if st.sealed is not None and st.id is not None:  # written in this request
        # a new ID travels now; an updated session's ID only when it is due, as on a read
        # (the client holds it already, and the storage entry got a fresh expiry)
        if st.issued or st.reissue or not (m.rolling or m.max_age is None) or rs._stale(m, st.hint, now):
            headers.append(rs._send(m, f"{st.sealed[2]}.{int(now)}", st.sealed[3], now))
    elif st.phase is CLEARED:
        if rs._incoming(m):
            headers.append(rs._delete(m))
    elif st.found and st.id is not None and st.key is not None:
        touch = rs._stale(m, st.hint, now)
        if touch or st.reissue:
            ttl = m._lifetime(st.created, now)
            if touch:
                try:
                    await _touch(m, st.key, ttl, st.owner)
                except StorageError:
                    _raise_or_log(m, "touch failed")
                    return
            headers.append(rs._send(m, f"{m._seal_id(st.id)}.{int(now)}", ttl, now))


async def _touch(m: Mapping[Any], key: str, ttl: float | None, owner: str) -> None:
    # a touch never creates: an ended session stays ended
    with storage_errors(m, "touch"):
        if owner and m.owners is not None:
            await m.owners.touch_owned(key, ttl, owner=owner)
        else:
            await m.store.touch(key, ttl)
