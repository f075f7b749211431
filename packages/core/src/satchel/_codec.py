"""What travels and what is stored: base64url text, the stateless envelope, the stored record."""

from __future__ import annotations

import base64
import binascii
import re

import msgspec

__all__ = ["b64encode", "b64decode", "Envelope", "Record"]

_B64 = re.compile(r"[A-Za-z0-9_-]*")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VERSION = 1


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes | None:
    """The bytes of canonical, unpadded base64url ``text``; ``None`` for anything else."""
    tail = len(text) % 4
    if tail == 1 or _B64.fullmatch(text) is None:
        return None
    # unused low bits in the last character would let two texts carry the same bytes
    if tail and _ALPHABET.index(text[-1]) & (0x0F if tail == 2 else 0x03):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


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


class Record(msgspec.Struct, array_like=True, frozen=True):
    """A server-side session as it is stored: when it began, and the serialized value."""

    version: int
    created: float
    data: bytes


_envelope_encoder = msgspec.msgpack.Encoder()
_envelope_decoder = msgspec.msgpack.Decoder(Envelope)
_record_decoder = msgspec.msgpack.Decoder(Record)


def pack_envelope(name: str, created: float, expires: float, data: bytes) -> bytes:
    return _envelope_encoder.encode(Envelope(_VERSION, name, created, expires, data))


def unpack_envelope(raw: bytes) -> Envelope | None:
    try:
        env = _envelope_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return env if env.version == _VERSION else None


def pack_record(created: float, data: bytes) -> bytes:
    return _envelope_encoder.encode(Record(_VERSION, created, data))


def unpack_record(raw: bytes) -> Record | None:
    try:
        rec = _record_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return rec if rec.version == _VERSION else None
