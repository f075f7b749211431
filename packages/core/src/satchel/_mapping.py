"""A mapping: one session type bound to one name, transport, codec pipeline and storage."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import logging
import math
import typing
from collections.abc import Callable, Sequence
from typing import Any, Generic, Literal, TypeVar

import msgspec

from ._codec import ENCODER, ENVELOPE_VERSION, ENVELOPES, Envelope, b64decode, b64encode
from ._cookies import COOKIE_BUDGET, CookieAttributes, SameSite
from ._exceptions import ConfigError, SessionTooLarge
from ._identity import id_validator, token_id
from ._lane import Lane
from ._lane import build as build_lane
from ._plugins import open_storage
from ._plugins import serializer as named_serializer
from ._serializers import JSONSerializer, MsgPackSerializer
from ._transformers import Sign
from ._types import (
    BindableTransformer,
    CompareAndSet,
    IdentityGenerator,
    OwnerIndex,
    Reissue,
    Serializer,
    SessionStorage,
    Transformer,
    capabilities_of,
)

__all__ = ["Mapping", "cookie", "header", "DEFAULT_MAX_AGE"]

log = logging.getLogger("satchel")

T = TypeVar("T")

LANES = True
"""Whether mappings of the common configuration get the fused path (the tests turn it off to
run the stateless suite through the generic steps as well)."""

DEFAULT_MAX_AGE = 14 * 24 * 3600.0
"""Idle timeout when ``max_age`` is not given: two weeks."""

CLOCK_SKEW = 300.0
"""Seconds a value's times may run ahead of this server's clock (servers disagree a little)."""

HEADER_BUDGET = 8192
"""Largest header value accepted or sent by default; servers commonly cap a header near 8 KiB."""

OnStorageError = Literal["raise", "ignore"]
Duration = float | int | datetime.timedelta
SerializerSpec = Serializer[Any] | str | Callable[[type[Any]], Serializer[Any]] | None


def _resolve_serializer(type_: type[T], spec: SerializerSpec) -> Serializer[T]:
    if spec is None:
        return MsgPackSerializer(type_)
    if isinstance(spec, str):
        return named_serializer(spec, type_)
    if isinstance(spec, type) or not (hasattr(spec, "encode") and hasattr(spec, "decode")):
        return spec(type_)
    return spec  # type: ignore[return-value]


class Mapping(Generic[T]):
    """One session type bound to a name and a transport. Build it with `cookie` or `header`.

    Holds configuration only; the state of a request lives in `RequestSessions`.
    """

    def __init__(
        self,
        type: type[T],
        name: str,
        *,
        transport: Literal["cookie", "header"],
        storage: SessionStorage | str | None,
        serializer: SerializerSpec,
        transformers: Sequence[Transformer],
        identity: IdentityGenerator | None,
        max_age: Duration | None,
        max_lifetime: Duration | None,
        rolling: bool,
        on_storage_error: OnStorageError,
        detect_conflicts: bool,
        max_size: int,
        attributes: CookieAttributes | None,
        owner: Callable[[T], str] | None = None,
    ) -> None:
        self.type = type
        self.name = name
        self.transport = transport
        where = f"{transport} {name!r}"
        max_age = duration(max_age, "max_age", where)
        max_lifetime = duration(max_lifetime, "max_lifetime", where)
        if on_storage_error not in ("raise", "ignore"):
            raise ConfigError(f"on_storage_error={on_storage_error!r}; use 'raise' or 'ignore'")
        self.max_age = max_age
        self.max_lifetime = max_lifetime
        # how far past now a stateless value's idle deadline may lie, clock skew included
        self._horizon = max(max_age or 0.0, max_lifetime or 0.0) + CLOCK_SKEW
        self.rolling = rolling and max_age is not None
        self.on_storage_error = on_storage_error
        self.max_size = max_size
        self.attributes = attributes
        # the longest value that fits the transport, what _check_size lets pass without more ado
        self._room = max_size if attributes is None else COOKIE_BUDGET - attributes.overhead
        self.header_key = name.lower().encode("latin-1")
        self.vary = "Cookie" if transport == "cookie" else name  # what a response that read it varies on
        self._vary_header = (b"vary", self.vary.encode("latin-1"))
        self.serializer: Serializer[T] = _resolve_serializer(type, serializer)
        context = f"{transport}:{name}"
        bound: list[Transformer] = []
        for t in transformers:
            if inspect.isclass(t):
                raise ConfigError(
                    f"{context}: transformers=[{t.__name__}] lists the class; make one: {t.__name__}(key)"
                )
            if not (hasattr(t, "encode") and hasattr(t, "decode")):
                raise ConfigError(f"{context}: transformers must have encode() and decode(); got {t!r}")
            bound.append(t.bind(context) if isinstance(t, BindableTransformer) else t)
        self.transformers = tuple(bound)
        self._decoders = tuple(reversed(bound))
        if isinstance(storage, str):
            storage = open_storage(storage)
        self.storage = storage
        if storage is None and not bound:
            raise ConfigError(
                f"{context} is stateless with no transformer, so anyone could forge it: add "
                "transformers=[satchel.Sign(key)] or make it server-side with storage=..."
            )
        # what the user listed may declare it, or what its bind() returned
        if storage is None and not any(
            getattr(t, "authenticates", False) is True for t in (*transformers, *bound)
        ):
            names = ", ".join(t.__class__.__name__ for t in transformers)
            raise ConfigError(
                f"{context} is stateless and none of its transformers ({names}) authenticates what "
                "travels, so anyone could forge it: add satchel.Sign(key) (or Encrypt). A "
                "transformer that does authenticate says so with `authenticates = True`"
            )
        if storage is not None and not all(
            callable(getattr(storage, m, None)) for m in ("read", "write", "invalidate", "touch", "aclose")
        ):
            raise ConfigError(f"{context}: {storage!r} is not a SessionStorage")
        if detect_conflicts and not isinstance(storage, CompareAndSet):
            raise ConfigError(
                f"{context}: detect_conflicts=True needs a storage with write_if() "
                f"(compare-and-set); {storage!r} has none"
            )
        self.detect_conflicts: bool = detect_conflicts
        probe: object = storage  # protocol checks mypy would otherwise call impossible
        self.cas: CompareAndSet | None = probe if isinstance(probe, CompareAndSet) else None
        self.owners: OwnerIndex | None = (
            probe if isinstance(probe, OwnerIndex) and self.cas is not None else None
        )
        # the largest value the storage takes, read once: set() and every save check it
        self.value_limit = capabilities_of(storage).max_value_size if storage is not None else 0
        if owner is not None:
            if storage is None:
                raise ConfigError(
                    f"{context}: owner= needs a server-side mapping: a stateless session lives "
                    "only in the client, so the server has nothing to revoke. Make it "
                    "server-side (storage=...), or keep a hash of the user's credential in the "
                    "value and compare it on each request (docs/signing-out-everywhere.md)"
                )
            if not callable(owner):
                raise ConfigError(f"{context}: owner= takes a function from the session value to a string")
            if self.owners is None:
                raise ConfigError(
                    f"{context}: owner= needs a storage with an owner index (satchel.OwnerIndex); "
                    f"{storage!r} has none. The built-in memory, sqlite, redis and mongodb "
                    "storages have one"
                )
        self.owner = owner
        if identity is not None and storage is None:
            raise ConfigError(f"{context}: identity= only applies to server-side mappings (storage=...)")
        self.identity: IdentityGenerator = identity or token_id
        self.is_valid_id = id_validator(self.identity)
        # The common configuration, a stateless value under one Sign with a built-in
        # serializer, has a fused request path (_lane.py); what it does not take goes
        # through the generic steps, which decide.
        self._lane: Lane | None = None
        lone = bound[0] if len(bound) == 1 else None
        ser: Any = self.serializer
        if (
            LANES
            and storage is None
            and lone.__class__ is Sign
            and ser.__class__ in (MsgPackSerializer, JSONSerializer)
        ):
            self._lane = build_lane(self, lone, ser._encoder, ser._decoder)

    @property
    def server_side(self) -> bool:
        return self.storage is not None

    @property
    def store(self) -> SessionStorage:
        """The storage of a server-side mapping."""
        if self.storage is None:
            raise ConfigError(f"{self!r} is stateless: it has no storage")
        return self.storage

    def _require_owners(self) -> OwnerIndex:
        """The owner index, for a mapping made with ``owner=``."""
        if self.owner is None or self.owners is None:
            raise ConfigError(
                f"{self!r} has no owner=: name the owner of its sessions in the mapping, e.g. "
                "owner=lambda login: login.user, to list or revoke them by owner"
            )
        return self.owners

    def _owner_of(self, value: T) -> str:
        """The owner of a session value, checked: a non-empty string of at most 256 characters."""
        from ._owners import check_owner

        assert self.owner is not None
        try:
            return check_owner(self.owner(value))
        except ValueError as exc:
            raise ValueError(f"{self.transport} {self.name!r}: owner= gave no usable owner: {exc}") from None

    @staticmethod
    def _is_handle(handle: str) -> bool:
        """Whether ``handle`` could name a stored session (43 base64url characters)."""
        return len(handle) == 43 and b64decode(handle) is not None

    def __repr__(self) -> str:
        kind = "server-side" if self.storage is not None else "stateless"
        return f"<{self.transport} {self.name!r}: {self.type.__name__}, {kind}>"

    # -- the transformer pipeline -------------------------------------------------

    def _protect(self, data: bytes) -> str:
        for t in self.transformers:
            data = t.encode(data)
        return b64encode(data)

    def _well_formed(self, text: str) -> bool:
        """Whether ``text`` gets as far as the transformers (not empty, within size, base64url)."""
        return 0 < len(text) <= self.max_size and b64decode(text) is not None

    def _open(self, text: str) -> tuple[bytes, bool] | None:
        """The bytes inside ``text`` and whether they need re-issuing; ``None``: refused."""
        if len(text) > self.max_size:
            return None
        data: bytes | None = b64decode(text)
        if data is None:
            return None
        reissue = False
        for t in self._decoders:
            try:
                data = t.decode(data)
            except Exception:  # a third-party transformer must not turn bad input into a 500
                log.debug("%s %r: transformer %r raised on decode", self.transport, self.name, t)
                return None
            if data is None:
                return None
            if data.__class__ is not bytes:
                reissue = reissue or isinstance(data, Reissue)
        return (data if data.__class__ is bytes else bytes(data)), reissue

    # -- stateless ----------------------------------------------------------------

    def _open_stateless(self, text: str, now: float) -> tuple[Envelope, bool] | None:
        """The envelope of a valid value and whether it needs re-issuing, else ``None``."""
        opened = self._open(text)
        if opened is None:
            return None
        env = self._envelope(opened[0], now)
        return None if env is None else (env, opened[1])

    def _envelope(self, data: bytes, now: float) -> Envelope | None:
        """The envelope in ``data``, if it is this mapping's and still valid at ``now``."""
        try:
            env = ENVELOPES.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        created, expires = env.created, env.expires
        if env.version != ENVELOPE_VERSION or env.name != self.name:
            return None
        # forged or corrupt times (NaN, inf, far future) must not reach the cookie arithmetic:
        # NaN fails every comparison, and -inf for expires is in the past
        if not (-math.inf < created <= now + CLOCK_SKEW and expires <= now + self._horizon):
            return None
        if expires:
            if expires <= now:
                return None
        elif self.max_age is not None:  # cut before an idle timeout was set
            return None
        if self.max_lifetime is not None and created + self.max_lifetime <= now:
            return None
        return env

    def _seal_stateless(self, data: bytes, created: float, now: float) -> tuple[str, float | None]:
        """The travelling text for ``data`` and its lifetime in seconds from now."""
        lifetime = self.max_age if self.max_lifetime is None else self._lifetime(created, now)
        expires = 0.0 if lifetime is None else now + lifetime
        body = ENCODER.encode(Envelope(ENVELOPE_VERSION, self.name, created, expires, data))
        return self._protect(body), lifetime

    def _lifetime(self, created: float, now: float) -> float | None:
        """Seconds from now until the session ends, idle and absolute limits together."""
        remaining = self.max_age
        if self.max_lifetime is not None:
            left = created + self.max_lifetime - now
            remaining = left if remaining is None else min(remaining, left)
        return remaining

    # -- server-side IDs ----------------------------------------------------------

    def _open_id(self, text: str) -> tuple[str, bool] | None:
        if not self.transformers:
            return (text, False) if self.is_valid_id(text) else None
        opened = self._open(text)
        if opened is None:
            return None
        try:
            session_id = opened[0].decode("ascii")
        except UnicodeDecodeError:
            return None
        return (session_id, opened[1]) if self.is_valid_id(session_id) else None

    def _seal_id(self, session_id: str) -> str:
        return self._protect(session_id.encode("ascii")) if self.transformers else session_id

    def _new_id(self) -> str:
        session_id = self.identity()
        if not self.is_valid_id(session_id):
            raise ConfigError(
                f"the identity generator of {self.transport} {self.name!r} produced an ID its own "
                "check refuses; give it an is_valid() that accepts what it makes"
            )
        return session_id

    # -- transport ----------------------------------------------------------------

    def _check_size(self, text: str) -> None:
        """Raise `SessionTooLarge` when ``text`` does not fit (``len(text) > self._room``)."""
        if self.attributes is not None:
            size = len(text) + self.attributes.overhead
            budget = COOKIE_BUDGET
        else:
            size, budget = len(text), self.max_size
        if size > budget:
            raise SessionTooLarge(self.name, size, budget)


def duration(value: object, label: str, where: str) -> float | None:
    """``value`` (seconds, or a ``timedelta``) as seconds; ``None`` stays ``None``.

    Anything else, and anything not finite and positive, is a `ConfigError` here, when the
    mapping is built: not an error page at the first ``set``.
    """
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigError(
            f"{where}: {label}={value!r} is not a duration; give seconds (an int or float) or a "
            "datetime.timedelta, or None for no limit"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"{where}: {label}={value!r}; give a finite number of seconds > 0, or None for no limit"
        )
    return seconds


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{what} name must be a non-empty string, got {name!r}")


def _check_type(type_: object) -> None:
    supported = (
        type_ is dict
        or typing.get_origin(type_) is dict
        or typing.is_typeddict(type_)
        or dataclasses.is_dataclass(type_)
        or hasattr(type_, "__attrs_attrs__")
        or (inspect.isclass(type_) and issubclass(type_, msgspec.Struct))
    )
    if not supported:
        raise ConfigError(
            f"{type_!r} cannot be a session type; use a msgspec Struct, a dataclass, "
            "an attrs class, a TypedDict or dict"
        )


def cookie(
    type: type[T],
    name: str,
    *,
    storage: SessionStorage | str | None = None,
    serializer: SerializerSpec = None,
    transformers: Sequence[Transformer] = (),
    identity: IdentityGenerator | None = None,
    max_age: Duration | None = DEFAULT_MAX_AGE,
    max_lifetime: Duration | None = None,
    rolling: bool = True,
    path: str = "/",
    domain: str | None = None,
    secure: bool | None = None,
    http_only: bool = True,
    same_site: SameSite | None = "lax",
    partitioned: bool = False,
    on_storage_error: OnStorageError = "raise",
    detect_conflicts: bool = False,
    owner: Callable[[T], str] | None = None,
) -> Mapping[T]:
    """A session of ``type`` carried in the cookie ``name``.

    Stateless when ``storage`` is ``None`` (the whole value travels, protected by
    ``transformers``), server-side otherwise (only an ID travels; ``storage`` is a
    `SessionStorage` or a URL such as ``"sqlite:///sessions.db"``).

    Args:
        type: the session's type: a msgspec Struct, a dataclass, an attrs class, a
            TypedDict or ``dict``; the serializer encodes and decodes it.
        name: the cookie name; unique among the app's mappings.
        storage: ``None`` for a stateless session (the whole value travels, protected by
            ``transformers``); a `SessionStorage` or a storage URL (``"sqlite:///sessions.db"``,
            ``"redis://..."``, ``"memory://"``) for a server-side one (only an ID travels).
        serializer: ``None`` for msgpack; a registered name (``"json"``, ``"msgpack"``),
            a `Serializer`, or a callable that makes one from ``type``.
        transformers: applied in order to what travels (``Sign``, ``Digest``, ``Encrypt``).
            A stateless mapping needs one that signs or encrypts.
        identity: makes server-side IDs (default: 32 random bytes from `secrets`, base64url).
        max_age: idle timeout (default 14 days), in seconds or a ``timedelta``; ``None`` for none. Enforced
            on the server, not only by the client.
        max_lifetime: absolute timeout from when the session was created; ``None`` for none.
        rolling: whether each request that reads the session moves its idle deadline
            (reissued at most once per half of ``max_age``).
        path: the cookie's ``Path``.
        domain: the cookie's ``Domain``; ``None`` keeps it on the host that set it.
        secure: ``True`` or ``False`` forces ``Secure``; ``None`` sets it on every request
            but plain http through an in-process test client (``testserver``,
            ``localhost``). Nothing the client sends (``Host``, ``X-Forwarded-*``) changes it.
        http_only: the cookie's ``HttpOnly``; page scripts cannot read it.
        same_site: ``"lax"``, ``"strict"``, ``"none"`` (forces ``Secure``) or ``None`` to
            leave the attribute out.
        partitioned: the cookie's ``Partitioned`` (CHIPS; forces ``Secure``).
        on_storage_error: what a failed storage *read* means: ``"raise"`` (a
            `StorageError`, the response fails) or ``"ignore"`` (read as no session).
            A failed write always raises.
        detect_conflicts: raise `SessionConflict` when another request changed the session
            between this request's read and its write (needs compare-and-set).
        owner: server-side only: maps a value to the string that owns it, e.g.
            ``lambda login: login.user``, so the app can list and end every session of
            that owner (`Sessions.revoke_owner`). Needs a storage with an owner index.

    Examples:
        >>> satchel.cookie(Cart, "CART", transformers=[satchel.Sign(key)])
    """
    _check_name(name, "cookie")
    _check_type(type)
    attributes = CookieAttributes(
        name,
        path=path,
        domain=domain,
        secure=secure,
        http_only=http_only,
        same_site=same_site,
        partitioned=partitioned,
    )
    return Mapping(
        type,
        name,
        transport="cookie",
        storage=storage,
        serializer=serializer,
        transformers=transformers,
        identity=identity,
        max_age=max_age,
        max_lifetime=max_lifetime,
        rolling=rolling,
        on_storage_error=on_storage_error,
        detect_conflicts=detect_conflicts,
        max_size=COOKIE_BUDGET,
        attributes=attributes,
        owner=owner,
    )


def header(
    type: type[T],
    name: str,
    *,
    storage: SessionStorage | str | None = None,
    serializer: SerializerSpec = None,
    transformers: Sequence[Transformer] = (),
    identity: IdentityGenerator | None = None,
    max_age: Duration | None = DEFAULT_MAX_AGE,
    max_lifetime: Duration | None = None,
    rolling: bool = True,
    max_size: int = HEADER_BUDGET,
    on_storage_error: OnStorageError = "raise",
    detect_conflicts: bool = False,
    owner: Callable[[T], str] | None = None,
) -> Mapping[T]:
    """A session of ``type`` carried in the request and response header ``name``.

    For API clients: the server sends the header when the session changes; the client
    sends it back. A cleared session is answered with the header set to an empty value.

    Args:
        type: the session's type: a msgspec Struct, a dataclass, an attrs class, a
            TypedDict or ``dict``; the serializer encodes and decodes it.
        name: the header name; unique among the app's mappings.
        storage: ``None`` for a stateless session (the whole value travels, protected by
            ``transformers``); a `SessionStorage` or a storage URL (``"sqlite:///sessions.db"``,
            ``"redis://..."``, ``"memory://"``) for a server-side one (only an ID travels).
        serializer: ``None`` for msgpack; a registered name (``"json"``, ``"msgpack"``),
            a `Serializer`, or a callable that makes one from ``type``.
        transformers: applied in order to what travels (``Sign``, ``Digest``, ``Encrypt``).
            A stateless mapping needs one that signs or encrypts.
        identity: makes server-side IDs (default: 32 random bytes from `secrets`, base64url).
        max_age: idle timeout (default 14 days), in seconds or a ``timedelta``; ``None`` for none. Enforced
            on the server, not only by the client.
        max_lifetime: absolute timeout from when the session was created; ``None`` for none.
        rolling: whether each request that reads the session moves its idle deadline
            (reissued at most once per half of ``max_age``).
        max_size: the longest value sent in the header, in characters; a larger one raises
            `SessionTooLarge` when the session is saved.
        on_storage_error: what a failed storage *read* means: ``"raise"`` (a
            `StorageError`, the response fails) or ``"ignore"`` (read as no session).
            A failed write always raises.
        detect_conflicts: raise `SessionConflict` when another request changed the session
            between this request's read and its write (needs compare-and-set).
        owner: server-side only: maps a value to the string that owns it, e.g.
            ``lambda login: login.user``, so the app can list and end every session of
            that owner (`Sessions.revoke_owner`). Needs a storage with an owner index.

    Examples:
        >>> satchel.header(Api, "X-Session", storage=satchel.MemoryStorage())
    """
    _check_name(name, "header")
    _check_type(type)
    if any(c in name for c in " \t\r\n:;,") or not name.isascii():
        raise ConfigError(f"header name {name!r} is not a valid HTTP header name")
    return Mapping(
        type,
        name,
        transport="header",
        storage=storage,
        serializer=serializer,
        transformers=transformers,
        identity=identity,
        max_age=max_age,
        max_lifetime=max_lifetime,
        rolling=rolling,
        on_storage_error=on_storage_error,
        detect_conflicts=detect_conflicts,
        max_size=max_size,
        attributes=None,
        owner=owner,
    )
