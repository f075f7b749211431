"""Owners: list and end every session of one user, from a handler or without a request."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
import satchel
import satchel.testing
from core_helpers import KEY, Clock, make_app

pytestmark = pytest.mark.anyio


class Login(msgspec.Struct):
    user: str


class Cart(msgspec.Struct):
    items: list[str] = []


def owned_sessions(storage: Any = None, clock: Clock | None = None) -> satchel.Sessions:
    return satchel.Sessions(
        satchel.cookie(
            Login,
            "SID",
            storage=storage if storage is not None else satchel.MemoryStorage(),
            max_age=3600,
            owner=lambda login: login.user,
        ),
        clock=clock or Clock(),
    )


async def sign_in(s: satchel.RequestSessions, request: Any) -> Any:
    s.clear(Login)
    s.set(Login(user=request.query_params["user"]), attributes={"device": request.headers["user-agent"]})
    return "ok"


async def whoami(s: satchel.RequestSessions, request: Any) -> Any:
    found = await s.get(Login)
    return None if found is None else found.user


async def devices(s: satchel.RequestSessions, request: Any) -> Any:
    return [
        {"handle": i.handle, "device": i.attributes.get("device"), "current": i.current}
        for i in await s.list_owned(Login)
    ]


async def others(s: satchel.RequestSessions, request: Any) -> Any:
    return await s.revoke_owner(Login)


async def everywhere(s: satchel.RequestSessions, request: Any) -> Any:
    return await s.revoke_owner(Login, keep_current=False)


async def end_one(s: satchel.RequestSessions, request: Any) -> Any:
    return await s.revoke_session(Login, request.query_params["handle"])


async def rename(s: satchel.RequestSessions, request: Any) -> Any:
    s.set(Login(user=request.query_params["user"]))
    return "ok"


def app(sessions: satchel.Sessions) -> satchel.SessionMiddleware:
    return make_app(
        sessions,
        sign_in=sign_in,
        whoami=whoami,
        devices=devices,
        others=others,
        everywhere=everywhere,
        end_one=end_one,
        rename=rename,
    )


def browser(sessions: satchel.Sessions, device: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app(sessions)),
        base_url="https://testserver",
        headers={"user-agent": device},
    )


async def test_list_owned_shows_each_device_and_marks_the_current_one() -> None:
    sessions = owned_sessions()
    async with browser(sessions, "phone") as phone, browser(sessions, "laptop") as laptop:
        await phone.get("/sign_in?user=ada")
        await laptop.get("/sign_in?user=ada")
        listed = (await laptop.get("/devices")).json()
    assert sorted(d["device"] for d in listed) == ["laptop", "phone"]
    assert [d["device"] for d in listed if d["current"]] == ["laptop"]


async def test_a_listing_without_a_request_gives_times_and_attributes() -> None:
    clock = Clock()
    sessions = owned_sessions(clock=clock)
    async with browser(sessions, "phone") as phone:
        await phone.get("/sign_in?user=ada")
        clock.advance(100)
        await phone.get("/rename?user=ada")  # a write: last used moves, created stays
    [info] = await sessions.list_owned(Login, "ada")
    assert info.created == Clock().now
    assert info.last_used == clock.now
    assert info.attributes == {"device": "phone"}
    assert info.current is False
    assert info.expires is not None  # the storage's own expiry, in wall-clock seconds
    assert await sessions.list_owned(Login, "grace") == []


async def test_sign_out_other_devices_keeps_this_one() -> None:
    sessions = owned_sessions()
    async with browser(sessions, "phone") as phone, browser(sessions, "laptop") as laptop:
        await phone.get("/sign_in?user=ada")
        await laptop.get("/sign_in?user=ada")
        assert (await laptop.get("/others")).json() == 1
        assert (await laptop.get("/whoami")).json() == "ada"
        assert (await phone.get("/whoami")).json() is None


async def test_sign_out_everywhere_ends_this_one_too_and_deletes_its_cookie() -> None:
    sessions = owned_sessions()
    async with browser(sessions, "phone") as phone, browser(sessions, "laptop") as laptop:
        await phone.get("/sign_in?user=ada")
        await laptop.get("/sign_in?user=ada")
        response = await laptop.get("/everywhere")
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert (await phone.get("/whoami")).json() is None
    assert await sessions.list_owned(Login, "ada") == []


async def test_a_background_job_revokes_an_owner_without_a_request() -> None:
    sessions = owned_sessions()
    async with browser(sessions, "phone") as phone, browser(sessions, "other") as grace:
        await phone.get("/sign_in?user=ada")
        await grace.get("/sign_in?user=grace")
        assert await sessions.revoke_owner(Login, "ada") == 1
        assert await sessions.revoke_owner(Login, "ada") == 0  # safe to repeat
        assert (await phone.get("/whoami")).json() is None
        assert (await grace.get("/whoami")).json() == "grace"


async def test_one_device_ends_by_its_handle_which_opens_nothing() -> None:
    sessions = owned_sessions()
    async with browser(sessions, "phone") as phone, browser(sessions, "laptop") as laptop:
        await phone.get("/sign_in?user=ada")
        await laptop.get("/sign_in?user=ada")
        listed = (await laptop.get("/devices")).json()
        [handle] = [d["handle"] for d in listed if d["device"] == "phone"]
        # the handle is not a credential: sent as a cookie it opens no session
        assert (await laptop.get("/whoami", headers={"cookie": f"SID={handle}"})).json() is None
        assert (await laptop.get(f"/end_one?handle={handle}")).json() is True
        assert (await phone.get("/whoami")).json() is None
        assert (await laptop.get("/whoami")).json() == "ada"


async def test_a_handle_of_someone_elses_session_ends_nothing() -> None:
    sessions = owned_sessions()
    async with browser(sessions, "phone") as ada, browser(sessions, "laptop") as grace:
        await ada.get("/sign_in?user=ada")
        await grace.get("/sign_in?user=grace")
        [theirs] = await sessions.list_owned(Login, "grace")
        assert (await ada.get(f"/end_one?handle={theirs.handle}")).json() is False
        assert await sessions.revoke_session(Login, "ada", theirs.handle) is False
        assert await sessions.revoke_session(Login, "ada", "not a handle") is False
        assert (await grace.get("/whoami")).json() == "grace"


async def test_a_new_owner_is_a_new_session() -> None:
    """A value whose owner changes is stored under a new ID: the old owner's listing and
    revoke no longer reach it, and the old ID is ended (fixation)."""
    sessions = owned_sessions()
    async with browser(sessions, "phone") as phone:
        await phone.get("/sign_in?user=ada")
        before = phone.cookies["SID"]
        await phone.get("/rename?user=grace")
        assert phone.cookies["SID"] != before
        assert await sessions.list_owned(Login, "ada") == []
        assert len(await sessions.list_owned(Login, "grace")) == 1
        assert (await phone.get("/whoami", headers={"cookie": f"SID={before}"})).json() is None


async def test_the_store_holds_no_usable_session_id() -> None:
    storage = satchel.MemoryStorage()
    sessions = owned_sessions(storage)
    async with browser(sessions, "phone") as phone:
        await phone.get("/sign_in?user=ada")
        session_id = phone.cookies["SID"].partition(".")[0]
    dump = repr(storage._data) + repr(storage._owners)
    assert session_id not in dump
    assert satchel.testing.store_key(session_id) in dump


@pytest.mark.parametrize("owner", ["", None, 42, "x" * 257])
async def test_an_unusable_owner_is_refused_at_set(owner: object) -> None:
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=satchel.MemoryStorage(), owner=lambda login: owner)  # type: ignore[arg-type,return-value]
    )
    request = satchel.RequestSessions(sessions, {"type": "http", "headers": []})
    with pytest.raises(ValueError, match="owner"):
        request.set(Login(user="ada"))


@pytest.mark.parametrize(
    "attributes",
    [{"device": "x" * 513}, {"": "x"}, {str(n): "x" for n in range(17)}, {"device": 1}, ["device"]],
)
async def test_unusable_attributes_are_refused_at_set(attributes: Any) -> None:
    request = satchel.RequestSessions(owned_sessions(), {"type": "http", "headers": []})
    with pytest.raises((TypeError, ValueError), match="attribute"):
        request.set(Login(user="ada"), attributes=attributes)


def test_owner_on_a_stateless_mapping_says_why_and_what_instead() -> None:
    with pytest.raises(satchel.ConfigError, match="nothing to revoke"):
        satchel.cookie(Login, "SID", transformers=[satchel.Sign(KEY)], owner=lambda login: login.user)


def test_owner_needs_a_storage_with_an_owner_index() -> None:
    class Plain:
        async def read(self, id: str) -> bytes | None: ...
        async def write(self, id: str, data: bytes, ttl: float | None) -> None: ...
        async def invalidate(self, id: str) -> None: ...
        async def touch(self, id: str, ttl: float | None) -> None: ...
        async def aclose(self) -> None: ...

    with pytest.raises(satchel.ConfigError, match="owner index"):
        satchel.cookie(Login, "SID", storage=Plain(), owner=lambda login: login.user)


async def test_owner_calls_on_a_mapping_without_owner_say_what_to_add() -> None:
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", storage=satchel.MemoryStorage()))
    with pytest.raises(satchel.ConfigError, match="owner="):
        await sessions.list_owned(Cart, "ada")


async def test_a_storage_outage_during_revoke_raises() -> None:
    class Down(satchel.MemoryStorage):
        async def invalidate_owned(self, owner: str, *, keep: Any = ()) -> int:
            raise OSError("connection refused")

    sessions = owned_sessions(Down())
    with pytest.raises(satchel.StorageError, match="connection refused"):
        await sessions.revoke_owner(Login, "ada")
