"""F3: two server-side mappings that share one storage (the docs say sharing is
supported: "each storage once, even when several mappings share it") accept each
other's IDs. The stored record carries no mapping name and the storage key is the bare ID,
so the ID a client got for a low-value mapping it controls (PREFS) can be sent as the
SID cookie, and its data decodes as a Login: privilege escalation."""

from __future__ import annotations

import msgspec
import pytest
import satchel
from review_helpers import request


class Login(msgspec.Struct):
    user: str


class Prefs(msgspec.Struct):
    theme: str = "light"
    user: str = ""  # a display name the visitor can type in: attacker-controlled


@pytest.mark.anyio
async def test_an_id_issued_for_one_mapping_is_refused_by_another() -> None:
    shared = satchel.MemoryStorage()
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=shared),
        satchel.cookie(Prefs, "PREFS", storage=shared),
    )
    jar: dict[str, str] = {}

    async def save_prefs(s: satchel.RequestSessions) -> None:
        s.set(Prefs(user="admin"))  # anonymous visitor picks a display name

    await request(sessions, jar, save_prefs)
    assert "PREFS" in jar
    assert "SID" not in jar

    forged = {"SID": jar["PREFS"]}

    async def whoami(s: satchel.RequestSessions) -> Login | None:
        return await s.get(Login)

    assert await request(sessions, forged, whoami) is None, "a PREFS id opened the SID session"


@pytest.mark.anyio
async def test_same_with_dict_sessions_on_one_sqlite_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("satchel_sqlite")
    url = f"sqlite:///{tmp_path}/sessions.db"
    sessions = satchel.Sessions(
        satchel.cookie(dict, "SID", storage=url),
        satchel.cookie(Prefs, "PREFS", storage=url),
    )
    jar: dict[str, str] = {}

    async def save_prefs(s: satchel.RequestSessions) -> None:
        s.set(Prefs(user="admin"))

    try:
        await request(sessions, jar, save_prefs)

        async def whoami(s: satchel.RequestSessions) -> object:
            return await s.get("SID")

        assert await request(sessions, {"SID": jar["PREFS"]}, whoami) is None
    finally:
        await sessions.aclose()
