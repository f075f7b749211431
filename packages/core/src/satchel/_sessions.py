"""``Sessions`` (the app's mappings) and ``RequestSessions`` (one request's view of them)."""

from __future__ import annotations

import inspect
import logging
import time
import typing
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar, overload

from . import _server, _stateless
from ._codec import RECORD_OVERHEAD
from ._cookies import parse_cookie_header, secure_by_default
from ._exceptions import ConfigError, SerializationError, SessionTooLarge
from ._mapping import Mapping
from ._owners import SessionInfo, check_attributes, list_owned, revoke_owner, revoke_session
from ._state import Phase, State

__all__ = ["Sessions", "RequestSessions"]

log = logging.getLogger("satchel")

T = TypeVar("T")
Key = type[Any] | str
Header = tuple[bytes, bytes]


class Sessions:
    """The session mappings of one app. Names and types must each be unique.

    Examples:
        >>> sessions = satchel.Sessions(
        ...     satchel.cookie(Cart, "CART", transformers=[satchel.Sign(key)]),
        ...     satchel.cookie(Login, "SID", storage="memory://"),
        ... )

    ``clock`` returns Unix seconds; tests may pass their own to move time.

    ``private`` (default ``True``): a response that sets or deletes a session cookie or
    header also gets ``Cache-Control: private``, merged into what the app set (``public``
    and ``s-maxage`` are dropped; ``no-store`` or ``private`` already there are kept), so
    no shared cache hands one visitor's session to another. ``False`` leaves
    ``Cache-Control`` to the app.
    """

    def __init__(
        self, *mappings: Mapping[Any], clock: Callable[[], float] = time.time, private: bool = True
    ) -> None:
        if not mappings:
            raise ConfigError(
                "Sessions() needs at least one mapping: satchel.cookie(...) or satchel.header(...)"
            )
        self.mappings = mappings
        self.clock = clock
        self.private = private
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

    # -- owners, with or without a request -------------------------------------------

    async def list_owned(self, key: Key, owner: str) -> list[SessionInfo]:
        """Every live session of ``owner`` in the mapping of ``key``; newest use first.

        For a mapping made with ``owner=``; works outside a request (a background job,
        an admin script). In a handler, `RequestSessions.list_owned` also marks the
        request's own session.

        Examples:
            >>> for info in await sessions.list_owned(Login, "ada"):
            ...     print(info.handle, info.attributes.get("device"), info.expires)
        """
        return await list_owned(self.mapping(key), owner, self.clock())

    async def revoke_owner(self, key: Key, owner: str, *, keep: str | None = None) -> int:
        """End every session of ``owner`` but the one whose handle is ``keep``; how many.

        Every session of ``owner`` that exists when the call starts is gone when it
        returns, on every worker; a request still running cannot bring one back. A
        sign-in that completes during the call may survive it. Safe to repeat.

        Examples:
            >>> await sessions.revoke_owner(Login, "ada")  # after a password reset
        """
        return await revoke_owner(self.mapping(key), owner, keep)

    async def revoke_session(self, key: Key, owner: str, handle: str) -> bool:
        """End one session of ``owner``, named by its handle; whether it was a live one of theirs.

        A handle of another owner's session ends nothing, so a handle shown in a page
        cannot be used to end someone else's session.
        """
        return await revoke_session(self.mapping(key), owner, handle)

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


class RequestSessions:
    """One request's sessions: what `satchel.sessions_of` returns.

    Nothing is decoded and no storage is called until a session is asked for; at
    response start only the mappings that changed are written.
    """

    __slots__ = ("_headers", "_jar", "_scheme", "_scope_server", "_sessions", "_states")

    def __init__(self, sessions: Sessions, scope: MutableMapping[str, Any]) -> None:
        self._sessions = sessions
        # what the request path needs of the scope, not the scope itself: the scope holds
        # this object, and a cycle would leave every request to the cycle collector
        self._headers = scope.get("headers", ())
        # what decides Secure, kept as it is: most requests send no cookie at all
        self._scheme: str = scope.get("scheme", "http")
        self._scope_server = scope.get("server")
        self._states: dict[Mapping[Any], State] | None = None
        self._jar: dict[str, list[str]] | None = None

    # -- reading the request --------------------------------------------------------

    def _incoming(self, m: Mapping[Any]) -> list[str]:
        if m.transport == "cookie":
            if self._jar is None:
                self._jar = parse_cookie_header([v for k, v in self._headers if k == b"cookie"])
            return self._jar.get(m.name, [])
        key = m.header_key
        return [v.decode("latin-1") for k, v in self._headers if k.lower() == key]

    def _state(self, m: Mapping[Any]) -> State:
        if self._states is None:
            self._states = {}
        st = self._states.get(m)
        if st is None:
            st = self._states[m] = State()
        return st

    def _decode(self, m: Mapping[Any], data: bytes) -> Any:
        try:
            return m.serializer.decode(data)
        except SerializationError:
            log.debug("%s %r: stored value does not decode to %s", m.transport, m.name, m.type.__name__)
            return None

    async def _load(self, m: Mapping[Any], st: State) -> None:
        if m.storage is None:
            _stateless.load(self, m, st)
        else:
            await _server.load(self, m, st)

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
        if st.phase is Phase.UNREAD:
            await self._load(m, st)
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

    def set(self, value: object, *, key: Key | None = None, attributes: dict[str, str] | None = None) -> None:
        """Make ``value`` the session of its type (or of ``key``, a type or name).

        ``attributes`` (server-side only) are recorded with the session for an account
        page (`list_owned`), e.g. ``{"device": user_agent[:200]}``; they stay until
        replaced by another ``set(..., attributes=...)``.

        Raises here, in the handler: `SessionTooLarge` when the value would not fit
        its cookie, header or storage; `SerializationError` when it cannot be encoded or
        would not decode back to the session type; `TypeError` for ``None`` (use
        `clear`) or a value of another type than ``key``'s; `ValueError` when the
        mapping's ``owner=`` gives no usable owner for it, or ``attributes`` are too many
        or too long.
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
        where = f"set() of {m.transport} {m.name!r}"
        if m.owner is not None:
            m.owner_of(value)
        if attributes is not None:
            if m.storage is None:
                raise TypeError(f"{where}: attributes are recorded in storage; this mapping is stateless")
            attributes = check_attributes(attributes, where)
        if m.storage is None:
            _stateless.seal(self, m, st, data)
        else:
            limit = m.value_limit
            overhead = RECORD_OVERHEAD + sum(
                len(k) + len(v) for k, v in (attributes or st.attributes or {}).items()
            )
            if len(data) + overhead > limit:  # the record adds its header to the data
                raise SessionTooLarge(m.name, len(data) + overhead, limit, storage=m.storage)
            if attributes is not None:
                st.attributes = attributes
        st.value, st.data, st.dirty = value, data, True
        if st.phase is Phase.CLEARED:
            st.phase = Phase.ABSENT  # a new session after the one ended (sign-in)

    def clear(self, key: Key) -> None:
        """End the session: the cookie is deleted and its storage entry invalidated.

        On a storage with compare-and-set, no request still running can bring it back.
        """
        m = self._sessions.mapping(key)
        st = self._state(m)
        if m.storage is not None:
            _server.clear(self, m, st)
        else:
            st.end()

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

    # -- owners -----------------------------------------------------------------------

    async def handle(self, key: Key) -> str | None:
        """The handle of this request's session (see `list_owned`), or ``None`` without one."""
        m = self._sessions.mapping(key)
        st = self._state(m)
        if st.phase is Phase.UNREAD:
            await self._load(m, st)
        return st.key if st.found else None

    async def _owner(self, key: Key) -> tuple[Mapping[Any], str | None, str | None]:
        m = self._sessions.mapping(key)
        m.require_owners()
        value = await self.get(key)
        return m, (m.owner_of(value) if value is not None else None), await self.handle(key)

    async def list_owned(self, key: Key) -> list[SessionInfo]:
        """Every live session of this session's owner, this one marked ``current``;
        empty when the request has no session. Newest use first."""
        m, owner, current = await self._owner(key)
        return [] if owner is None else await list_owned(m, owner, self._sessions.clock(), current)

    async def revoke_owner(self, key: Key, *, keep_current: bool = True) -> int:
        """End every session of this session's owner ("sign out other devices"); how many.

        With ``keep_current=False`` this request's session ends too (its cookie is deleted).
        """
        m, owner, current = await self._owner(key)
        if owner is None:
            return 0
        ended = await revoke_owner(m, owner, keep=current if keep_current else None)
        if not keep_current:
            self.clear(key)
        return ended

    async def revoke_session(self, key: Key, handle: str) -> bool:
        """End one session of this session's owner, named by a handle from `list_owned`.

        Returns whether it was a live session of this owner (a handle of someone else's
        session ends nothing).
        """
        m, owner, current = await self._owner(key)
        if owner is None:
            return False
        if handle == current:
            self.clear(key)
            return True
        return await revoke_session(m, owner, handle)

    # -- response start ---------------------------------------------------------------

    async def _save_all(self) -> None:
        if not self._states:
            return
        server = [(m, st) for m, st in self._states.items() if m.storage is not None and not st.failed]
        # every write first, then the endings: a failed write must not have ended a session
        for m, st in server:
            try:
                await _server.save(self, m, st)
            except BaseException:
                st.failed = True
                raise
        for m, st in server:
            try:
                await _server.drop(m, st)
            except BaseException:
                st.failed = True
                raise

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
                    _stateless.commit(self, m, st, headers)
                else:
                    await _server.commit(self, m, st, headers)
        if headers and self._sessions.private:  # a session travels: no shared cache may keep it
            headers.append((b"cache-control", b"private"))
        headers.append((b"vary", vary.encode("latin-1")))
        return headers

    def _changed(self, m: Mapping[Any], st: State) -> bool:
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

    def _refuse(self, m: Mapping[Any], st: State, refused: bytes | str, problem: str) -> None:
        """Keep the last good value instead of an in-place change that would not read
        back or no longer fits; say so once per request, not at every save."""
        if refused != st.refused:
            st.refused = refused
            log.error(
                "%s %r: the session was changed in place into a value that cannot be saved "
                "(%s); the change is not saved, the last good value stays",
                m.transport,
                m.name,
                problem,
            )

    def _stale(self, m: Mapping[Any], last_sent: float, now: float) -> bool:
        """Whether a rolling session is past half its idle time since it was last sent."""
        return m.rolling and m.max_age is not None and now - last_sent > m.max_age / 2

    def _send(self, m: Mapping[Any], text: str, lifetime: float | None, now: float) -> Header:
        if m.attributes is None:
            return (m.header_key, text.encode("latin-1"))
        secure = m.attributes.wants_secure(secure_by_default(self._scheme, self._scope_server))
        return (b"set-cookie", m.attributes.set_cookie(text, lifetime, now, secure))

    def _delete(self, m: Mapping[Any]) -> Header:
        if m.attributes is None:
            return (m.header_key, b"")
        secure = m.attributes.wants_secure(secure_by_default(self._scheme, self._scope_server))
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
