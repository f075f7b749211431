"""satchel: typed, async HTTP sessions for every ASGI framework.

Examples:
    >>> import satchel
    >>> sessions = satchel.Sessions(satchel.cookie(dict, "SESSION", transformers=[satchel.Sign(KEY)]))
"""

from ._detached import DetachedSessions
from ._exceptions import (
    ConfigError,
    PluginError,
    SatchelError,
    SerializationError,
    SessionConflict,
    SessionTooLarge,
    StorageError,
)
from ._hookspecs import hookimpl
from ._identity import TokenId, token_id
from ._mapping import Mapping, cookie, header
from ._memory import MemoryStorage
from ._middleware import SessionMiddleware, sessions_of
from ._owners import SessionInfo, check_owner
from ._plugins import (
    Commands,
    PluginInfo,
    Registry,
    installed_plugins,
    open_storage,
    serializer,
    transformer,
)
from ._serializers import JSONSerializer, MsgPackSerializer
from ._sessions import RequestSessions, Sessions
from ._transformers import Digest, Sign, check_key
from ._types import (
    BindableTransformer,
    CompareAndSet,
    IdentityGenerator,
    OwnedEntry,
    OwnerIndex,
    Purgeable,
    Reissue,
    Serializer,
    SessionStorage,
    StorageCapabilities,
    Transformer,
    capabilities_of,
)
from ._urls import redact_url

__all__ = [
    # sessions
    "Sessions",
    "cookie",
    "header",
    "Mapping",
    "SessionMiddleware",
    "sessions_of",
    "RequestSessions",
    "DetachedSessions",
    "SessionInfo",
    # errors
    "SatchelError",
    "ConfigError",
    "PluginError",
    "StorageError",
    "SessionConflict",
    "SerializationError",
    "SessionTooLarge",
    # extension points
    "SessionStorage",
    "CompareAndSet",
    "OwnerIndex",
    "OwnedEntry",
    "Purgeable",
    "StorageCapabilities",
    "capabilities_of",
    "Serializer",
    "Transformer",
    "BindableTransformer",
    "Reissue",
    "IdentityGenerator",
    # built-ins
    "MemoryStorage",
    "JSONSerializer",
    "MsgPackSerializer",
    "Sign",
    "Digest",
    "TokenId",
    "token_id",
    # plugins
    "hookimpl",
    "Registry",
    "Commands",
    "PluginInfo",
    "installed_plugins",
    "open_storage",
    "serializer",
    "transformer",
    "check_owner",
    "check_key",
    "redact_url",
]

# Tracebacks and reprs name what users import (satchel.StorageError), not the private
# module that defines it.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("satchel._"):
        _obj.__module__ = "satchel"
del _name, _obj
