"""Starlette: one call gives an app its sessions, lifespan included.

Examples:
    >>> app = Starlette(routes=[...])
    >>> satchel.integrations.starlette.install(app, sessions)
    >>> async def view(request: Request) -> Response:
    ...     cart = await satchel.sessions_of(request).get(Cart)
"""

from __future__ import annotations

from starlette.applications import Starlette

from .._middleware import SessionMiddleware
from .._sessions import Sessions

__all__ = ["install"]


def install(app: Starlette, sessions: Sessions) -> None:
    """Add `satchel.SessionMiddleware` to ``app``, outermost of the app's own middleware.

    ``app`` stays the app: serve it and test it as before. Handlers and websocket
    endpoints reach their sessions with ``satchel.sessions_of(request)`` (or
    ``sessions_of(websocket)``); the lifespan passes through the middleware, so the
    storages are closed when the server shuts the app down. Call it before the app
    serves its first request, as for any Starlette middleware.
    """
    app.add_middleware(SessionMiddleware, sessions=sessions)
