"""Built-in transformers: ``Sign`` (HMAC-SHA256) and ``Digest`` (salted hash)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import math
import re
from collections.abc import Sequence
from typing import Protocol

from ._exceptions import ConfigError
from ._types import Reissue

__all__ = ["Sign", "Digest", "check_key"]

_MIN_KEY = 32
_MIN_DISTINCT = 16  # 32 random bytes have about 30; 16 or fewer: a pattern
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+")
_TAG = 32
_equal = hmac.compare_digest  # constant-time


def check_key(secret: str | bytes, *, what: str = "key") -> bytes:
    """``secret`` as bytes, refused unless it looks like at least 32 random bytes.

    Refused: fewer than 32 bytes; text that spells fewer than 32 bytes in hex or base64; a
    placeholder (``"x" * 32``, ``"ab" * 32``, ``bytes(range(32))``: few distinct bytes, or a
    plain sequence); a passphrase (words, or free text under 256 bits when each character is
    counted at the size of its class: 26 lowercase, 26 uppercase, 10 digits, 33 others);
    text that starts or ends with whitespace. Keys as ``satchel keygen`` prints them, hex,
    line-wrapped base64 and random bytes pass; the checks catch mistakes, they cannot
    measure randomness.
    """
    if not isinstance(secret, (str, bytes, bytearray, memoryview)):
        raise ConfigError(
            f"{what} is {type(secret).__name__}, not str or bytes: if it comes from the "
            "environment, check the variable is set. Generate a key with `satchel keygen`"
        )
    try:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
    except UnicodeEncodeError:  # os.environ keeps bytes that are not UTF-8 as surrogates
        raise ConfigError(f"{what} holds bytes that are not UTF-8 text; use `satchel keygen`") from None
    text = secret if isinstance(secret, str) else _as_text(key)
    if text is not None and text != text.strip():
        raise ConfigError(
            f"{what} starts or ends with whitespace (a newline read from a file?), which would "
            "be part of the key: strip it"
        )
    if len(key) < _MIN_KEY:
        raise ConfigError(
            f"{what} is {len(key)} bytes; it needs at least {_MIN_KEY} random bytes. "
            "Generate one with `satchel keygen`"
        )
    spelled = _spelled(text) if text is not None else None
    if spelled is not None and len(spelled[1]) < _MIN_KEY:
        raise ConfigError(
            f"{what} spells only {len(spelled[1])} bytes in {spelled[0]}; it needs at least "
            f"{_MIN_KEY} random bytes. Generate one with `satchel keygen`"
        )
    material = spelled[1] if spelled is not None else key
    distinct = len(set(material))
    if distinct < _MIN_DISTINCT or len({b - a for a, b in itertools.pairwise(material)}) == 1:
        raise ConfigError(
            f"{what} is a pattern ({distinct} distinct byte values, or a plain sequence); it "
            "looks like a placeholder, not random bytes. Generate one with `satchel keygen`"
        )
    if text is not None and spelled is None:
        bits = len(text) * math.log2(_alphabet(text))
        if any(c.isspace() for c in text) or bits < 8 * _MIN_KEY:
            raise ConfigError(
                f"{what} looks like a passphrase (words, or about {bits:.0f} bits as text), not "
                f"{_MIN_KEY} random bytes; passphrases are refused. Use the base64 or hex text "
                "`satchel keygen` prints, or pass the random bytes themselves"
            )
    return key


def _as_text(key: bytes) -> str | None:
    """``key`` as text when it is printable ASCII, whitespace aside (typed, not random bytes)."""
    if not key.isascii():
        return None
    text = key.decode("ascii")
    return text if "".join(text.split()).isprintable() else None


def _alphabet(text: str) -> int:
    """The size of the alphabet ``text`` seems drawn from: the classes of its characters."""
    size = 26 * any(c.islower() for c in text) + 26 * any(c.isupper() for c in text)
    size += 10 * any(c.isdigit() for c in text) + 33 * any(not c.isalnum() for c in text)
    return max(size, 2)


def _spelled(text: str) -> tuple[str, bytes] | None:
    """What ``text`` spells in hex or base64 (either alphabet, line breaks allowed).

    Base64 is read only from text that mixes lower and upper case, as random base64 does:
    a readable all-lowercase phrase is free text, not base64.
    """
    compact = "".join(text.split()).rstrip("=")
    try:
        if _HEX.fullmatch(compact):
            return "hex", bytes.fromhex(compact)
        if _BASE64.fullmatch(compact) and not compact.islower() and not compact.isupper():
            standard = compact.replace("-", "+").replace("_", "/")
            return "base64", base64.b64decode(standard + "=" * (-len(standard) % 4))
    except ValueError:
        return None
    return None


class _Mac(Protocol):
    def copy(self) -> _Mac: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def _keyed(key: bytes) -> _Mac:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    inner: _Mac = getattr(mac, "_hmac", None) or mac
    return inner


class Sign:
    """Sign what travels with HMAC-SHA256; refuse anything whose tag does not verify.

    ``key`` signs; ``fallback_keys`` are still accepted, and a value that verified
    only under one of them is re-issued under ``key`` (rotation). Each mapping gets
    its own subkey, so a value signed for one mapping never verifies for another.
    Verification is constant-time.

    Examples:
        >>> sign = Sign(secrets.token_bytes(32))
        >>> sign.decode(sign.encode(b"data"))
        b'data'
    """

    authenticates = True  # a forged or altered value never decodes: enough for a stateless mapping

    def __init__(self, key: str | bytes, *, fallback_keys: Sequence[str | bytes] = ()) -> None:
        self._masters = [check_key(key, what="Sign key")] + [
            check_key(k, what="Sign fallback key") for k in fallback_keys
        ]
        self._derive(b"")

    def _derive(self, context: bytes) -> None:
        keys = [hmac.new(m, b"satchel.sign\x00" + context, hashlib.sha256).digest() for m in self._masters]
        # keyed once: copying a keyed HMAC skips the per-call key setup and digest lookup;
        # the C object under hmac.HMAC, where there is one, copies without Python calls
        self._macs = [_keyed(k) for k in keys]
        self._mac = self._macs[0]  # the current key's: almost every call

    def bind(self, context: str) -> Sign:
        """A copy whose keys are derived for ``context`` (a mapping's transport and name).

        A copy of this very object: a subclass stays itself, with what it overrides."""
        import copy

        bound = copy.copy(self)
        bound._derive(context.encode())
        return bound

    def encode(self, data: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(data)
        return data + mac.digest()

    def decode(self, data: bytes) -> bytes | None:
        if len(data) < _TAG:
            return None
        body, tag = data[:-_TAG], data[-_TAG:]
        mac = self._mac.copy()
        mac.update(body)
        if _equal(mac.digest(), tag):  # the current key: almost every value
            return body
        for keyed in self._macs[1:]:
            mac = keyed.copy()
            mac.update(body)
            if _equal(mac.digest(), tag):
                return Reissue(body)
        return None

    def __repr__(self) -> str:
        return f"Sign(<{len(self._macs)} key(s)>)"


class Digest:
    """Append a salted SHA-256 digest and check it on the way in.

    Integrity against accidents (a truncated or mangled value), not against attackers:
    anyone can compute the digest. Use `Sign` (or encryption) against tampering.
    """

    authenticates = False  # anyone can recompute it: a stateless mapping needs Sign or Encrypt too

    def __init__(self, salt: str | bytes = "satchel", algorithm: str = "sha256") -> None:
        self._salt = salt.encode() if isinstance(salt, str) else bytes(salt)
        try:
            self._size = hashlib.new(algorithm).digest_size
        except ValueError as exc:
            raise ConfigError(f"Digest: unknown algorithm {algorithm!r}; try 'sha256'") from exc
        self._algorithm = algorithm

    def _digest(self, data: bytes) -> bytes:
        return hashlib.new(self._algorithm, self._salt + data).digest()

    def encode(self, data: bytes) -> bytes:
        return data + self._digest(data)

    def decode(self, data: bytes) -> bytes | None:
        if len(data) < self._size:
            return None
        body, digest = data[: -self._size], data[-self._size :]
        return body if hmac.compare_digest(self._digest(body), digest) else None

    def __repr__(self) -> str:
        return f"Digest(algorithm={self._algorithm!r})"
