"""The exceptions satchel raises.

Every message says what happened and what to do next. The tree::

    SatchelError
    ├── ConfigError            a mapping, key or option is wrong; raised at startup
    │   └── PluginError        a plugin is missing, broken, or claims a taken name
    ├── StorageError           the storage failed (the backend's error is chained)
    │   └── SessionConflict    a compare-and-set write lost to a concurrent writer
    ├── SerializationError     bytes that do not decode to the session type
    └── SessionTooLarge        a value that would not fit in its cookie or header
"""

from __future__ import annotations

__all__ = [
    "SatchelError",
    "ConfigError",
    "PluginError",
    "StorageError",
    "SessionConflict",
    "SerializationError",
    "SessionTooLarge",
]


class SatchelError(Exception):
    """Base of every exception satchel raises."""


class ConfigError(SatchelError):
    """A configuration that cannot work; raised when it is built, not at the first request."""


class PluginError(ConfigError):
    """A plugin is missing, failed to load, or claims a name another plugin has."""


class StorageError(SatchelError):
    """The session storage failed; the backend's own exception is chained as ``__cause__``.

    A call that failed on a timeout may still have been carried out by the backend, later.
    satchel's writes are safe under that: an update is a compare-and-set against what the
    request read, so a late one cannot bring back a session ended meanwhile, and ending a
    session or revoking an owner may be retried.
    """


class SessionConflict(StorageError):
    """Another request changed this session since it was read (compare-and-set lost)."""


class SerializationError(SatchelError):
    """Bytes that do not decode to the session type, or a value that cannot be encoded."""


class SessionTooLarge(SatchelError):
    """A session value that would exceed what its transport (or its storage) can carry.

    Raised by ``set`` so the handler sees it, instead of a browser silently dropping
    an oversized cookie.
    """

    def __init__(self, name: str, size: int, budget: int, *, storage: object = None) -> None:
        self.name = name
        self.size = size
        self.budget = budget
        if storage is None:
            message = (
                f"session {name!r} needs {size} bytes but its transport allows {budget}; "
                "store less in it, or make the mapping server-side (storage=...) so only an "
                "ID travels"
            )
        else:
            message = (
                f"session {name!r} needs {size} bytes but its storage ({type(storage).__name__}) "
                f"accepts at most {budget}; store less in it"
            )
        super().__init__(message)
