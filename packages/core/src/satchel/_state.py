"""What one request knows and wants of one mapping: a phase, and what goes with it."""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["ABSENT", "CLEARED", "FOUND", "MAX_CANDIDATES", "Phase", "State", "SUPERSEDED", "UNREAD"]

MAX_CANDIDATES = 3
"""Same-named cookies (or headers) a request looks at, at most, per mapping: each costs a
MAC check, a decryption or a storage read. Values refused before any work do not count."""


class Phase(enum.Enum):
    """Where one mapping stands in one request."""

    UNREAD = enum.auto()  # nothing decoded, no storage asked: the request has not looked yet
    ABSENT = enum.auto()  # looked: the request carries no usable session
    FOUND = enum.auto()  # looked: a valid session came with the request (or was written in it)
    CLEARED = enum.auto()  # ended in this request, by the handler or found ended by another request
    # another request regenerated it meanwhile and sends the new ID: this response leaves
    # the cookie alone, so it cannot delete the new one in the browser
    SUPERSEDED = enum.auto()


# The members as plain names, for the request path: ``Phase.FOUND`` goes through the enum's
# metaclass (about 100 ns on Python 3.11, each time), a module global costs a fifth of that.
UNREAD, ABSENT, FOUND, CLEARED, SUPERSEDED = (
    Phase.UNREAD,
    Phase.ABSENT,
    Phase.FOUND,
    Phase.CLEARED,
    Phase.SUPERSEDED,
)


class State:
    """One mapping in one request.

    The defaults are class attributes: a request that only reads a session sets a few
    fields, and making the object costs no more than that (the lists are made when needed).
    """

    phase = UNREAD
    value: Any = None
    data: bytes | None = None  # the value as last serialized: detects in-place changes
    # the last in-place change refused: its bytes, or why it could not be encoded
    refused: bytes | str | None = None
    dirty = False  # the value changed: it must be written
    regen = False  # the handler asked for a new ID
    reissue = False  # the value came under a fallback key: send it again
    failed = False  # a save raised: nothing more is written for this mapping
    created = 0.0
    expires = 0.0  # stateless: idle deadline
    hint = 0.0  # server-side: when the cookie was last sent, as the client says
    sealed: tuple[bytes, float, str, float | None] | None = None  # (data, created, text, lifetime)
    # server-side only
    id: str | None = None  # the session ID (a credential: never logged)
    key: str | None = None  # what it is stored under
    raw: bytes | None = None  # the stored record as read or written, for compare-and-set
    owner = ""  # the owner recorded with it
    issued = False  # written under a new ID in this request: the client must get it
    attributes: dict[str, str] | None = None  # set by the handler, to record
    dead: list[tuple[str, bytes | None]] | None = None  # (key, record as read) this request ends
    stale: list[str] | None = None  # keys of unusable records: dropped, best effort
    # (key, record as read) of the session a regenerate replaces, ended after the writes
    moving: tuple[str, bytes | None] | None = None

    def doom(self, key: str, raw: bytes | None) -> None:
        """End the session stored under ``key`` once this request's writes are done."""
        if self.dead is None:
            self.dead = []
        self.dead.append((key, raw))

    def drop_later(self, key: str) -> None:
        """Drop the unusable record under ``key`` after the writes (best effort)."""
        if self.stale is None:
            self.stale = []
        self.stale.append(key)

    @property
    def loaded(self) -> bool:
        return self.phase is not UNREAD

    @property
    def found(self) -> bool:
        return self.phase is FOUND

    def end(self, phase: Phase = Phase.CLEARED) -> None:
        """Forget the session: the request now holds none, and (``CLEARED``) sends the
        cookie's deletion, or (``SUPERSEDED``) leaves the cookie alone."""
        self.phase = phase
        self.value = self.data = self.id = self.key = self.raw = self.sealed = self.moving = None
        self.dirty = self.regen = self.reissue = False
