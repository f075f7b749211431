"""``Sessions`` (the app's mappings) and ``RequestSessions`` (one request's view of them)."""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, overload

from . import _server, _stateless
from ._codec import RECORD_OVERHEAD
from ._cookies import cookie_values, secure_by_default
from ._exceptions import ConfigError, SatchelError, SerializationError, SessionTooLarge
from ._mapping import Mapping
from ._owners import SessionInfo, check_attributes, list_owned, revoke_owner, revoke_session
from ._state import ABSENT, CLEARED, SUPERSEDED, UNREAD, State

if typing.TYPE_CHECKING:
    from ._detached import DetachedSessions

__all__ = ["Sessions", "RequestSessions"]

log = logging.getLogger("satchel")

T = TypeVar("T")
Key = type[Any] | str
Header = tuple[bytes, bytes]
_PRIVATE = (b"cache-control", b"private")


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

    ``request_session`` (a type or name; default ``None``): the mapping, of type ``dict``
    or ``dict[str, Any]``, offered as Starlette's ``request.session`` (``scope["session"]``)
    to libraries that use it. It is loaded before the app runs when the request carries
    it, and saved at response start when its serialized value changed; emptied, the
    session is cleared. See docs/request-session.md.
    """

    def __init__(
        self,
        *mappings: Mapping[Any],
        clock: Callable[[], float] = time.time,
        private: bool = True,
        request_session: Key | None = None,
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
        self._offered = None if request_session is None else _offered_mapping(self, request_session)

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

    # -- outside a request -----------------------------------------------------------

    def detached(
        self,
        *,
        cookies: typing.Mapping[str, str] | typing.Iterable[tuple[str, str]] = (),
        headers: typing.Mapping[str, str] | typing.Iterable[tuple[str, str]] = (),
        ids: typing.Mapping[Key, str] | None = None,
        scheme: str = "https",
        server: tuple[str, int | None] | None = None,
    ) -> DetachedSessions:
        """The sessions a request with these cookies and headers would carry, outside one.

        For a background job, a websocket that outlives its handshake, an admin script:
        the same handler API (`RequestSessions.get`, ``set``, ``clear``, ``regenerate``,
        ...) and, at the end of ``async with`` (or at `DetachedSessions.commit`), the same
        code as a response start: what changed is written and ``headers`` holds what to
        send back (``Set-Cookie``, or a header mapping's header). A block that raises
        writes nothing.

        Args:
            cookies: cookie name to value, as a browser would send them (a value that is
                malformed, tampered with or expired reads as no session).
            headers: header name to value, for header mappings.
            ids: a server-side mapping's type or name to a session ID (as
                `RequestSessions.session_id` gives it), to open that session directly.
            scheme: the request's scheme, ``"https"`` or ``"http"``; with ``server`` it
                decides ``Secure`` for ``secure=None``, as the ASGI scope's keys do.
            server: the ASGI scope's ``server`` (host, port); ``None`` for a real server.

        Examples:
            >>> async with sessions.detached(cookies={"SID": cookie_value}) as s:
            ...     login = await s.get(Login)
            ...     s.clear(Login)
            >>> s.headers
            [('set-cookie', 'SID=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; ...')]
        """
        from ._detached import DetachedSessions

        return DetachedSessions(self, cookies=cookies, headers=headers, ids=ids, scheme=scheme, server=server)

    async def aclose(self) -> None:
        """Close every storage (each once, however many mappings share it); the middleware
        calls this at lifespan shutdown.

        Not final: closing releases what the storages hold (connections, files, pools),
        and a storage used afterwards opens again, so an app can start and stop any number
        of times. One storage failing to close does not keep the others open; its error
        is raised after all were tried.
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
        """Nothing to open (storages open on first use); ``async with sessions:`` closes
        them on the way out, and may be entered again afterwards."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def lifespan(self, app: object = None) -> AbstractAsyncContextManager[None]:
        """An app's lifespan that closes the storages at shutdown, for frameworks whose
        middleware never sees the lifespan (Litestar's ``DefineMiddleware``).

        ``app`` is taken and ignored, so the method itself fits Starlette's and FastAPI's
        ``lifespan=`` and an item of Litestar's ``lifespan=[...]``; inside a lifespan of
        your own, write ``async with sessions:`` instead. Where a framework takes
        shutdown callbacks, pass `aclose` (Litestar's ``on_shutdown=[sessions.aclose]``,
        Quart's ``app.after_serving(sessions.aclose)``).

        Examples:
            >>> app = Litestar(route_handlers=[...], lifespan=[sessions.lifespan],
            ...                middleware=[DefineMiddleware(satchel.SessionMiddleware, sessions=sessions)])
        """
        return _closing(self)


@contextlib.asynccontextmanager
async def _closing(sessions: Sessions) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await sessions.aclose()


class RequestSessions:
    """One request's sessions: what `satchel.sessions_of` returns.

    Nothing is decoded and no storage is called until a session is asked for; at
    response start only the mappings that changed are written.
    """

    # defaults on the class: a request sets only what it uses
    _states: dict[Mapping[Any], State] | None = None
    _jar: dict[str, list[str]] | None = None  # every cookie, given whole (detached sessions)
    _offered: dict[str, Any] | None = None  # the dict given as request.session
    # the scope that holds it, while the app runs (the middleware lets go of it after):
    # save() takes in what the app did to request.session
    _offered_in: MutableMapping[str, Any] | None = None

    def __init__(self, sessions: Sessions, scope: MutableMapping[str, Any]) -> None:
        self._sessions = sessions
        # what the request path needs of the scope, not the scope itself: the scope holds
        # this object, and a cycle would leave every request to the cycle collector
        self._headers = scope.get("headers", ())
        # what decides Secure, kept as it is: most requests send no cookie at all
        self._scheme: str = scope.get("scheme", "http")
        self._scope_server = scope.get("server")

    # -- reading the request --------------------------------------------------------

    def _incoming(self, m: Mapping[Any]) -> list[str]:
        if m.transport == "cookie":
            if self._jar is not None:  # given whole (detached sessions)
                return self._jar.get(m.name, [])
            # only the name asked for, each time (once per mapping, but for an ended session's
            # deletion): splitting every cookie out into a jar cost more than the rest of the read
            return cookie_values(self._headers, m.name)
        key = m.header_key
        return [v.decode("latin-1") for k, v in self._headers if k.lower() == key]

    def _state(self, m: Mapping[Any]) -> State:
        """This request's state of ``m``, made on first use (get and set run this each time)."""
        states = self._states
        if states is None:  # the request's first session: most requests have only one
            st = State()
            self._states = {m: st}
            return st
        found = states.get(m)
        if found is None:
            found = states[m] = State()
        return found

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

    # -- request.session ------------------------------------------------------------

    async def _offer(self, m: Mapping[Any], scope: MutableMapping[str, Any]) -> None:
        """Give the app ``request.session`` (``scope["session"]``): the session if the
        request carries one (no storage call when it does not), else a new empty dict."""
        st = self._state(m)  # read or not, the response varies on it: the app may read it
        if self._incoming(m):
            await self._load(m, st)
        else:
            st.phase = ABSENT
        offered: dict[str, Any] = st.value if st.found else {}
        self._offered = scope["session"] = offered
        self._offered_in = scope

    def _adopt(self, m: Mapping[Any], current: object) -> None:
        """At response start, and at each `save` before it: what the app did to
        ``request.session`` becomes the session, unless the handler's own ``set`` or
        ``clear`` came after the load (they stand).

        ``current`` is what ``scope["session"]`` holds now (the app may have replaced the
        dict). A changed dict is saved as any value changed in place is (its serialized
        form is compared with what was loaded, so nested changes count); an emptied one
        ends the session; one that cannot be saved leaves the last good value.
        """
        offered = self._offered
        st = self._state(m)
        if offered is None or st.phase in (CLEARED, SUPERSEDED):
            return
        # the session is still what was loaded, or what an earlier adopt made of it
        if st.value is not None and st.value is not offered:
            return
        value = current if isinstance(current, dict) else offered
        self._offered = value  # what the next adopt, if any, starts from
        if st.found:
            if value:
                st.value = value
            else:
                self.clear(m.name)
        elif value:
            try:
                self.set(value, key=m.name)
            except (SatchelError, TypeError, ValueError) as exc:
                self._refuse(m, st, str(exc), str(exc))

    # -- the handler's API ----------------------------------------------------------

    @overload
    async def get(self, key: type[T]) -> T | None: ...
    @overload
    async def get(self, key: str) -> object | None: ...
    async def get(self, key: Key) -> object | None:
        """The session of this type (or mapping name), or ``None`` when absent or invalid."""
        m = self._sessions._by_type.get(key) or self._sessions.mapping(key)
        lane = m._lane
        if lane is not None and self._states is None:  # the request's first look, on the fused path
            st = State()
            self._states = {m: st}
            lane.read(self, st)
            return st.value  # type: ignore[no-any-return]
        st = self._state(m)
        if st.phase is UNREAD:  # as _load, with fewer calls on the usual paths
            if m._lane is not None:
                m._lane.read(self, st)
            elif m.storage is None:
                _stateless.load(self, m, st)
            else:
                await _server.load(self, m, st)
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
        if key is None:
            m = self._sessions._by_type.get(type(value)) or self._sessions.mapping(type(value))
        else:
            m = self._sessions.mapping(key)
            if _is_class(m.type) and not isinstance(value, m.type):
                raise TypeError(
                    f"set(..., key={key!r}) needs a {m.type.__name__}, got {type(value).__name__}"
                )
        states = self._states
        st = states.get(m) if states is not None else None
        if st is None:
            st = self._state(m)
        lane = m._lane
        if lane is not None and attributes is None and lane.set(self, st, value):
            return  # the common configuration's fused path (_lane.py) sealed it
        data = m.serializer.encode(value)
        problem = _reads_back(m, data)
        if problem is not None:  # a Struct, dataclass or TypedDict is not checked when built
            raise SerializationError(
                f"{type(value).__name__} value for {m.transport} {m.name!r} would not read back "
                f"({problem}); fix the value before set(), or the session would be lost"
            )
        if m.owner is not None:
            m._owner_of(value)
        if attributes is not None:
            where = f"set() of {m.transport} {m.name!r}"
            if m.storage is None:
                raise TypeError(f"{where}: attributes are recorded in storage; this mapping is stateless")
            attributes = check_attributes(attributes, where)
        if m.storage is None:
            _stateless.seal(self, m, st, data)
        else:
            limit = m.value_limit
            recorded = attributes or st.attributes
            overhead = RECORD_OVERHEAD
            if recorded:
                overhead += sum(len(k) + len(v) for k, v in recorded.items())
            if len(data) + overhead > limit:  # the record adds its header to the data
                raise SessionTooLarge(m.name, len(data) + overhead, limit, storage=m.storage)
            if attributes is not None:
                st.attributes = attributes
        st.value, st.data, st.dirty = value, data, True
        if st.phase is CLEARED:
            st.phase = ABSENT  # a new session after the one ended (sign-in)

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

        What the app did to ``request.session`` so far is taken in first, as at response
        start. A mapping whose save failed is not written again at response start.
        """
        m, scope = self._sessions._offered, self._offered_in
        # server-side only: a stateless session has nothing to write before its header
        if m is not None and scope is not None and m.storage is not None:
            self._adopt(m, scope.get("session"))
        await self._save_all()

    # -- owners -----------------------------------------------------------------------

    async def handle(self, key: Key) -> str | None:
        """The handle of this request's session (see `list_owned`), or ``None`` without one."""
        m = self._sessions.mapping(key)
        st = self._state(m)
        if st.phase is UNREAD:
            await self._load(m, st)
        return st.key if st.found else None

    async def session_id(self, key: Key) -> str | None:
        """The ID of this request's server-side session (``None`` without one): what
        `Sessions.detached` takes as ``ids=`` to open it later, outside a request.

        The ID is a credential, as the cookie is: keep it where you would keep the cookie,
        and never log it. A session set in this request has its ID once it is saved.
        """
        m = self._sessions.mapping(key)
        if m.storage is None:
            raise ConfigError(
                f"{m!r} is stateless: it has no session ID; its cookie or header value is the session"
            )
        st = self._state(m)
        if st.phase is UNREAD:
            await self._load(m, st)
        return st.id if st.found else None

    async def _owner(self, key: Key) -> tuple[Mapping[Any], str | None, str | None]:
        m = self._sessions.mapping(key)
        m._require_owners()
        value = await self.get(key)
        return m, (m._owner_of(value) if value is not None else None), await self.handle(key)

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

    def _commit_lane(self, status: int) -> list[Header] | None:
        """`_commit`'s headers, when the request's one session has a fused path (_lane.py)
        and the response is one it takes; ``None``: `_commit` decides."""
        states = self._states
        if states is None or len(states) != 1:
            return None
        ((m, st),) = states.items()
        lane = m._lane
        return None if lane is None else lane.commit(self, st, status)

    async def _commit(self, status: int = 200) -> list[Header]:
        """Write the changed sessions and return the headers to add to the response.

        A server error response (5xx) writes nothing: a failed handler's half-done
        change is not kept.
        """
        states = self._states
        if not states:
            return []
        headers: list[Header] = []
        if status < 500:
            if self._sessions._server_side:
                await self._save_all()
            for m, st in states.items():
                if st.failed:
                    continue
                if m.storage is None:
                    _stateless.commit(self, m, st, headers)
                else:
                    await _server.commit(self, m, st, headers)
        if headers and self._sessions.private:  # a session travels: no shared cache may keep it
            headers.append(_PRIVATE)
        if len(states) == 1:
            for m in states:
                headers.append(m._vary_header)
        else:
            headers.append((b"vary", ", ".join({m.vary: None for m in states}).encode("latin-1")))
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
        attributes = m.attributes
        if attributes is None:
            return (m.header_key, text.encode("latin-1"))
        secure = attributes.secure
        if secure is None:  # as wants_secure(), without the call
            secure = secure_by_default(self._scheme, self._scope_server)
        return (b"set-cookie", attributes.set_cookie(text, lifetime, now, secure))

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


def _offered_mapping(sessions: Sessions, key: Key) -> Mapping[Any]:
    """The mapping ``Sessions(request_session=key)`` names, checked: a ``dict`` of string keys,
    since the libraries that use ``request.session`` put whatever they need in it."""
    m = sessions.mapping(key)
    args = typing.get_args(m.type)
    if not (
        m.type is dict
        or (typing.get_origin(m.type) is dict and args[:1] == (str,) and args[1] in (Any, object))
    ):
        raise ConfigError(
            f"request_session={key!r}: request.session is a dict that libraries fill with keys of "
            f"their own, and {m!r} holds a {getattr(m.type, '__name__', m.type)!r}; map it as "
            f"satchel.cookie(dict, {m.name!r}, ...) (or dict[str, Any])"
        )
    return m


def _is_class(type_: Any) -> bool:
    """Whether ``isinstance`` can check a value against the session type."""
    return isinstance(type_, type) and type_ is not dict and not typing.is_typeddict(type_)


def require_sessions(value: object, who: str) -> Sessions:
    """``value`` if it is a `Sessions`; else the `ConfigError` that says how to make one."""
    if not isinstance(value, Sessions):
        raise ConfigError(
            f"{who} needs a satchel.Sessions, got {type(value).__name__}; "
            "wrap your mappings: satchel.Sessions(satchel.cookie(...), ...)"
        )
    return value
