"""The stateless path: the whole value travels, sealed by the mapping's transformers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._exceptions import SerializationError, SessionTooLarge
from ._state import MAX_CANDIDATES, Phase, State

if TYPE_CHECKING:
    from ._mapping import Mapping
    from ._sessions import Header, RequestSessions

__all__ = ["commit", "load", "seal"]

log = logging.getLogger("satchel")


def load(rs: RequestSessions, m: Mapping[Any], st: State) -> None:
    st.phase = Phase.ABSENT
    now = rs._sessions.clock()
    refused = 0
    for text in rs._incoming(m):
        opened = m._open_stateless(text, now)
        if opened is None:
            log.debug("%s %r: refused an invalid or expired value", m.transport, m.name)
            # each well-formed value costs a MAC check or a decryption: a flood of
            # duplicates must not cost more than a few (malformed ones cost nothing)
            refused += m._well_formed(text)
            if refused >= MAX_CANDIDATES:
                return
            continue
        data, created, expires, reissue = opened
        try:
            value = m.serializer.decode(data)
        except SerializationError:
            log.debug("%s %r: stored value does not decode to %s", m.transport, m.name, m.type.__name__)
            value = None
        if value is not None:
            st.value, st.data, st.created, st.expires = value, data, created, expires
            st.phase, st.reissue = Phase.FOUND, reissue
            return


def seal(rs: RequestSessions, m: Mapping[Any], st: State, data: bytes) -> None:
    """Seal ``data`` now, at ``set``, so an oversized value fails in the handler."""
    if st.phase is Phase.UNREAD:
        load(rs, m, st)
    now = rs._sessions.clock()
    created = st.created if st.phase is Phase.FOUND else now
    text, lifetime = m._seal_stateless(data, created, now)
    m._check_size(text)
    st.sealed = (data, created, text, lifetime)


def commit(rs: RequestSessions, m: Mapping[Any], st: State, headers: list[Header]) -> None:
    if st.phase is Phase.CLEARED:
        if rs._incoming(m):
            headers.append(rs._delete(m))
        return
    if st.regen and st.phase is Phase.UNREAD:
        load(rs, m, st)
    found = st.phase is Phase.FOUND
    if not found and not st.dirty:
        return
    now = rs._sessions.clock()
    stale = False
    if found and st.expires and m.max_age is not None:
        capped = m.max_lifetime is not None and st.expires >= st.created + m.max_lifetime - 1
        stale = not capped and rs._stale(m, st.expires - m.max_age, now)
    if not (rs._changed(m, st) or st.reissue or st.regen or stale) or st.data is None:
        return
    if st.sealed is not None and st.sealed[0] == st.data:
        text, lifetime = st.sealed[2], st.sealed[3]
    else:
        text, lifetime = m._seal_stateless(st.data, st.created if found else now, now)
        try:
            m._check_size(text)
        except SessionTooLarge as exc:
            # grown in place past what the transport carries, after the handler answered:
            # as for a change that would not read back, the last good value stays
            rs._refuse(m, st, st.data, str(exc))
            if st.sealed is None:
                return  # the client keeps the value it sent
            text, lifetime = st.sealed[2], st.sealed[3]
    headers.append(rs._send(m, text, lifetime, now))
