"""Quart: one call gives an app its sessions; handlers reach them with ``current_sessions()``.

Examples:
    >>> app = Quart(__name__)
    >>> satchel.integrations.quart.install(app, sessions)
    >>> @app.get("/cart")
    ... async def show() -> list[str]:
    ...     cart = await current_sessions().get(Cart)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Quart, has_request_context, has_websocket_context, request, websocket

from .._exceptions import ConfigError
from .._middleware import SCOPE_KEY, SessionMiddleware, sessions_of
from .._sessions import RequestSessions, Sessions

__all__ = ["install", "current_sessions"]


def install(app: Quart, sessions: Sessions) -> None:
    """Wrap ``app.asgi_app`` in `satchel.SessionMiddleware`.

    ``app`` stays the app (``app.run()``, ``app.test_client()`` and an ASGI server serving
    ``app`` all go through the sessions); the lifespan passes through, so the storages are
    closed when the server shuts the app down. Quart's own ``session`` is left alone.
    """
    # Quart types its ASGI callables with its own scope and event types: the same protocol
    inner: Any = app.asgi_app
    wrapped: Any = SessionMiddleware(inner, sessions)
    app.asgi_app = wrapped  # type: ignore[method-assign] # what Quart's docs say to do


def current_sessions() -> RequestSessions:
    """The sessions of the request or websocket being handled.

    Raises:
        ConfigError: outside a request or websocket context, or when the app was not
            given its sessions with `install`.
    """
    scope: Mapping[str, object]
    if has_websocket_context():
        scope = websocket.scope
    elif has_request_context():
        scope = request.scope
    else:
        raise ConfigError(
            "current_sessions() needs a request or websocket being handled; "
            "in a background task, pass the values it needs instead"
        )
    if SCOPE_KEY not in scope:
        raise ConfigError(
            "no sessions on this request: give the app its sessions with "
            "satchel.integrations.quart.install(app, sessions)"
        )
    return sessions_of(scope)
