"""The fused request path of the common configuration: a stateless session under one
`Sign`, with a built-in msgspec serializer (see ``Mapping._lane``).

The generic steps of ``_stateless`` go through the transformer pipeline, the serializer's
wrapper and a dozen small functions. For the cases nearly every request of such an app
takes (a valid value under the current key read; a value set; a response that sends it or
only varies on it), the steps are called here directly, with the mapping's settings at hand.
Nothing is written twice: the read calls ``b64decode``, `Sign.decode` and
``Mapping._envelope``; a set seals through ``_stateless.seal``; the response goes out
through ``RequestSessions._send``, and a rolling refresh is left to ``_stateless._due``'s
decision. Anything else (no value, a refused or expired one, a fallback key, several
candidates, a clear, a regenerate, a value that does not encode or read back, a change made
in place, a refresh that is due) returns ``False``/``None`` and is left to the generic steps,
which decide: the fused path never refuses what they would take, nor takes what they would
refuse. The test suite of the stateless path runs through both (``satchel._mapping.LANES``);
test_lane.py and test_lane_exchanges.py compare the two on valid, altered and malformed
values, and on whole exchanges byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._codec import b64decode
from ._state import ABSENT, FOUND, State

if TYPE_CHECKING:
    from ._mapping import Mapping
    from ._sessions import Header, RequestSessions
    from ._transformers import Sign

__all__ = ["Lane", "build"]

_PRIVATE = (b"cache-control", b"private")


class Lane:
    """The fused path of one mapping: four functions with its settings at hand."""

    __slots__ = ("commit", "encode", "open", "read")

    def __init__(
        self,
        read: Callable[[RequestSessions, State], None],
        open: Callable[[State, str, float], bool],
        encode: Callable[[Any], bytes | None],
        commit: Callable[[RequestSessions, State, int], list[Header] | None],
    ) -> None:
        self.read, self.open, self.encode, self.commit = read, open, encode, commit


def build(m: Mapping[Any], sign: Sign, encoder: Any, decoder: Any) -> Lane:
    """The fused path of ``m``, whose one transformer is ``sign`` (bound) and whose
    serializer encodes and decodes with ``encoder``/``decoder``.

    The mapping's settings are read here, once: a mapping is configuration, never changed
    after it is built (changing one afterwards would part the two paths)."""
    from . import _stateless

    max_size, vary = m.max_size, m._vary_header
    verify, envelope = sign.decode, m._envelope
    generic_read, due = _stateless.read, _stateless._due

    def open_(st: State, text: str, now: float) -> bool:
        """Read ``text`` into ``st``: `Mapping._open_stateless` and the serializer, fused."""
        if len(text) > max_size:
            return False
        raw = b64decode(text)  # canonical base64url only
        if raw is None:
            return False
        body = verify(raw)
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
        texts = rs._incoming(m)
        if texts:
            now = rs._sessions.clock()
            if not open_(st, texts[0], now):
                generic_read(rs, m, st, texts, now)

    def encode(value: Any) -> bytes | None:
        """``value``'s bytes, checked to read back, for ``RequestSessions.set``; ``None``:
        it does not encode or read back, and the generic steps raise what the serializer says."""
        try:
            data: bytes = encoder.encode(value)
            decoder.decode(data)
        except Exception:
            return None
        return data

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
        if not st.dirty:
            return None if due(rs, m, st, phase) else [vary]
        sealed = st.sealed
        if sealed is None or sealed[0] != data:
            return None
        sent = rs._send(m, sealed[2], sealed[3], rs._sessions.clock())
        return [sent, _PRIVATE, vary] if rs._sessions.private else [sent, vary]

    return Lane(read, open_, encode, commit)
