"""satchel-crypto: encrypted sessions (AES-256-GCM) for satchel.

Examples:
    >>> import os, satchel, satchel_crypto
    >>> key = os.urandom(32)
    >>> mapping = satchel.cookie(dict, "CART", transformers=[satchel_crypto.Encrypt(key)])

``Encrypt`` is imported on first use, so the plugin hook (``satchel_crypto._plugin``)
loads without importing ``cryptography``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._encrypt import Encrypt

__all__ = ["Encrypt"]


def __getattr__(name: str) -> Any:
    if name == "Encrypt":
        from ._encrypt import Encrypt

        return Encrypt
    raise AttributeError(f"module 'satchel_crypto' has no attribute {name!r}")
