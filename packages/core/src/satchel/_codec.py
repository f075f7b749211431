"""What travels and what is stored: base64url text, the stateless envelope, the stored record."""

from __future__ import annotations

import binascii
import hashlib
import re
import sys
from typing import TypeVar

import msgspec

__all__ = [
    "b64encode",
    "b64decode",
    "store_key",
    "Envelope",
    "ENCODER",
    "ENVELOPES",
    "ENVELOPE_VERSION",
    "Record",
    "RECORD_OVERHEAD",
]

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VERSION = 1
ENVELOPE_VERSION = _VERSION


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# base64url to standard base64; '+', '/' and '=' in the input become '!', which no decoder accepts
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


_STANDARD_ONLY = re.compile(rb"[A-Za-z0-9+/]*=*")

if sys.version_info >= (3, 11):
    _a2b = binascii.a2b_base64

else:

    def _a2b(raw: bytes, strict_mode: bool = True) -> bytes:
        if _STANDARD_ONLY.fullmatch(raw) is None:
            raise binascii.Error("not base64")
        return binascii.a2b_base64(raw)


def b64decode(text: str | bytes) -> bytes | None:
    """The bytes of canonical, unpadded base64url ``text``; ``None`` for anything else."""
    tail = len(text) & 3
    if tail == 1 or not text.isascii():
        return None
    raw = text.encode() if isinstance(text, str) else text  # bytes as a header gave them
    # unused low bits in the last character would let two texts carry the same bytes
    if tail and _ALPHABET.find(raw[-1]) & (0x0F if tail == 2 else 0x03):
        return None
    try:  # strict: refuses stray characters, in C
        return _a2b(raw.translate(_TO_STANDARD) + _PADDING[tail], strict_mode=True)
    except binascii.Error:
        return None


def store_key(session_id: str) -> str:
    """What a server-side session is stored under: the SHA-256 of its ID, base64url.

    A dump of the storage (or of its owner index) then names no usable session: the
    cookie carries the ID, and the digest cannot be turned back into it. The 43
    characters are within the alphabet and length every storage accepts for an ID.
    """
    return b64encode(hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest())


class Envelope(msgspec.Struct, array_like=True, frozen=True):
    """A stateless value as it travels, before transformers: bound to its mapping's name.

    ``created`` is when the session began (absolute lifetime); ``expires`` is the idle
    deadline (0: none). Times are Unix seconds.
    """

    version: int
    name: str
    created: float
    expires: float
    data: bytes


RECORD_OVERHEAD = 64
"""What a stored record adds around the session's bytes, at most, but for its attributes."""


class Record(msgspec.Struct, array_like=True, frozen=True):
    """A server-side session as it is stored: its mapping's name, when it began, the value.

    The name keeps an ID issued for one mapping from opening another mapping's session
    when both share a storage. ``owner`` is what the mapping's ``owner=`` gave ("" for
    none), ``used`` when the session was last written, ``attributes`` what the app
    recorded for its account page. Records written before these fields existed decode
    with their defaults.

    A record with the empty name is a tombstone, which no mapping opens (a mapping's name
    is never empty): it marks a session ended while other requests may still hold it
    (``data`` empty), or, stored under a session's successor key, links it to the session
    a regenerate replaced it with (``data`` is that session's store key). See ``_server.py``.
    """

    version: int
    name: str
    created: float
    data: bytes
    owner: str = ""
    used: float = 0.0
    attributes: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def is_tombstone(self) -> bool:
        return not self.name


ENCODER = msgspec.msgpack.Encoder()
ENVELOPES = msgspec.msgpack.Decoder(Envelope)  # the stateless path opens and seals envelopes itself
_record_decoder = msgspec.msgpack.Decoder(Record)
_Versioned = TypeVar("_Versioned", Envelope, Record)


def _unpack(decoder: msgspec.msgpack.Decoder[_Versioned], raw: bytes) -> _Versioned | None:
    try:
        value = decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return value if value.version == _VERSION else None


def pack_record(
    name: str,
    created: float,
    data: bytes,
    *,
    owner: str = "",
    used: float = 0.0,
    attributes: dict[str, str] | None = None,
) -> bytes:
    return ENCODER.encode(Record(_VERSION, name, created, data, owner, used, attributes or {}))


def pack_tombstone(successor: str = "") -> bytes:
    """A tombstone: ended, or regenerated into the session stored under ``successor``."""
    return ENCODER.encode(Record(_VERSION, "", 0.0, successor.encode("ascii")))


def unpack_record(raw: bytes) -> Record | None:
    return _unpack(_record_decoder, raw)
