"""The stateless path: the whole value travels, sealed by the mapping's transformers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._exceptions import SerializationError, SessionTooLarge
from ._state import ABSENT, CLEARED, FOUND, MAX_CANDIDATES, UNREAD, Phase, State

if TYPE_CHECKING:
    from ._mapping import Mapping
    from ._sessions import Header, RequestSessions

__all__ = ["commit", "load", "read", "seal"]

log = logging.getLogger("satchel")


def load(rs: RequestSessions, m: Mapping[Any], st: State) -> None:
    if m._lane is not None:
        m._lane.read(rs, st)
        return
    st.phase = ABSENT
    texts = rs._incoming(m)
    if texts:
        read(rs, m, st, texts, rs._sessions.clock())


def read(rs: RequestSessions, m: Mapping[Any], st: State, texts: list[str], now: float) -> None:
    """The first valid value among ``texts`` (what the request sent), into ``st``."""
    refused = 0
    for text in texts:
        opened = m._open_stateless(text, now)
        if opened is None:
            log.debug("%s %r: refused an invalid or expired value", m.transport, m.name)
            # each well-formed value costs a MAC check or a decryption: a flood of
            # duplicates must not cost more than a few (malformed ones cost nothing; the
            # fused path of _lane.py may have checked the first one already, one more)
            refused += m._well_formed(text)
            if refused >= MAX_CANDIDATES:
                return
            continue
        env = opened[0]
        data = env.data
        try:
            value = m.serializer.decode(data)
        except SerializationError:
            log.debug("%s %r: stored value does not decode to %s", m.transport, m.name, m.type.__name__)
            continue
        if value is not None:
            st.value, st.data, st.created, st.expires = value, data, env.created, env.expires
            st.phase, st.reissue = FOUND, opened[1]
            return


def seal(rs: RequestSessions, m: Mapping[Any], st: State, data: bytes) -> None:
    """Seal ``data`` now, at ``set``, so an oversized value fails in the handler."""
    if st.phase is UNREAD:
        load(rs, m, st)
    now = rs._sessions.clock()
    created = st.created if st.phase is FOUND else now
    text, lifetime = m._seal_stateless(data, created, now)
    if len(text) > m._room:
        m._check_size(text)
    st.sealed = (data, created, text, lifetime)


def commit(rs: RequestSessions, m: Mapping[Any], st: State, headers: list[Header]) -> None:
    phase = st.phase
    if phase is CLEARED:
        if rs._incoming(m):
            headers.append(rs._delete(m))
        return
    if phase is UNREAD:
        if not st.regen:
            return  # set() and get() load: nothing was asked of this mapping
        load(rs, m, st)
        phase = st.phase
    if phase is not FOUND and not st.dirty:
        return
    if not (rs._changed(m, st) or st.reissue or st.regen) and not _due(rs, m, st, phase):
        return
    data = st.data
    if data is None:
        return
    now = rs._sessions.clock()
    sealed = st.sealed
    if sealed is not None and sealed[0] == data:  # as set() sealed it
        text, lifetime = sealed[2], sealed[3]
    else:
        text, lifetime = m._seal_stateless(data, st.created if phase is FOUND else now, now)
        try:
            if len(text) > m._room:
                m._check_size(text)
        except SessionTooLarge as exc:
            # grown in place past what the transport carries, after the handler answered:
            # as for a change that would not read back, the last good value stays
            rs._refuse(m, st, data, str(exc))
            if sealed is None:
                return  # the client keeps the value it sent
            text, lifetime = sealed[2], sealed[3]
    headers.append(rs._send(m, text, lifetime, now))


def _due(rs: RequestSessions, m: Mapping[Any], st: State, phase: Phase) -> bool:
    """Whether an unchanged session is due for its rolling refresh (past half its idle time)."""
    if phase is not FOUND or not st.expires or m.max_age is None:
        return False
    if m.max_lifetime is not None and st.expires >= st.created + m.max_lifetime - 1:
        return False  # capped by the absolute lifetime: sending it again would not extend it
    return rs._stale(m, st.expires - m.max_age, rs._sessions.clock())
