"""The fused request path of the common configuration: a stateless session under one
`Sign`, with a built-in msgspec serializer (see ``Mapping._lane``).

The generic steps of ``_stateless`` go through the transformer pipeline, the serializer's
wrapper and a dozen small functions. For the cases nearly every request of such an app
takes (a valid value under the current key read; a value set; a response that sends it or
only varies on it), the same steps are written out here once, in a few functions with the
mapping's settings at hand. The checks are not written twice: the read calls the generic
``b64decode``, `Sign.decode` and ``Mapping._envelope``; the response goes out through
``RequestSessions._send`` (the ``Secure`` decision) after ``_stateless._due`` (the rolling
refresh). What is written out is the sealing of a set (``_stateless.seal``: the envelope,
the current key's MAC, ``b64encode``) and the cookie lookup, each a few lines whose calls
cost more than their work on this path. Anything else (no value, a refused or expired one,
a fallback key, several candidates, a clear, a regenerate, a value that does not encode or
read back, a change made in place, a rolling refresh that is due) returns ``False``/``None``
and is left to the generic steps, which decide: the fused path never refuses what they
would take, nor takes what they would refuse. The test suite of the stateless path runs
through both (``satchel._mapping.LANES``); test_lane.py and test_lane_exchanges.py compare
the two on valid, altered and malformed values, and on whole exchanges byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._codec import ENCODER, ENVELOPE_VERSION, Envelope, b64decode, b64encode
from ._cookies import cookie_bytes
from ._state import ABSENT, CLEARED, FOUND, UNREAD, State

if TYPE_CHECKING:
    from ._mapping import Mapping
    from ._sessions import Header, RequestSessions
    from ._transformers import Sign

__all__ = ["Lane", "build"]

_PRIVATE = (b"cache-control", b"private")


class Lane:
    """The fused path of one mapping: four functions with its settings at hand."""

    __slots__ = ("commit", "open", "read", "set")

    def __init__(
        self,
        read: Callable[[RequestSessions, State], None],
        open: Callable[[State, str | bytes, float], bool],
        set: Callable[[RequestSessions, State, Any], bool],
        commit: Callable[[RequestSessions, State, int], list[Header] | None],
    ) -> None:
        self.read, self.open, self.set, self.commit = read, open, set, commit


def build(m: Mapping[Any], sign: Sign, encoder: Any, decoder: Any) -> Lane:
    """The fused path of ``m``, whose one transformer is ``sign`` (bound) and whose
    serializer encodes and decodes with ``encoder``/``decoder``.

    The mapping's settings are read here, once: a mapping is configuration, never changed
    after it is built (changing one afterwards would part the two paths)."""
    from . import _stateless

    name, max_size, room = m.name, m.max_size, m._room
    max_age, max_lifetime, vary = m.max_age, m.max_lifetime, m._vary_header
    mac0, verify = sign._mac, sign.decode  # the current key's keyed MAC seals
    generic_load, generic_read, due = _stateless.load, _stateless.read, _stateless._due
    cookie = m.transport == "cookie"
    raw_name = name.encode("latin-1")
    envelope = m._envelope

    def open_(st: State, text: str | bytes, now: float) -> bool:
        """Read ``text`` into ``st``: `Mapping._open_stateless` and the serializer, fused."""
        # the checks of what travels are the generic steps' own: one place for each
        if len(text) > max_size:
            return False
        raw = b64decode(text)  # canonical base64url only
        if raw is None:
            return False
        body = verify(raw)  # Sign.decode: the current key's MAC first, compared in constant time
        if body.__class__ is not bytes:
            return False  # forged (None), or under a fallback key: the generic steps re-issue it
        env = envelope(body, now)  # this mapping's, and within its times
        if env is None:
            return False
        data = env.data
        try:
            value = decoder.decode(data)
        except Exception:  # the serializer's refusals: the generic steps log and skip it
            return False
        if value is None:
            return False
        st.value, st.data, st.created, st.expires = value, data, env.created, env.expires
        st.phase = FOUND
        return True

    def read(rs: RequestSessions, st: State) -> None:
        """`_stateless.load`: the first value the request sent, through `open_`, or else
        every value sent, through the generic steps."""
        st.phase = ABSENT
        # a cookie stays bytes as the header gave it: no text is made of the header
        sent: list[bytes] | list[str]
        sent = cookie_bytes(rs._headers, raw_name) if cookie and rs._jar is None else rs._incoming(m)
        if sent:
            now = rs._sessions.clock()
            if not open_(st, sent[0], now):
                texts = [v.decode("latin-1") if isinstance(v, bytes) else v for v in sent]
                generic_read(rs, m, st, texts, now)

    def set_(rs: RequestSessions, st: State, value: Any) -> bool:
        """``RequestSessions.set`` of ``value``, sealed now; ``False``: it does not encode
        or read back, and the generic steps raise what the serializer says."""
        try:
            data = encoder.encode(value)
            decoder.decode(data)  # reads back
        except Exception:
            return False
        if st.phase is UNREAD:
            generic_load(rs, m, st)
        now = rs._sessions.clock()
        created = st.created if st.phase is FOUND else now
        lifetime = max_age if max_lifetime is None else m._lifetime(created, now)
        expires = 0.0 if lifetime is None else now + lifetime
        body = ENCODER.encode(Envelope(ENVELOPE_VERSION, name, created, expires, data))
        mac = mac0.copy()
        mac.update(body)
        text = b64encode(body + mac.digest())
        if len(text) > room:
            m._check_size(text)  # raises SessionTooLarge, as set() does
        st.sealed = (data, created, text, lifetime)
        st.value, st.data, st.dirty = value, data, True
        if st.phase is CLEARED:
            st.phase = ABSENT
        return True

    def commit(rs: RequestSessions, st: State, status: int) -> list[Header] | None:
        """The response headers of a request whose only session is this mapping's; ``None``
        for anything but an unchanged read or a value sent as ``set`` sealed it."""
        if status >= 500 or st.regen or st.reissue or st.failed:
            return None
        phase = st.phase
        value = st.value
        if value is None or not (phase is FOUND or (phase is ABSENT and st.dirty)):
            return None
        try:
            data = encoder.encode(value)
        except Exception:
            return None
        if data != st.data:
            return None  # changed in place: the generic steps check it reads back
        if not st.dirty:  # a rolling refresh that is due goes through the generic steps
            return None if due(rs, m, st, phase) else [vary]
        sealed = st.sealed
        if sealed is None or sealed[0] != data:
            return None
        sent = rs._send(m, sealed[2], sealed[3], rs._sessions.clock())  # Secure decided there
        return [sent, _PRIVATE, vary] if rs._sessions.private else [sent, vary]

    return Lane(read, open_, set_, commit)
