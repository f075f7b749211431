"""What one request knows and wants of one mapping: a phase, and what goes with it."""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["MAX_CANDIDATES", "Phase", "State"]

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


class State:
    """One mapping in one request."""

    __slots__ = (
        "attributes",
        "created",
        "data",
        "dead",
        "dirty",
        "expires",
        "failed",
        "hint",
        "id",
        "key",
        "moving",
        "owner",
        "phase",
        "raw",
        "refused",
        "regen",
        "reissue",
        "sealed",
        "stale",
        "value",
    )

    def __init__(self) -> None:
        self.phase = Phase.UNREAD
        self.value: Any = None
        self.data: bytes | None = None  # the value as last serialized: detects in-place changes
        # the last in-place change refused: its bytes, or why it could not be encoded
        self.refused: bytes | str | None = None
        self.dirty = False  # the value changed: it must be written
        self.regen = False  # the handler asked for a new ID
        self.reissue = False  # the value came under a fallback key: send it again
        self.failed = False  # a save raised: nothing more is written for this mapping
        self.created = 0.0
        self.expires = 0.0  # stateless: idle deadline
        self.hint = 0.0  # server-side: when the cookie was last sent, as the client says
        self.sealed: tuple[bytes, float, str, float | None] | None = None  # (data, created, text, lifetime)
        # server-side only
        self.id: str | None = None  # the session ID (a credential: never logged)
        self.key: str | None = None  # what it is stored under
        self.raw: bytes | None = None  # the stored record as read or written, for compare-and-set
        self.owner = ""  # the owner recorded with it
        self.attributes: dict[str, str] | None = None  # set by the handler, to record
        self.dead: list[tuple[str, bytes | None]] = []  # (key, record as read) this request ends
        self.stale: list[str] = []  # keys of unusable records: dropped, best effort
        # (key, record as read) of the session a regenerate replaces, ended after the writes
        self.moving: tuple[str, bytes | None] | None = None

    @property
    def loaded(self) -> bool:
        return self.phase is not Phase.UNREAD

    @property
    def found(self) -> bool:
        return self.phase is Phase.FOUND

    def end(self, phase: Phase = Phase.CLEARED) -> None:
        """Forget the session: the request now holds none, and (``CLEARED``) sends the
        cookie's deletion, or (``SUPERSEDED``) leaves the cookie alone."""
        self.phase = phase
        self.value = self.data = self.id = self.key = self.raw = self.sealed = self.moving = None
        self.dirty = self.regen = self.reissue = False
