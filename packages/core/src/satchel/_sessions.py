"""``Sessions`` (the app's mappings) and ``RequestSessions`` (one request's view of them)."""

from __future__ import annotations

import inspect
import logging
import time
import typing
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar, overload

from ._codec import pack_record, unpack_record
from ._cookies import parse_cookie_header
from ._exceptions import (
    ConfigError,
    SerializationError,
    SessionConflict,
    SessionTooLarge,
    StorageError,
)
from ._mapping import Mapping
from ._types import capabilities_of

__all__ = ["Sessions", "RequestSessions"]

log = logging.getLogger("satchel")

T = TypeVar("T")
Key = type[Any] | str
Header = tuple[bytes, bytes]

_MAX_CANDIDATES = 3  # same-named cookies looked up in storage, at most, per request


class Sessions:
    """The session mappings of one app. Names and types must each be unique.

    Examples:
        >>> sessions = satchel.Sessions(
        ...     satchel.cookie(Cart, "CART", transformers=[satchel.Sign(key)]),
        ...     satchel.cookie(Login, "SID", storage="memory://"),
        ... )

    ``clock`` returns Unix seconds; tests may pass their own to move time.
    """

    def __init__(self, *mappings: Mapping[Any], clock: Callable[[], float] = time.time) -> None:
        if not mappings:
            raise ConfigError(
                "Sessions() needs at least one mapping: satchel.cookie(...) or satchel.header(...)"
            )
        self.mappings = mappings
        self.clock = clock
        self._by_type: dict[Any, Mapping[Any]] = {}
        self._by_name: dict[str, Mapping[Any]] = {}
        headers: dict[str, Mapping[Any]] = {}
        for m in mappings:
            if not isinstance(m, Mapping):
                raise ConfigError(
                    f"{m!r} is not a mapping; build one with satchel.cookie() or satchel.header()"
                )
            if m.type in self._by_type:
                raise ConfigError(
                    f"{m.type.__name__} is mapped twice ({self._by_type[m.type].name!r} and "
                    f"{m.name!r}); each session type needs its own class"
                )
            clash = self._by_name.get(m.name) or (
                headers.get(m.name.lower()) if m.transport == "header" else None
            )
            if clash is not None:
                raise ConfigError(f"the name {m.name!r} is used by two mappings; give each its own name")
            self._by_type[m.type] = m
            self._by_name[m.name] = m
            if m.transport == "header":
                headers[m.name.lower()] = m
        self._server_side = any(m.storage is not None for m in mappings)

    def mapping(self, key: Key) -> Mapping[Any]:
        """The mapping for a session type or a name."""
        found = self._by_name.get(key) if isinstance(key, str) else self._by_type.get(key)
        if found is None and not isinstance(key, str):
            for base in getattr(key, "__mro__", ())[1:]:
                found = self._by_type.get(base)
                if found is not None:
                    break
        if found is None:
            known = ", ".join(f"{m.type.__name__} ({m.name!r})" for m in self.mappings)
            hint = "; for a TypedDict session, call set(value, key=TheTypedDict)" if key is dict else ""
            raise ConfigError(f"no session mapping for {key!r}; the mapped ones are: {known}{hint}")
        return found

    async def aclose(self) -> None:
        """Close every storage; the middleware calls this at lifespan shutdown.

        One storage failing to close does not keep the others open; its error is raised
        after all were tried.
        """
        seen: set[int] = set()
        failure: BaseException | None = None
        for m in self.mappings:
            if m.storage is not None and id(m.storage) not in seen:
                seen.add(id(m.storage))
                try:
                    await m.storage.aclose()
                except Exception as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure

    async def __aenter__(self) -> Sessions:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _State:
    """What one request knows and wants of one mapping."""

    __slots__ = (
        "cleared",
        "created",
        "data",
        "dead_ids",
        "dirty",
        "expires",
        "failed",
        "found",
        "hint",
        "id",
        "loaded",
        "raw",
        "refused",
        "regen",
        "reissue",
        "sealed",
        "stale_ids",
        "value",
    )

    def __init__(self) -> None:
        self.loaded = False
        self.value: Any = None
        self.data: bytes | None = None  # the value as last serialized: detects in-place changes
        self.created = 0.0
        self.expires = 0.0  # stateless: idle deadline; server-side: when the cookie was last sent
        self.id: str | None = None
        self.raw: bytes | None = None  # the stored record as read, for compare-and-set
        # the last in-place change refused: its bytes, or why it could not be encoded
        self.refused: bytes | str | None = None
        self.found = False
        self.dirty = False
        self.regen = False
        self.reissue = False
        self.cleared = False
        self.dead_ids: list[str] = []  # IDs this request ended (clear, regenerate)
        self.stale_ids: list[str] = []  # records found unusable: dropped, best effort
        self.failed = False  # a save raised: nothing more is written for this mapping
        self.sealed: tuple[bytes, float, str, float | None] | None = None
        self.hint = 0.0


class RequestSessions:
    """One request's sessions: what `satchel.sessions_of` returns.

    Nothing is decoded and no storage is called until a session is asked for; at
    response start only the mappings that changed are written.
    """

    __slots__ = ("_headers", "_jar", "_scheme", "_server", "_sessions", "_states")

    def __init__(self, sessions: Sessions, scope: MutableMapping[str, Any]) -> None:
        self._sessions = sessions
        # what the request path needs of the scope, not the scope itself: the scope holds
        # this object, and a cycle would leave every request to the cycle collector
        self._headers = scope.get("headers", ())
        self._scheme: str = scope.get("scheme", "http")
        self._server = scope.get("server")
        self._states: dict[Mapping[Any], _State] | None = None
        self._jar: dict[str, list[str]] | None = None

    # -- reading the request --------------------------------------------------------

    def _incoming(self, m: Mapping[Any]) -> list[str]:
        if m.transport == "cookie":
            if self._jar is None:
                self._jar = parse_cookie_header([v for k, v in self._headers if k == b"cookie"])
            return self._jar.get(m.name, [])
        key = m.header_key
        return [v.decode("latin-1") for k, v in self._headers if k.lower() == key]

    def _state(self, m: Mapping[Any]) -> _State:
        if self._states is None:
            self._states = {}
        st = self._states.get(m)
        if st is None:
            st = self._states[m] = _State()
        return st

    def _decode(self, m: Mapping[Any], data: bytes) -> Any:
        try:
            return m.serializer.decode(data)
        except SerializationError:
            log.debug("%s %r: stored value does not decode to %s", m.transport, m.name, m.type.__name__)
            return None

    def _load_stateless(self, m: Mapping[Any], st: _State) -> None:
        st.loaded = True
        now = self._sessions.clock()
        for text in self._incoming(m):
            opened = m.open_stateless(text, now)
            if opened is None:
                log.debug("%s %r: refused an invalid or expired value", m.transport, m.name)
                continue
            data, created, expires, reissue = opened
            value = self._decode(m, data)
            if value is not None:
                st.value, st.data, st.created, st.expires = value, data, created, expires
                st.found, st.reissue = True, reissue
                return

    async def _load_server(self, m: Mapping[Any], st: _State) -> None:
        st.loaded = True
        storage = m.storage
        assert storage is not None
        now = self._sessions.clock()
        candidates = 0
        for text in self._incoming(m):
            opened, hint = _open_id(m, text)
            if opened is None:
                log.debug("%s %r: refused an ID the server could not have issued", m.transport, m.name)
                continue
            candidates += 1
            if candidates > _MAX_CANDIDATES:  # each costs a storage read
                break
            session_id, reissue = opened
            try:
                raw = await m.call_storage("read", session_id)
            except StorageError:
                if m.on_storage_error == "raise":
                    raise
                log.warning(
                    "%s %r: storage read failed; treating as no session",
                    m.transport,
                    m.name,
                    exc_info=True,
                )
                return
            record = unpack_record(raw) if raw is not None else None
            if record is not None and record.name != m.name:
                log.debug("%s %r: an ID issued for mapping %r, refused", m.transport, m.name, record.name)
                continue
            if record is None or (m.max_lifetime is not None and record.created + m.max_lifetime <= now):
                log.debug("%s %r: unknown or expired session ID, not adopted", m.transport, m.name)
                if raw is not None:  # past its absolute lifetime, or unreadable: drop it
                    st.stale_ids.append(session_id)
                continue
            value = self._decode(m, record.data)
            if value is None:
                st.stale_ids.append(session_id)
                continue
            st.id, st.raw, st.found, st.reissue = session_id, raw, True, reissue
            st.created, st.hint = record.created, _parse_hint(hint)
            if not st.dirty:  # a value set before the load stays the session
                st.value, st.data = value, record.data
            return

    # -- the handler's API ----------------------------------------------------------

    @overload
    async def get(self, key: type[T]) -> T | None: ...
    @overload
    async def get(self, key: str) -> object | None: ...
    async def get(self, key: Key) -> object | None:
        """The session of this type (or mapping name), or ``None`` when absent or invalid."""
        m = self._sessions._by_type.get(key) or self._sessions.mapping(key)
        st = self._states.get(m) if self._states is not None else None
        if st is None:
            st = self._state(m)
        if not st.loaded:
            if m.storage is None:
                self._load_stateless(m, st)
            else:
                await self._load_server(m, st)
        value: object | None = st.value
        return value

    @overload
    async def get_or_set(self, key: type[T], factory: Callable[[], T | Awaitable[T]]) -> T: ...
    @overload
    async def get_or_set(self, key: str, factory: Callable[[], object]) -> object: ...
    async def get_or_set(self, key: Key, factory: Callable[[], Any]) -> Any:
        """The session, or ``factory()`` (sync or async) stored as the new session."""
        value = await self.get(key)
        if value is None:
            value = factory()
            if inspect.isawaitable(value):
                value = await value
            self.set(value, key=key)
        return value

    def set(self, value: object, *, key: Key | None = None) -> None:
        """Make ``value`` the session of its type (or of ``key``, a type or name).

        Raises here, in the handler: `SessionTooLarge` when the value would not fit
        its cookie, header or storage; `SerializationError` when it cannot be encoded or
        would not decode back to the session type; `TypeError` for ``None`` (use
        `clear`) or a value of another type than ``key``'s.
        """
        if value is None:
            what = "the session" if key is None else f"session {self._sessions.mapping(key).name!r}"
            raise TypeError(f"set(None): to end {what}, call clear() with its type or name")
        m = self._sessions.mapping(key if key is not None else type(value))
        if key is not None and _is_class(m.type) and not isinstance(value, m.type):
            raise TypeError(f"set(..., key={key!r}) needs a {m.type.__name__}, got {type(value).__name__}")
        st = self._state(m)
        data = m.serializer.encode(value)
        problem = _reads_back(m, data)
        if problem is not None:  # a Struct, dataclass or TypedDict is not checked when built
            raise SerializationError(
                f"{type(value).__name__} value for {m.transport} {m.name!r} would not read back "
                f"({problem}); fix the value before set(), or the session would be lost"
            )
        now = self._sessions.clock()
        if m.storage is None:
            if not st.loaded:
                self._load_stateless(m, st)
            created = st.created if st.found else now
            text, lifetime = m.seal_stateless(data, created, now)
            m.check_size(text)
            st.sealed = (data, created, text, lifetime)
        else:
            limit = capabilities_of(m.storage).max_value_size
            if len(data) + 32 > limit:  # the record adds its header to the data
                raise SessionTooLarge(m.name, len(data) + 32, limit, storage=m.storage)
        st.value, st.data, st.dirty, st.cleared = value, data, True, False

    def clear(self, key: Key) -> None:
        """End the session: the cookie is deleted and its storage entry invalidated."""
        m = self._sessions.mapping(key)
        st = self._state(m)
        if m.storage is not None:
            if st.id is not None:
                st.dead_ids.append(st.id)
            else:  # not read, or the read failed: end whatever the client holds
                for text in self._incoming(m):
                    opened = _open_id(m, text)[0]
                    if opened is not None and len(st.dead_ids) < _MAX_CANDIDATES:
                        st.dead_ids.append(opened[0])
        st.loaded = True
        st.value = st.data = st.id = st.raw = st.sealed = None
        st.found = st.dirty = st.regen = st.reissue = False
        st.cleared = True

    def regenerate(self, key: Key) -> None:
        """Give the session a new ID, keep its data, invalidate the old ID (session fixation).

        For a stateless mapping the value is simply issued again.
        """
        self._state(self._sessions.mapping(key)).regen = True

    async def save(self) -> None:
        """Write what changed now, so a `StorageError` or `SessionConflict`
        reaches the handler; otherwise it happens at response start.

        A mapping whose save failed is not written again at response start.
        """
        await self._save_all()

    # -- response start ---------------------------------------------------------------

    async def _save_all(self) -> None:
        if not self._states:
            return
        server = [(m, st) for m, st in self._states.items() if m.storage is not None and not st.failed]
        # every write first, then the invalidations: a failed write must not have ended a session
        for m, st in server:
            try:
                await self._save_server(m, st)
            except BaseException:
                st.failed = True
                raise
        for m, st in server:
            await self._drop(m, st)

    async def _commit(self, status: int = 200) -> list[Header]:
        """Write the changed sessions and return the headers to add to the response.

        A server error response (5xx) writes nothing: a failed handler's half-done
        change is not kept.
        """
        if not self._states:
            return []
        vary = ", ".join({m.vary: None for m in self._states})
        headers: list[Header] = []
        if status < 500:
            if self._sessions._server_side:
                await self._save_all()
            for m, st in self._states.items():
                if st.failed:
                    continue
                if m.storage is None:
                    self._commit_stateless(m, st, headers)
                else:
                    await self._commit_server(m, st, headers)
        headers.append((b"vary", vary.encode("latin-1")))
        return headers

    def _changed(self, m: Mapping[Any], st: _State) -> bool:
        """Whether the session must be written; values changed in place count too."""
        if st.value is None:
            return st.dirty
        try:
            data = m.serializer.encode(st.value)
        except SerializationError as exc:
            self._refuse(m, st, str(exc), str(exc))  # no bytes to keep: the reason stands for them
            return st.dirty
        if data != st.data and data != st.refused:
            problem = _reads_back(m, data)
            if problem is None:
                st.data, st.dirty = data, True
            else:
                self._refuse(m, st, data, problem)
        return st.dirty

    def _refuse(self, m: Mapping[Any], st: _State, refused: bytes | str, problem: str) -> None:
        """Keep the last good value instead of an in-place change that would not read back;
        say so once per request, not at every save."""
        if refused != st.refused:
            st.refused = refused
            log.error(
                "%s %r: the session was changed in place into a value that would not read "
                "back (%s); the change is not saved, the last good value stays",
                m.transport,
                m.name,
                problem,
            )

    def _stale(self, m: Mapping[Any], last_sent: float, now: float) -> bool:
        """Whether a rolling session is past half its idle time since it was last sent."""
        return m.rolling and m.max_age is not None and now - last_sent > m.max_age / 2

    def _commit_stateless(self, m: Mapping[Any], st: _State, headers: list[Header]) -> None:
        if st.cleared:
            if self._incoming(m):
                headers.append(self._delete(m))
            return
        if st.regen and not st.loaded:
            self._load_stateless(m, st)
        if not st.found and not st.dirty:
            return
        now = self._sessions.clock()
        stale = False
        if st.found and st.expires and m.max_age is not None:
            capped = m.max_lifetime is not None and st.expires >= st.created + m.max_lifetime - 1
            stale = not capped and self._stale(m, st.expires - m.max_age, now)
        if not (self._changed(m, st) or st.reissue or st.regen or stale) or st.data is None:
            return
        if st.sealed is not None and st.sealed[0] == st.data:
            text, lifetime = st.sealed[2], st.sealed[3]
        else:
            text, lifetime = m.seal_stateless(st.data, st.created if st.found else now, now)
            m.check_size(text)
        headers.append(self._send(m, text, lifetime, now))

    async def _save_server(self, m: Mapping[Any], st: _State) -> None:
        if not st.loaded and (st.regen or st.dirty):
            # the ID in the request is only kept if storage knows it (never adopt one)
            await self._load_server(m, st)
        if st.regen:
            st.regen = False
            if st.found and st.id is not None:
                if m.detect_conflicts:
                    await self._confirm_unchanged(m, st)
                st.dead_ids.append(st.id)
                st.id, st.dirty = None, True
        if self._changed(m, st) and st.data is not None:
            await self._write(m, st)

    async def _confirm_unchanged(self, m: Mapping[Any], st: _State) -> None:
        """Compare-and-set the entry onto itself: it fails if another request changed it."""
        assert st.id is not None
        ttl = m.lifetime(st.created, self._sessions.clock())
        if not await m.call_storage("write_if", st.id, st.raw, ttl, expected=st.raw):
            raise SessionConflict(
                f"session {m.name!r} changed in another request since this one read it; "
                "read it again and retry"
            )

    async def _drop(self, m: Mapping[Any], st: _State) -> None:
        while st.dead_ids:  # ended by the handler: a failure must be seen
            await m.call_storage("invalidate", st.dead_ids.pop())
        while st.stale_ids:  # unusable leftovers: storage expiry gets them anyway
            stale = st.stale_ids.pop()
            try:
                await m.call_storage("invalidate", stale)
            except StorageError:
                log.warning("%s %r: could not drop an unusable entry", m.transport, m.name, exc_info=True)

    async def _write(self, m: Mapping[Any], st: _State) -> None:
        assert st.data is not None
        now = self._sessions.clock()
        fresh = st.id is None
        session_id = m.new_id() if st.id is None else st.id
        created = st.created if st.found else now  # a regenerated ID keeps when the session began
        ttl = m.lifetime(created, now)
        record = pack_record(m.name, created, st.data)
        if m.detect_conflicts:
            expected = None if fresh else st.raw
            if not await m.call_storage("write_if", session_id, record, ttl, expected=expected):
                raise SessionConflict(
                    f"session {m.name!r} changed in another request since this one read it; "
                    "read it again and retry"
                )
        elif not fresh and m.compare_and_set:
            # deletion wins: a request still running must not bring back a session that
            # another request ended (logout, regenerate) since this one read it
            if not await m.call_storage("write_if", session_id, record, ttl, expected=st.raw):
                if await m.call_storage("read", session_id) is None:
                    log.debug("%s %r: ended by another request; not written", m.transport, m.name)
                    st.id, st.raw, st.found, st.dirty, st.cleared = None, None, False, False, True
                    return
                await m.call_storage("write", session_id, record, ttl)  # last writer wins
        else:
            await m.call_storage("write", session_id, record, ttl)
        st.id, st.raw, st.created, st.found, st.dirty = session_id, record, created, True, False
        st.sealed = (st.data, created, m.seal_id(session_id), ttl)

    async def _commit_server(self, m: Mapping[Any], st: _State, headers: list[Header]) -> None:
        now = self._sessions.clock()
        if st.sealed is not None and st.id is not None:  # written in this request
            headers.append(self._send(m, f"{st.sealed[2]}.{int(now)}", st.sealed[3], now))
        elif st.cleared:
            if self._incoming(m):
                headers.append(self._delete(m))
        elif st.found and st.id is not None:
            touch = self._stale(m, st.hint, now)
            if touch or st.reissue:
                session_id, ttl = st.id, m.lifetime(st.created, now)
                if touch:
                    try:
                        await m.call_storage("touch", session_id, ttl)
                    except StorageError:
                        if m.on_storage_error == "raise":
                            raise
                        log.warning("%s %r: touch failed", m.transport, m.name, exc_info=True)
                        return
                headers.append(self._send(m, f"{m.seal_id(session_id)}.{int(now)}", ttl, now))

    def _send(self, m: Mapping[Any], text: str, lifetime: float | None, now: float) -> Header:
        if m.attributes is None:
            return (m.header_key, text.encode("latin-1"))
        secure = m.attributes.wants_secure(self._scheme, lambda: _host(self._headers, self._server))
        return (b"set-cookie", m.attributes.set_cookie(text, lifetime, now, secure))

    def _delete(self, m: Mapping[Any]) -> Header:
        if m.attributes is None:
            return (m.header_key, b"")
        secure = m.attributes.wants_secure(self._scheme, lambda: _host(self._headers, self._server))
        return (b"set-cookie", m.attributes.delete_cookie(secure))


def _reads_back(m: Mapping[Any], data: bytes) -> str | None:
    """Why ``data`` would not decode to the session type again; ``None`` when it would."""
    try:
        m.serializer.decode(data)
    except SerializationError as exc:
        return str(exc)
    except Exception as exc:  # a custom serializer, or a type's own __post_init__
        return f"{type(exc).__name__}: {exc}"
    return None


def _is_class(type_: Any) -> bool:
    """Whether ``isinstance`` can check a value against the session type."""
    return isinstance(type_, type) and type_ is not dict and not typing.is_typeddict(type_)


def _host(headers: Any, server: Any) -> str:
    """The request's host name, without the port."""
    for k, v in headers:
        if k == b"host":
            host: str = v.decode("latin-1")
            if host.startswith("["):
                return host[: host.find("]") + 1]
            return host.partition(":")[0]
    return str(server[0]) if server else ""


def _open_id(m: Mapping[Any], text: str) -> tuple[tuple[str, bool] | None, str]:
    """The ID in a server-side value ``<sealed id>.<when it was last sent>``, and the hint.

    The hint is not protected: whatever follows the ID must not lose the session. A
    custom generator's IDs may hold dots themselves: the last dot is tried first, then the first.
    """
    sealed, _, hint = text.rpartition(".")
    opened = m.open_id(sealed) if sealed else None
    if opened is None:
        sealed, _, hint = text.partition(".")
        opened = m.open_id(sealed)
    return opened, hint


def _parse_hint(hint: str) -> float:
    return float(hint) if hint.isascii() and hint.isdigit() and len(hint) <= 12 else 0.0
