"""Session IDs: the default generator and the check that an incoming ID could be one."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["TokenId", "token_id", "id_validator"]

_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class TokenId:
    """An identity generator: ``nbytes`` random bytes from `secrets`, URL-safe base64.

    The default, `satchel.token_id`, draws 32 bytes (43 characters). Its
    ``is_valid`` refuses, before any storage call, an ID it could not have produced.
    """

    alphabet = _URLSAFE

    def __init__(self, nbytes: int = 32) -> None:
        if nbytes < 16:
            from ._exceptions import ConfigError

            raise ConfigError(f"TokenId(nbytes={nbytes}) is guessable; use nbytes >= 16")
        self.nbytes = nbytes
        # base64 without padding: 4 characters per 3 bytes, rounded up
        self.length = -(-nbytes * 4 // 3)
        # compiled by the first is_valid: `import satchel` builds token_id, and need not pay
        self._pattern: re.Pattern[str] | None = None

    def __call__(self) -> str:
        import secrets  # here, not at the top: it costs `import satchel` about 7 ms

        return secrets.token_urlsafe(self.nbytes)

    def is_valid(self, value: str) -> bool:
        """Whether ``value`` has the shape of an ID this generator produces."""
        pattern = self._pattern
        if pattern is None:
            pattern = self._pattern = re.compile(rf"[A-Za-z0-9_-]{{{self.length}}}")
        return pattern.fullmatch(value) is not None

    def __repr__(self) -> str:
        return f"TokenId(nbytes={self.nbytes})"


token_id = TokenId()
"""The default identity generator: 32 bytes from `secrets`, URL-safe (43 characters)."""


def id_validator(generator: Callable[[], str]) -> Callable[[str], bool]:
    """The check for incoming IDs that goes with ``generator``.

    A generator with an ``is_valid`` method is asked; any other is held to a URL-safe
    ID of 16 to 128 characters.
    """
    check = getattr(generator, "is_valid", None)
    if callable(check):
        return check  # type: ignore[no-any-return]
    generic = re.compile(r"[A-Za-z0-9_-]{16,128}")  # here, not at import: a mapping asks once
    return lambda value: generic.fullmatch(value) is not None
