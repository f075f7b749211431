"""Server-side sessions: only an ID travels; the data lives in storage."""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
import pytest
import satchel
from core_helpers import KEY, Clock, CountingStorage, key_of, make_app, request, set_cookies

pytestmark = pytest.mark.anyio


class Login(msgspec.Struct):
    user: str
    visits: int = 0


class Prefs(msgspec.Struct):
    theme: str = "light"
    user: str = ""  # a display name the visitor can type in: attacker-controlled


async def login(s: satchel.RequestSessions, request: Any) -> Any:
    s.set(Login(user=request.query_params.get("user", "ada")))
    return "ok"


async def whoami(s: satchel.RequestSessions, request: Any) -> Any:
    found = await s.get(Login)
    return None if found is None else found.user


async def visit(s: satchel.RequestSessions, request: Any) -> Any:
    found = await s.get(Login)
    if found is None:
        return None
    found.visits += 1
    return found.visits


async def logout(s: satchel.RequestSessions, request: Any) -> Any:
    s.clear(Login)
    return "bye"


async def regenerate(s: satchel.RequestSessions, request: Any) -> Any:
    s.regenerate(Login)
    return "ok"


async def nothing(s: satchel.RequestSessions, request: Any) -> Any:
    return "hi"


def build(storage: satchel.SessionStorage, clock: Clock | None = None, **options: Any) -> Any:
    sessions = satchel.Sessions(
        satchel.cookie(Login, "SID", storage=storage, **options), clock=clock or Clock()
    )
    return make_app(
        sessions,
        login=login,
        whoami=whoami,
        visit=visit,
        logout=logout,
        regenerate=regenerate,
        nothing=nothing,
    )


def sid(client: Any) -> str:
    return str(client.cookies["SID"]).partition(".")[0]


async def test_round_trip_keeps_data_on_the_server(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage))
    await client.get("/login?user=grace")
    assert (await client.get("/whoami")).json() == "grace"
    assert storage.ids() == [key_of(sid(client))]  # stored under a digest of the ID
    assert b"grace" not in client.cookies["SID"].encode()


async def test_a_visitor_who_never_had_a_session_stores_nothing(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage))
    for path in ("/whoami", "/nothing", "/visit"):
        response = await client.get(path)
        assert set_cookies(response) == []
    assert storage.ids() == []
    assert "write" not in storage.calls


async def test_a_request_that_never_asks_does_no_storage_io(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage))
    await client.get("/login")
    storage.calls.clear()
    await client.get("/nothing")
    assert storage.calls == []


async def test_a_read_only_request_costs_one_read_and_no_cookie(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage))
    await client.get("/login")
    storage.calls.clear()
    response = await client.get("/whoami")
    assert storage.calls == ["read"]
    assert set_cookies(response) == []
    assert response.headers["vary"] == "Cookie"


async def test_an_unknown_id_is_never_adopted(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage))
    planted = satchel.token_id()  # well-formed, but the server never issued it
    await client.get("/login", headers={"cookie": f"SID={planted}"})
    assert sid(client) != planted
    assert planted not in storage.ids()


async def test_an_id_of_the_wrong_shape_is_refused_before_any_storage_call(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage))
    for bad in ("short", "x" * 43 + "!", "../../etc/passwd", "a" * 44):
        response = await client.get("/whoami", headers={"cookie": f"SID={bad}"})
        assert response.json() is None
    assert storage.calls == []


async def test_in_place_mutation_is_saved(client_for: Any) -> None:
    client = client_for(build(CountingStorage()))
    await client.get("/login")
    assert (await client.get("/visit")).json() == 1
    assert (await client.get("/visit")).json() == 2


async def test_logout_invalidates_the_entry_and_deletes_the_cookie(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage))
    await client.get("/login")
    old = client.cookies["SID"]
    response = await client.get("/logout")
    assert "Max-Age=0" in set_cookies(response)[0]
    assert storage.ids() == []
    # replaying the old cookie does not bring the session back
    assert (await client.get("/whoami", headers={"cookie": f"SID={old}"})).json() is None


async def test_regenerate_keeps_the_data_and_deletes_the_old_entry(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage))
    await client.get("/login?user=ada")
    old_cookie, old_id = client.cookies["SID"], sid(client)
    await client.get("/regenerate")
    assert sid(client) != old_id
    # the old key keeps only a tombstone naming the new one, so a logout that raced sees it
    assert storage.sessions() == [key_of(sid(client))]
    assert (await client.get("/whoami")).json() == "ada"
    assert (await client.get("/whoami", headers={"cookie": f"SID={old_cookie}"})).json() is None


async def test_idle_timeout_is_enforced_by_storage(client_for: Any) -> None:
    clock = Clock()
    storage = satchel.MemoryStorage(clock=clock)
    client = client_for(build(storage, clock, max_age=60))
    await client.get("/login")
    clock.advance(61)
    assert (await client.get("/whoami")).json() is None


async def test_rolling_touch_extends_an_active_session_without_a_rewrite(client_for: Any) -> None:
    clock = Clock()
    storage = CountingStorage(clock=clock)
    client = client_for(build(storage, clock, max_age=60))
    await client.get("/login")
    clock.advance(20)
    storage.calls.clear()
    assert set_cookies(await client.get("/whoami")) == []
    assert storage.calls == ["read"]
    clock.advance(20)
    storage.calls.clear()
    response = await client.get("/whoami")
    assert storage.calls == ["read", "touch"]
    assert len(set_cookies(response)) == 1
    clock.advance(50)  # 90 s after login, 50 after the touch
    assert (await client.get("/whoami")).json() == "ada"


async def test_an_update_sends_the_id_again_only_when_its_cookie_is_due(client_for: Any) -> None:
    """A changed session is written to storage with a fresh expiry; the browser keeps the ID
    it holds, so the cookie travels again only past half of max_age since it was sent (as
    for a read), and every update still lands."""
    clock = Clock()
    storage = CountingStorage(clock=clock)
    client = client_for(build(storage, clock, max_age=60))
    assert len(set_cookies(await client.get("/login"))) == 1  # a new ID travels
    sent = client.cookies["SID"]
    clock.advance(20)
    storage.calls.clear()
    response = await client.get("/visit")
    assert response.json() == 1
    assert "write_if" in storage.calls  # written...
    assert set_cookies(response) == []  # ...and the ID not sent again
    assert "private" not in response.headers.get("cache-control", "")  # nothing travels
    assert response.headers["vary"] == "Cookie"  # still read from the cookie
    clock.advance(20)  # 40 s since the cookie was sent: due
    response = await client.get("/visit")
    assert response.json() == 2
    [again] = set_cookies(response)
    assert "Max-Age=60" in again
    assert client.cookies["SID"] != sent  # the same ID, with the time it was sent again
    assert client.cookies["SID"].rpartition(".")[0] == sent.rpartition(".")[0]
    clock.advance(50)  # 90 s after sign-in, 50 after the last send: alive
    assert (await client.get("/visit")).json() == 3


async def test_without_rolling_every_change_sends_the_cookie_with_a_new_max_age(client_for: Any) -> None:
    """rolling=False: a change starts a new max_age, in the storage and in the browser."""
    clock = Clock()
    client = client_for(build(satchel.MemoryStorage(clock=clock), clock, max_age=60, rolling=False))
    await client.get("/login")
    clock.advance(10)
    response = await client.get("/visit")
    assert response.json() == 1
    [again] = set_cookies(response)
    assert "Max-Age=60" in again
    assert set_cookies(await client.get("/whoami")) == []  # a read alone extends nothing


async def test_a_regenerated_id_is_always_sent(client_for: Any) -> None:
    client = client_for(build(satchel.MemoryStorage()))
    await client.get("/login")
    before = client.cookies["SID"]
    [sent] = set_cookies(await client.get("/regenerate"))
    assert sent.startswith("SID=")
    assert client.cookies["SID"].rpartition(".")[0] != before.rpartition(".")[0]
    assert (await client.get("/whoami")).json() == "ada"


async def test_absolute_lifetime_is_enforced_on_the_server(client_for: Any) -> None:
    clock = Clock()
    storage = satchel.MemoryStorage(clock=clock)
    client = client_for(build(storage, clock, max_age=60, max_lifetime=100))
    await client.get("/login")
    cookie = client.cookies["SID"]
    for _ in range(3):
        clock.advance(25)
        assert (await client.get("/visit", headers={"cookie": f"SID={cookie}"})).json() is not None
    clock.advance(30)
    assert (await client.get("/whoami", headers={"cookie": f"SID={cookie}"})).json() is None


async def test_signed_ids_refuse_a_forged_signature(client_for: Any) -> None:
    storage = CountingStorage()
    client = client_for(build(storage, transformers=[satchel.Sign(KEY)]))
    await client.get("/login")
    assert (await client.get("/whoami")).json() == "ada"
    [stored_id] = storage.ids()
    storage.calls.clear()
    # the raw ID alone, without its signature, is refused before storage is asked
    assert (await client.get("/whoami", headers={"cookie": f"SID={stored_id}"})).json() is None
    assert storage.calls == []


class BrokenStorage(satchel.MemoryStorage):
    """A storage whose server is down: every call fails like a dropped connection."""

    async def read(self, id: str) -> bytes | None:
        raise ConnectionError("connection refused")

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        raise ConnectionError("connection refused")


async def test_an_outage_raises_storage_error_by_default(client_for: Any) -> None:
    client = client_for(build(BrokenStorage()))
    with pytest.raises(satchel.StorageError) as caught:
        await client.get("/login")
    assert isinstance(caught.value.__cause__, ConnectionError)
    with pytest.raises(satchel.StorageError):
        await client.get("/whoami", headers={"cookie": f"SID={satchel.token_id()}"})


async def test_an_outage_can_read_as_no_session_by_choice(client_for: Any) -> None:
    client = client_for(build(BrokenStorage(), on_storage_error="ignore"))
    response = await client.get("/whoami", headers={"cookie": f"SID={satchel.token_id()}"})
    assert response.json() is None
    assert set_cookies(response) == []  # an outage does not log the visitor out
    with pytest.raises(satchel.StorageError):  # writes still fail loudly
        await client.get("/login")


async def test_concurrent_overwrite_raises_session_conflict(client_for: Any) -> None:
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage, detect_conflicts=True))
    client = client_for(make_app(sessions, login=login))
    await client.get("/login")
    headers = [(b"cookie", f"SID={client.cookies['SID']}".encode())]
    first = satchel.RequestSessions(sessions, {"type": "http", "headers": headers})
    second = satchel.RequestSessions(sessions, {"type": "http", "headers": headers})
    a, b = await first.get(Login), await second.get(Login)
    assert a is not None
    assert b is not None
    a.visits, b.visits = 1, 2
    await first.save()
    with pytest.raises(satchel.SessionConflict):
        await second.save()
    check = satchel.RequestSessions(sessions, {"type": "http", "headers": headers})
    assert await check.get(Login) == Login(user="ada", visits=1)


async def test_header_transport_for_api_clients(client_for: Any) -> None:
    sessions = satchel.Sessions(satchel.header(Login, "X-Session", storage=satchel.MemoryStorage()))
    client = client_for(make_app(sessions, login=login, whoami=whoami, logout=logout))
    token = (await client.get("/login")).headers["x-session"]
    assert (await client.get("/whoami", headers={"x-session": token})).json() == "ada"
    cleared = await client.get("/logout", headers={"x-session": token})
    assert cleared.headers["x-session"] == ""
    assert (await client.get("/whoami", headers={"x-session": token})).json() is None


async def test_get_or_set_creates_once(client_for: Any) -> None:
    storage = CountingStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))

    async def anon(s: satchel.RequestSessions, request: Any) -> Any:
        return (await s.get_or_set(Login, lambda: Login(user="anon"))).user

    client = client_for(make_app(sessions, anon=anon))
    assert (await client.get("/anon")).json() == "anon"
    first = client.cookies["SID"]
    assert (await client.get("/anon")).json() == "anon"
    assert len(storage.ids()) == 1
    assert client.cookies["SID"] == first


async def test_storage_too_small_for_the_value_fails_at_set() -> None:
    class Tiny(satchel.MemoryStorage):
        capabilities = satchel.StorageCapabilities(persistent=False, max_value_size=100)

    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=Tiny()))
    request = satchel.RequestSessions(sessions, {"type": "http", "headers": []})
    with pytest.raises(satchel.SessionTooLarge):
        request.set(Login(user="x" * 200))


class CountingInvalidates(satchel.MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.invalidates = 0

    async def invalidate(self, id: str) -> None:
        self.invalidates += 1
        await super().invalidate(id)


async def test_clear_does_at_most_as_many_storage_calls_as_a_read() -> None:
    """clear() without a get() ends at most three candidate IDs, as a read looks up at most
    three: one request to a logout URL with a large Cookie header of valid-shaped IDs costs no
    more storage round trips than a read, and deletes no ID the server never tied to it."""
    storage = CountingInvalidates()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    cookies = [("SID", secrets.token_urlsafe(32)) for _ in range(150)]  # ~7 KB header
    s = sessions.detached(cookies=cookies)
    s.clear(Login)
    await s.commit()
    assert storage.invalidates <= 3, f"{storage.invalidates} invalidate calls for one logout"


async def test_an_id_issued_for_one_mapping_is_refused_by_another() -> None:
    """Two server-side mappings that share one storage (supported) never accept each other's
    IDs: the ID a visitor got for a low-value mapping it controls (PREFS), sent as the SID
    cookie, opens no Login, so its data cannot pass for a login (privilege escalation)."""
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


async def test_an_id_issued_for_one_mapping_is_refused_by_another_on_one_sqlite_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same with dict sessions on one SQLite URL: the stored record, not only the
    storage, says which mapping an ID belongs to."""
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
