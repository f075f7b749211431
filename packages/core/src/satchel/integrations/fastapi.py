"""FastAPI: the request's sessions and session values as typed dependencies.

Examples:
    >>> from satchel.integrations.fastapi import OptionalSession, Session, SessionsDep, install
    >>> @api.get("/me")
    ... async def me(login: Session[Login], cart: OptionalSession[Cart], s: SessionsDep) -> str:
    ...     return login.user
    >>> install(api, sessions)

Every dependency takes a `starlette.requests.HTTPConnection`, so one serves HTTP and
WebSocket routes alike, and none adds a parameter to the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

from fastapi import Depends, FastAPI, HTTPException
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection

from .._exceptions import ConfigError
from .._middleware import Message, Receive, Scope, Send, SessionMiddleware, sessions_of
from .._sessions import RequestSessions, Sessions

__all__ = ["SessionsDep", "Session", "OptionalSession", "session", "SessionRequired", "install"]

T = TypeVar("T")


async def _request_sessions(connection: HTTPConnection) -> RequestSessions:
    # async: FastAPI runs a plain def dependency in a worker thread, which costs far more
    return sessions_of(connection)


SessionsDep = Annotated[RequestSessions, Depends(_request_sessions)]
"""The request's `satchel.RequestSessions`: ``async def view(s: SessionsDep)``."""


class SessionRequired(HTTPException):
    """Raised by a required session dependency when the session is absent: 401 by default.

    An app that wants something else (a redirect to its sign-in page) registers a handler:
    ``@api.exception_handler(SessionRequired)``. ``key`` is the session type asked for.
    """

    def __init__(self, key: type[Any], status_code: int = 401, detail: str = "sign-in required") -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.key = key


Reader = Callable[[HTTPConnection], Coroutine[Any, Any, Any]]
# one callable per distinct ask, so FastAPI's per-request cache shares it between the
# dependencies of one route that ask the same
_READERS: dict[tuple[type[Any], bool, int, str], Reader] = {}
# the session type each of them reads, for install()'s check of the routes
_KEYS: dict[object, type[Any]] = {}


def _reader(key: type[Any], required: bool, status_code: int, detail: str) -> Reader:
    found = _READERS.get((key, required, status_code, detail))
    if found is None:
        found = _READERS[key, required, status_code, detail] = _new_reader(key, required, status_code, detail)
        _KEYS[found] = key
    return found


def _new_reader(key: type[Any], required: bool, status_code: int, detail: str) -> Reader:
    async def read(connection: HTTPConnection) -> Any:
        value = await sessions_of(connection).get(key)
        if value is None and required:
            raise SessionRequired(key, status_code, detail)
        return value

    read.__name__ = read.__qualname__ = f"satchel_session_{key.__name__}"
    return read


def session(
    key: type[T], *, required: bool = True, status_code: int = 401, detail: str = "sign-in required"
) -> Any:
    """A dependency giving the request's ``key`` session, for ``Annotated[...]``.

    Args:
        key: the session type, as mapped in `satchel.Sessions`.
        required: when ``True`` (default) an absent session answers ``status_code``
            (`SessionRequired`); when ``False`` the value is ``None``.
        status_code: the answer when a required session is absent.
        detail: the answer's ``detail``.

    Examples:
        >>> Admin = Annotated[Login, session(Login, status_code=403, detail="admins only")]
        >>> async def view(login: Admin) -> str: ...
    """
    return Depends(_reader(key, required, status_code, detail))


if TYPE_CHECKING:
    Session = Annotated[T, "the request's session of type T; absent: 401"]
    OptionalSession = Annotated[Optional[T], "the request's session of type T, or None"]  # noqa: UP045 - a generic alias needs the subscripted form on 3.10
else:

    class Session:
        """``login: Session[Login]``: the request's ``Login``; when absent, 401.

        For type checkers ``Session[Login]`` is ``Login``. Another status code: use
        ``Annotated[Login, session(Login, status_code=...)]``.
        """

        def __class_getitem__(cls, key: type[Any]) -> Any:
            return Annotated[key, session(key)]

    class OptionalSession:
        """``cart: OptionalSession[Cart]``: the request's ``Cart``, or ``None`` when absent.

        For type checkers ``OptionalSession[Cart]`` is ``Cart | None``.
        """

        def __class_getitem__(cls, key: type[Any]) -> Any:
            return Annotated[Optional[key], session(key, required=False)]  # noqa: UP045 - key is a runtime value


def install(app: FastAPI, sessions: Sessions) -> None:
    """Give ``app`` its sessions: adds the middleware and checks the routes at startup.

    The app stays the app (serve it, test it, read its OpenAPI schema as before). At
    startup (or at the first request, when the server runs no lifespan) every route whose
    dependencies ask for a session type that ``sessions`` does not map makes startup fail
    with a `satchel.ConfigError` naming the route and the mapped types. Storages are
    closed at shutdown.

    Examples:
        >>> api = FastAPI()
        >>> satchel.integrations.fastapi.install(api, sessions)
    """
    app.add_middleware(
        _CheckedSessionMiddleware, sessions=sessions, check=lambda: _check_routes(app, sessions)
    )


class _CheckedSessionMiddleware(SessionMiddleware):
    """`satchel.SessionMiddleware` that runs ``check`` once, before the app serves anything."""

    def __init__(self, app: Any, sessions: Sessions, check: Callable[[], None]) -> None:
        super().__init__(app, sessions)
        self._check: Callable[[], None] | None = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._check is not None:
            if scope["type"] == "lifespan":
                receive = await self._check_at_startup(receive, send)
            else:
                self._check()  # raises until the routes are fixed
            self._check = None
        await super().__call__(scope, receive, send)

    async def _check_at_startup(self, receive: Receive, send: Send) -> Receive:
        """Check on the server's startup message; a failure is reported as the protocol
        says (the server then refuses to start), then raised."""
        first = await receive()
        if first["type"] == "lifespan.startup" and self._check is not None:
            try:
                self._check()
            except ConfigError as exc:
                await send({"type": "lifespan.startup.failed", "message": f"satchel: {exc}"})
                raise
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return first

        return replay


def _check_routes(app: FastAPI, sessions: Sessions) -> None:
    for where, key in _asked(app):
        try:
            sessions.mapping(key)
        except ConfigError as exc:
            raise ConfigError(f"{where} asks for the session type {key.__name__}: {exc}") from None


def _asked(app: FastAPI) -> Iterator[tuple[str, type[Any]]]:
    """(route, session type) for every session dependency of every route, nested ones too."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            where = f"the route {'/'.join(sorted(route.methods or ()))} {route.path}"
        elif isinstance(route, APIWebSocketRoute):
            where = f"the websocket route {route.path}"
        else:
            continue
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            key = _KEYS.get(dependant.call)  # FastAPI's own cache hashes every dependency
            if key is not None:
                yield where, key
            pending.extend(dependant.dependencies)
