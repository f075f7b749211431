"""satchel-crypto's plugin hook: registers the ``encrypt`` transformer.

Registration only: ``cryptography`` is imported when an ``Encrypt`` is first built.
"""

from __future__ import annotations

import satchel


@satchel.hookimpl
def satchel_register(registry: satchel.Registry) -> None:
    registry.transformer("encrypt", "satchel_crypto._encrypt:Encrypt")
