"""``SessionMiddleware`` (ASGI 3) and ``sessions_of``: where a request meets its sessions."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._exceptions import ConfigError
from ._mapping import Mapping
from ._sessions import RequestSessions, Sessions, require_sessions

__all__ = ["SessionMiddleware", "sessions_of", "SCOPE_KEY"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE_KEY = "satchel.sessions"

log = logging.getLogger("satchel")


class SessionMiddleware:
    """ASGI middleware that gives every http and websocket request its sessions.

    Nothing is read until the handler asks; at response start (``http.response.start``
    or ``websocket.accept``) the changed sessions are written and their headers added.
    Storages are closed when the server shuts the app down (lifespan), each time it does:
    a storage opens again on its next use, so the same app can start again. An app that
    does not handle lifespan itself (it returns, or raises, without reading a lifespan
    message) still gets it: the middleware answers the server and closes the storages.

    Examples:
        >>> app = satchel.SessionMiddleware(app, sessions)
    """

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = require_sessions(sessions, "SessionMiddleware")
        # whether a response may be answered by a mapping's fused path (_lane.py): not
        # when request.session is offered (its adoption runs first), nor without one
        self._lanes = sessions._offered is None and any(m._lane is not None for m in sessions.mappings)
        # the app's one mapping, when it has a fused path: its responses need no lookup at all
        self._solo = sessions.mappings[0] if self._lanes and len(sessions.mappings) == 1 else None

    # Any, not Scope: each framework types ASGI its own way (mappings, TypedDicts), and
    # the middleware must fit every framework's middleware slot under a type checker.
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            solo = self._solo
            if solo is not None:  # the usual request of the usual app: one mapping, fused (_lane.py)
                request = scope[SCOPE_KEY] = RequestSessions(self.sessions, scope)

                async def send_solo(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        states = request._states
                        if states is not None:
                            lane: Any = solo._lane  # there is one: that made it solo
                            added = lane.commit(request, states[solo], message.get("status", 200))
                            if added is None:
                                await _start(request, None, None, send, message)
                                return
                            message["headers"] = _merge(message.get("headers") or [], added)
                    await send(message)

                await self.app(scope, receive, send_solo)
                return
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        elif kind != "websocket":
            await self.app(scope, receive, send)
            return
        request = scope[SCOPE_KEY] = RequestSessions(self.sessions, scope)
        start = "http.response.start" if kind == "http" else "websocket.accept"
        offered = self.sessions._offered
        lanes = self._lanes
        if offered is not None:  # request.session is read synchronously: load it now
            await request._offer(offered, scope)

        # a coroutine function, as the send it stands for: some apps check (asgiref's
        # AsyncToSync, under WsgiToAsgi, warns on every request otherwise)
        async def send_with_sessions(message: Message) -> None:
            if request._states and message["type"] == start:
                added = request._commit_lane(message.get("status", 200)) if lanes else None
                if added is None:
                    await _start(request, offered, scope, send, message)
                    return
                message["headers"] = _merge(message.get("headers") or [], added)
            await send(message)

        if offered is None:
            await self.app(scope, receive, send_with_sessions)
            return
        try:
            await self.app(scope, receive, send_with_sessions)
        finally:  # the request held its scope for save(): no cycle left to the collector
            request._offered_in = None

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass lifespan to the app and close the storages when it has shut down; answer
        it ourselves when the app does not handle it."""
        read = False

        async def app_receive() -> Message:
            nonlocal read
            read = True
            return await receive()

        async def app_send(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.shutdown.complete" or kind == "lifespan.shutdown.failed":
                # a failed shutdown (the app's own step raised) still ends the process
                message = await self._close(message)
            elif kind == "lifespan.startup.failed":
                await self._close(message)  # what the failed startup opened, if anything
            await send(message)

        try:
            await self.app(scope, app_receive, app_send)
        except Exception:
            if read:
                raise
            # ASGI's way to say "no lifespan here", but also how a startup that fails before
            # its first receive looks (a Starlette middleware whose constructor raises): the
            # two cannot be told apart, so the server is answered and the traceback shown
            log.warning(
                "the app raised on the lifespan scope before reading from it; SessionMiddleware "
                "answers the server's startup and shutdown itself. If the app has a startup of "
                "its own, it failed; if it does not handle lifespan, return on that scope "
                "instead of raising to silence this",
                exc_info=True,
            )
        if not read:
            await self._answer_lifespan(receive, send)

    async def _answer_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send(await self._close({"type": "lifespan.shutdown.complete"}))
                return

    async def _close(self, message: Message) -> Message:
        """Close the storages; ``message``, or a ``lifespan.shutdown.failed`` saying why not.

        The app's own ``lifespan.shutdown.failed`` stays first: a storage that also fails to
        close is appended to its message."""
        try:
            await self.sessions.aclose()
        except Exception as exc:
            log.error("closing the session storages at shutdown failed", exc_info=True)
            failed = f"closing a session storage failed: {exc}"
            if message["type"] == "lifespan.shutdown.complete":
                return {"type": "lifespan.shutdown.failed", "message": failed}
            if message["type"] == "lifespan.shutdown.failed":
                given = message.get("message") or ""
                return {**message, "message": f"{given.rstrip()}\n{failed}" if given else failed}
        return message


async def _start(
    request: RequestSessions, offered: Mapping[Any] | None, scope: Scope | None, send: Send, message: Message
) -> None:
    """Send the response start with the sessions' headers, once what changed is written
    (``scope``: the request's, when ``offered``)."""
    if offered is not None and scope is not None:
        request._adopt(offered, scope.get("session"))
    added = await request._commit(message.get("status", 200))
    if added:
        message["headers"] = _merge(message.get("headers") or [], added)
    await send(message)


# what the session headers are merged into rather than added beside
_MERGED = frozenset((b"cache-control", b"vary"))


def _merge(headers: Any, added: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out = list(headers)
    for k, _ in out:
        if k.lower() in _MERGED:
            break
    else:  # the usual response: no Cache-Control or Vary of the app's to merge with
        out += added  # (added holds at most one of each, and its Cache-Control is "private")
        return out
    for name, value in added:
        if name == b"cache-control":
            _make_private(out)
        elif name == b"vary":
            for i, (k, v) in enumerate(out):
                if k.lower() == b"vary":
                    have = {p.strip().lower() for p in v.split(b",")}
                    extra = [p for p in value.split(b", ") if p.lower() not in have]
                    if b"*" not in have and extra:
                        out[i] = (k, v + b", " + b", ".join(extra))
                    break
            else:
                out.append((name, value))
        else:
            out.append((name, value))
    return out


def sessions_of(request: Any) -> RequestSessions:
    """The sessions of a request: a Starlette, FastAPI, Litestar or Quart request, or a scope.

    Examples:
        >>> s = satchel.sessions_of(request)
        >>> cart = await s.get(Cart)
    """
    if request.__class__ is dict:  # a scope: what a plain ASGI app passes
        found = request.get(SCOPE_KEY)
        if found is not None:
            return found  # type: ignore[no-any-return]
    scope = request if isinstance(request, dict) else getattr(request, "scope", request)
    found = scope.get(SCOPE_KEY) if isinstance(scope, (dict, MutableMapping)) else None
    if found is None:
        raise ConfigError(
            "no sessions on this request: wrap the app with "
            "satchel.SessionMiddleware(app, sessions), outermost"
        )
    return found  # type: ignore[no-any-return]


def _make_private(headers: list[tuple[bytes, bytes]]) -> None:
    """Merge ``private`` into the response's Cache-Control: a shared cache must not keep a
    response that carries a session. What the app set stays, but for what would let a
    shared cache keep it (``public``, ``s-maxage``); ``no-store`` or ``private`` already
    there are at least as strict."""
    for i, (k, v) in enumerate(headers):
        if k.lower() == b"cache-control":
            directives = [d.strip() for d in v.split(b",") if d.strip()]
            names = {d.partition(b"=")[0].strip().lower() for d in directives}
            if b"no-store" in names or b"private" in names:
                return
            kept = [
                d for d in directives if d.partition(b"=")[0].strip().lower() not in (b"public", b"s-maxage")
            ]
            headers[i] = (k, b", ".join([b"private", *kept]))
            return
    headers.append((b"cache-control", b"private"))
