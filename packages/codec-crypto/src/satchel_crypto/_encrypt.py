"""``Encrypt``: AES-256-GCM for what travels, one subkey per mapping, key rotation.

A value on the wire::

    version (1) | key id (4) | nonce (12) | ciphertext | tag (16)
    \\______ header, authenticated ______/

The header is passed to GCM as associated data, so changing the version byte, the key id
or the nonce fails the tag like any other change. The first plaintext byte says whether
the rest is raw or deflated; it is encrypted, so the wire does not show it.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from satchel import ConfigError, Reissue, check_key

__all__ = ["Encrypt"]

VERSION = 1
_VERSION_BYTE = bytes([VERSION])
_KEY_ID = 4
_NONCE = 12
_TAG = 16
_HEADER = 1 + _KEY_ID + _NONCE
# the smallest value Encrypt can produce: a header, the one-byte flag, a tag
_MIN_VALUE = _HEADER + 1 + _TAG

_RAW = b"\x00"
_DEFLATED = b"\x01"
# raw deflate: the zlib header and checksum would only repeat what the GCM tag guarantees
_WBITS = -15

DEFAULT_MAX_INFLATED = 64 * 1024


def _derive(master: bytes, label: bytes, context: bytes, length: int) -> bytes:
    info = b"satchel-crypto/v1/" + label + b"\x00" + context
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


class _Key:
    __slots__ = ("aead", "key_id")

    def __init__(self, master: bytes, context: bytes) -> None:
        self.aead = AESGCM(_derive(master, b"aes-256-gcm", context, 32))
        # derived per context too, so the same master key looks unrelated across mappings
        self.key_id = _derive(master, b"key-id", context, _KEY_ID)


class Encrypt:
    """Encrypt what travels with AES-256-GCM; refuse anything that does not authenticate.

    ``key`` encrypts and opens; ``fallback_keys`` only open, and a value they opened is
    returned as `satchel.Reissue`, so the mapping sends it again under ``key``
    (rotation). Keys are at least 32 random bytes (``satchel keygen`` makes one); a
    shorter or placeholder key is a `satchel.ConfigError` here, at startup.

    Each mapping binds its own subkey (HKDF-SHA256 over the master key and the mapping's
    transport and name), so a value made for one mapping never opens under another.
    Every value gets a fresh random 96-bit nonce and the full 16-byte tag.

    ``compress=True`` deflates the value before encrypting it when that makes it
    shorter; on the way in it is inflated only after it authenticated, and never past
    ``max_inflated`` bytes (a value that would is refused). Compression makes the length
    depend on the content: leave it off when a session mixes secrets with what a client
    can choose.

    ``decode`` never raises: a tampered, truncated, foreign or retired-key value is
    ``None``.

    Examples:
        >>> import os
        >>> box = Encrypt(os.urandom(32)).bind("cookie:CART")
        >>> box.decode(box.encode(b"apple"))
        b'apple'
    """

    authenticates = True  # AES-GCM: a forged or altered value never decodes

    def __init__(
        self,
        key: str | bytes,
        *,
        fallback_keys: Sequence[str | bytes] = (),
        compress: bool = False,
        max_inflated: int = DEFAULT_MAX_INFLATED,
    ) -> None:
        if isinstance(fallback_keys, (str, bytes)):
            raise ConfigError(
                "Encrypt(fallback_keys=...) takes a list of keys, not one key; write fallback_keys=[old_key]"
            )
        if max_inflated < 1:
            raise ConfigError(f"Encrypt(max_inflated={max_inflated}) must be at least 1 byte")
        self._masters = [check_key(key, what="Encrypt key")] + [
            check_key(k, what="Encrypt fallback key") for k in fallback_keys
        ]
        self._compress = compress
        self._max_inflated = max_inflated
        self._bind(b"")

    def _bind(self, context: bytes) -> None:
        self._context = context
        self._keys = [_Key(m, context) for m in self._masters]
        self._prefix = _VERSION_BYTE + self._keys[0].key_id

    def bind(self, context: str) -> Encrypt:
        """A copy whose keys are derived for ``context`` (a mapping's transport and name).

        Binding replaces the context; it does not nest.
        """
        bound = object.__new__(Encrypt)
        bound._masters = self._masters
        bound._compress = self._compress
        bound._max_inflated = self._max_inflated
        bound._bind(context.encode())
        return bound

    def encode(self, data: bytes) -> bytes:
        """``data`` encrypted under the newest key, with a fresh nonce."""
        plaintext = _RAW + data
        # past the cap, decode would refuse to inflate it: such a value travels raw
        if self._compress and len(data) <= self._max_inflated:
            deflater = zlib.compressobj(wbits=_WBITS)
            deflated = deflater.compress(data) + deflater.flush()
            if len(deflated) < len(data):
                plaintext = _DEFLATED + deflated
        header = self._prefix + os.urandom(_NONCE)
        return header + self._keys[0].aead.encrypt(header[-_NONCE:], plaintext, header)

    def decode(self, data: bytes) -> bytes | None:
        """The original bytes, `satchel.Reissue` if a fallback key opened them,
        or ``None`` when the value does not authenticate under any listed key."""
        if len(data) < _MIN_VALUE or data[0] != VERSION:
            return None
        header = bytes(data[:_HEADER])
        key_id = header[1 : 1 + _KEY_ID]
        nonce = header[1 + _KEY_ID :]
        sealed = bytes(data[_HEADER:])
        for index, key in enumerate(self._keys):
            if key.key_id != key_id:
                continue
            try:
                plaintext = key.aead.decrypt(nonce, sealed, header)
            except InvalidTag:
                # four bytes of key id can collide between two listed keys; try the next
                continue
            opened = self._unpack(plaintext)
            if opened is None or index == 0:
                return opened
            return Reissue(opened)
        return None

    def _unpack(self, plaintext: bytes) -> bytes | None:
        flag, body = plaintext[:1], plaintext[1:]
        if flag == _RAW:
            return body
        if flag != _DEFLATED:
            return None
        inflater = zlib.decompressobj(wbits=_WBITS)
        try:
            # max_length bounds the work and the memory: a bomb stops at the cap + 1
            out = inflater.decompress(body, self._max_inflated + 1)
        except zlib.error:
            return None
        if len(out) > self._max_inflated or inflater.unconsumed_tail:
            return None
        if not inflater.eof or inflater.unused_data:
            return None
        return out

    def __repr__(self) -> str:
        return f"Encrypt(<{len(self._keys)} key(s)>, compress={self._compress})"
