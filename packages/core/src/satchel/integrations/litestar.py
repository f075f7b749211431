"""Litestar: one plugin gives an app its sessions, as middleware and as dependencies.

Examples:
    >>> app = Litestar(
    ...     route_handlers=[...],
    ...     plugins=[SatchelPlugin(sessions)],
    ...     dependencies={"login": session(Login), "cart": session(Cart, required=False)},
    ... )
    >>> @get("/me")
    ... async def me(login: Login, cart: Cart | None, sessions: RequestSessions) -> str: ...
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.plugins import InitPlugin
from litestar.routes import HTTPRoute, WebSocketRoute
from litestar.types import ASGIApp, Scope

from .._exceptions import ConfigError
from .._middleware import SessionMiddleware, sessions_of
from .._sessions import RequestSessions, Sessions, require_sessions

__all__ = ["SatchelPlugin", "session", "SessionRequired"]


class SessionRequired(NotAuthorizedException):
    """Raised by a required session dependency when the session is absent: 401 by default.

    An app that wants something else registers an exception handler for it
    (``exception_handlers={SessionRequired: ...}``). ``key`` is the session type asked for.
    """

    def __init__(self, key: type[Any], status_code: int = 401, detail: str = "sign-in required") -> None:
        super().__init__(detail=detail, status_code=status_code)
        self.key = key


Reader = Callable[..., Coroutine[Any, Any, Any]]
# the session type each provider built here reads, for the plugin's check at startup
_KEYS: dict[object, type[Any]] = {}


async def _request_sessions(scope: Scope) -> RequestSessions:
    # ``scope`` is the name Litestar gives the connection's scope, for HTTP and websockets
    return sessions_of(scope)


def session(
    key: type[Any], *, required: bool = True, status_code: int = 401, detail: str = "sign-in required"
) -> Provide:
    """A provider of the request's ``key`` session, for ``dependencies={...}``.

    Declare it at any layer (app, router, controller, handler); the handler's parameter
    of that name gets the value.

    Args:
        key: the session type, as mapped in `satchel.Sessions`.
        required: when ``True`` (default) an absent session answers ``status_code``
            (`SessionRequired`); when ``False`` the value is ``None`` (annotate the
            parameter ``Cart | None``).
        status_code: the answer when a required session is absent.
        detail: the answer's ``detail``.

    Examples:
        >>> dependencies = {"login": session(Login), "cart": session(Cart, required=False)}
    """

    async def read(scope: Scope) -> Any:
        value = await sessions_of(scope).get(key)
        if value is None and required:
            raise SessionRequired(key, status_code, detail)
        return value

    read.__name__ = read.__qualname__ = f"satchel_session_{key.__name__}"
    _KEYS[read] = key
    return Provide(read)


class SatchelPlugin(InitPlugin):
    """Give a Litestar app its sessions: ``Litestar(..., plugins=[SatchelPlugin(sessions)])``.

    It adds `satchel.SessionMiddleware` before the app's own middleware (so theirs see the
    sessions too), provides the request's `satchel.RequestSessions` to every handler
    parameter named ``dependency_key`` (``sessions`` by default), checks at startup that
    every `session` provider asks for a mapped type (else startup fails with a
    `satchel.ConfigError` naming the handler and the mapped types), and closes the
    storages at shutdown.

    Args:
        sessions: the app's mappings.
        dependency_key: the parameter name the request's sessions are provided under.
    """

    __slots__ = ("dependency_key", "sessions")

    def __init__(self, sessions: Sessions, *, dependency_key: str = "sessions") -> None:
        self.sessions = require_sessions(sessions, "SatchelPlugin")
        self.dependency_key = dependency_key

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add the middleware, the dependency and the startup and shutdown hooks."""
        app_config.middleware.insert(0, self._wrap)
        app_config.dependencies[self.dependency_key] = Provide(_request_sessions)
        app_config.signature_namespace["RequestSessions"] = RequestSessions
        app_config.on_startup.append(self._check)
        app_config.on_shutdown.append(self._close)
        return app_config

    def _wrap(self, app: ASGIApp) -> ASGIApp:
        # Litestar types its ASGI callables with its own scope and event types: the same protocol
        inner: Any = app
        wrapped: Any = SessionMiddleware(inner, self.sessions)
        return wrapped  # type: ignore[no-any-return]

    def _check(self, app: Litestar) -> None:
        for where, key in _asked(app):
            try:
                self.sessions.mapping(key)
            except ConfigError as exc:
                raise ConfigError(f"{where} asks for the session type {key.__name__}: {exc}") from None

    async def _close(self) -> None:
        # Litestar runs its lifespan outside the middleware, so the middleware never sees it
        await self.sessions.aclose()


def _asked(app: Litestar) -> Iterator[tuple[str, type[Any]]]:
    """(handler, session type) for every `session` provider a handler can be given."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            handlers: list[Any] = list(route.route_handlers)
        elif isinstance(route, WebSocketRoute):
            handlers = [route.route_handler]
        else:
            continue
        for handler in handlers:
            for provide in handler.resolve_dependencies().values():
                key = _key_of(provide.dependency)
                if key is not None:
                    yield f"the handler {handler.handler_name!r} ({route.path})", key


def _key_of(call: object) -> type[Any] | None:
    try:
        return _KEYS.get(call)
    except TypeError:  # an unhashable callable (a dataclass instance) is none of ours
        return None
