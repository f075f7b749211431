"""``DetachedSessions``: a request's sessions without a request, for jobs, websockets and scripts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._exceptions import ConfigError
from ._mapping import Mapping as SessionMapping
from ._sessions import Key, RequestSessions, Sessions

__all__ = ["DetachedSessions"]

Pairs = Mapping[str, str] | Iterable[tuple[str, str]]

# what only an HTTP response carries: the caller decides where the session headers go
_RESPONSE_ONLY = (b"vary", b"cache-control")


class DetachedSessions(RequestSessions):
    """The sessions of cookies and headers given by hand: `Sessions.detached` makes one.

    The handler API of `RequestSessions`; `commit` (or the end of an ``async with``
    block that did not raise) writes what changed exactly as a response start does, and
    leaves in `headers` what to send back to the client.

    Examples:
        >>> async with sessions.detached(cookies={"SID": value}) as s:
        ...     s.regenerate(Login)
        >>> s.headers  # [("set-cookie", "SID=...; Path=/; ...")]
    """

    __slots__ = ("_committed", "headers")

    def __init__(
        self,
        sessions: Sessions,
        *,
        cookies: Pairs,
        headers: Pairs,
        ids: Mapping[Key, str] | None,
        scheme: str,
        server: tuple[str, int | None] | None,
    ) -> None:
        super().__init__(sessions, {"scheme": scheme, "server": server})
        jar: dict[str, list[str]] = {}
        sent: list[tuple[bytes, bytes]] = []
        for m, session_id in _ids(sessions, ids):
            # as if its cookie had just been sent: reading a session by ID is not the user's
            # activity, so it does not renew the session (a change still does)
            value = f"{m._seal_id(session_id)}.{int(sessions.clock())}"
            if m.transport == "cookie":
                jar.setdefault(m.name, []).append(value)
            else:
                sent.append((m.header_key, value.encode("ascii")))
        for name, value in _pairs(cookies, "cookies"):
            jar.setdefault(name, []).append(value)
        for name, value in _pairs(headers, "headers"):
            try:
                sent.append((name.lower().encode("latin-1"), value.encode("latin-1")))
            except UnicodeEncodeError:
                continue  # no session value holds such characters: as a malformed one, none
        self._jar = jar
        self._headers = sent
        self._committed = False
        self.headers: list[tuple[str, str]] = []
        """What to send to the client after `commit`: ``("set-cookie", ...)`` for a cookie
        mapping, ``(name, value)`` for a header mapping (an empty value ends it)."""

    async def commit(self) -> list[tuple[str, str]]:
        """Write what changed, as at a response start; the headers to send (also `headers`).

        Raises what a response start would (`StorageError`, `SessionConflict`). Once only:
        open another with `Sessions.detached` for more changes.
        """
        if self._committed:
            raise RuntimeError(
                "these sessions are already committed; open new ones with sessions.detached(...)"
            )
        self._committed = True
        self.headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in await self._commit()
            if name not in _RESPONSE_ONLY
        ]
        return self.headers

    async def __aenter__(self) -> DetachedSessions:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # as a failed handler's response: a block that raised writes nothing
        if exc_type is None and not self._committed:
            await self.commit()


def _pairs(given: Pairs, label: str) -> list[tuple[str, str]]:
    pairs = list(given.items() if isinstance(given, Mapping) else given)
    for name, value in pairs:
        if not (isinstance(name, str) and isinstance(value, str)):
            # the value is a credential (a session cookie): name its type, never itself
            raise TypeError(
                f"{label}= takes names and values as strings, got {name!r} with a "
                f"{type(value).__name__} value"
            )
    return pairs


def _ids(sessions: Sessions, ids: Mapping[Key, str] | None) -> list[tuple[SessionMapping[Any], str]]:
    found = []
    for key, session_id in (ids or {}).items():
        m = sessions.mapping(key)
        if m.storage is None:
            raise ConfigError(
                f"ids= opens server-side sessions; {m!r} is stateless: pass its value in "
                f"cookies= or headers= instead"
            )
        if isinstance(session_id, str) and session_id.isascii() and m.is_valid_id(session_id):
            found.append((m, session_id))  # anything else reads as no session, as a bad cookie does
    return found
