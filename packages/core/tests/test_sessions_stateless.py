"""Stateless sessions through a real Starlette app: the whole value travels, signed."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest
import satchel
from core_helpers import KEY, OTHER_KEY, Clock, apply, make_app, set_cookies

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("both_paths")]


class Cart(msgspec.Struct):
    items: list[str] = []


class Prefs(msgspec.Struct):
    theme: str = "light"


async def add(s: satchel.RequestSessions, request: Any) -> Any:
    cart = await s.get(Cart) or Cart()
    s.set(Cart(items=[*cart.items, "apple"]))
    return cart.items


async def show(s: satchel.RequestSessions, request: Any) -> Any:
    cart = await s.get(Cart)
    return None if cart is None else cart.items


async def nothing(s: satchel.RequestSessions, request: Any) -> Any:
    return "hi"


def cart_sessions(clock: Clock | None = None, **options: Any) -> satchel.Sessions:
    options.setdefault("transformers", [satchel.Sign(KEY)])
    return satchel.Sessions(satchel.cookie(Cart, "CART", **options), clock=clock or Clock())


async def test_round_trip_through_the_cookie(client_for: Any) -> None:
    client = client_for(make_app(cart_sessions(), add=add, show=show))
    assert (await client.get("/add")).json() == []
    assert (await client.get("/add")).json() == ["apple"]
    assert (await client.get("/show")).json() == ["apple", "apple"]


async def test_a_read_only_request_sends_no_cookie_but_varies(client_for: Any) -> None:
    client = client_for(make_app(cart_sessions(), add=add, show=show))
    await client.get("/add")
    response = await client.get("/show")
    assert set_cookies(response) == []
    assert response.headers["vary"] == "Cookie"


async def test_a_request_that_never_asks_is_untouched(client_for: Any) -> None:
    client = client_for(make_app(cart_sessions(), add=add, nothing=nothing))
    await client.get("/add")
    response = await client.get("/nothing")
    assert set_cookies(response) == []
    assert "vary" not in response.headers


async def test_in_place_mutation_of_a_read_value_is_saved(client_for: Any) -> None:
    async def mutate(s: satchel.RequestSessions, request: Any) -> Any:
        cart = await s.get(Cart)
        assert cart is not None
        cart.items.append("pear")
        return "ok"

    client = client_for(make_app(cart_sessions(), add=add, mutate=mutate, show=show))
    await client.get("/add")
    assert len(set_cookies(await client.get("/mutate"))) == 1
    assert (await client.get("/show")).json() == ["apple", "pear"]


async def test_tampered_cookie_reads_as_no_session(client_for: Any) -> None:
    client = client_for(make_app(cart_sessions(), add=add, show=show))
    await client.get("/add")
    value = client.cookies["CART"]
    raw = bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    raw[5] ^= 1
    client.cookies.clear()
    client.cookies.set("CART", base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())
    response = await client.get("/show")
    assert response.status_code == 200
    assert response.json() is None


@pytest.mark.parametrize(
    "cookie", ["", "garbage", "a" * 5000, "%%%", "CART", "\u00e9t\u00e9", "AAAA.BBBB", "==="]
)
async def test_malformed_cookies_read_as_no_session(client_for: Any, cookie: str) -> None:
    client = client_for(make_app(cart_sessions(), show=show))
    response = await client.get("/show", headers={"cookie": f"CART={cookie}".encode()})
    assert response.status_code == 200
    assert response.json() is None


async def test_a_value_cut_for_one_mapping_never_verifies_for_another(client_for: Any) -> None:
    sessions = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
        satchel.cookie(Prefs, "PREFS", transformers=[satchel.Sign(KEY)]),
    )

    async def read_prefs(s: satchel.RequestSessions, request: Any) -> Any:
        return await s.get(Prefs) is not None

    client = client_for(make_app(sessions, add=add, prefs=read_prefs))
    await client.get("/add")
    stolen = client.cookies["CART"]
    response = await client.get("/prefs", headers={"cookie": f"PREFS={stolen}"})
    assert response.json() is False


async def test_expired_value_is_refused_even_if_the_client_keeps_sending_it(client_for: Any) -> None:
    clock = Clock()
    client = client_for(make_app(cart_sessions(clock, max_age=60), add=add, show=show))
    await client.get("/add")
    cookie = client.cookies["CART"]
    clock.advance(61)
    response = await client.get("/show", headers={"cookie": f"CART={cookie}"})
    assert response.json() is None


async def test_rolling_refresh_at_half_life_keeps_an_active_session(client_for: Any) -> None:
    clock = Clock()
    client = client_for(make_app(cart_sessions(clock, max_age=60), add=add, show=show))
    await client.get("/add")
    clock.advance(20)
    assert set_cookies(await client.get("/show")) == []  # young: nothing sent
    clock.advance(20)
    assert len(set_cookies(await client.get("/show"))) == 1  # past half: re-issued
    clock.advance(40)  # 80 s after the first issue, 40 after the refresh
    assert (await client.get("/show")).json() == ["apple"]


async def test_absolute_lifetime_ends_even_an_active_session(client_for: Any) -> None:
    clock = Clock()
    app = make_app(cart_sessions(clock, max_age=60, max_lifetime=100), add=add, show=show)
    client = client_for(app)
    await client.get("/add")
    for _ in range(3):
        clock.advance(25)  # active: every request is within the idle timeout
        assert (await client.get("/show")).json() == ["apple"]
    clock.advance(25)
    assert (await client.get("/show")).json() is None


async def test_key_rotation_accepts_old_values_and_reissues_them(client_for: Any) -> None:
    old = client_for(make_app(cart_sessions(transformers=[satchel.Sign(OTHER_KEY)]), add=add))
    await old.get("/add")
    cookie = old.cookies["CART"]
    rotated = cart_sessions(transformers=[satchel.Sign(KEY, fallback_keys=[OTHER_KEY])])
    client = client_for(make_app(rotated, show=show))
    response = await client.get("/show", headers={"cookie": f"CART={cookie}"})
    assert response.json() == ["apple"]
    [reissued] = set_cookies(response)
    new_value = reissued.split(";")[0].split("=", 1)[1]
    retired = client_for(make_app(cart_sessions(), show=show))
    assert (await retired.get("/show", headers={"cookie": f"CART={new_value}"})).json() == ["apple"]
    assert (await retired.get("/show", headers={"cookie": f"CART={cookie}"})).json() is None


async def test_value_too_large_fails_at_set_with_the_size_and_budget(client_for: Any) -> None:
    async def big(s: satchel.RequestSessions, request: Any) -> Any:
        try:
            s.set(Cart(items=["x" * 5000]))
        except satchel.SessionTooLarge as exc:
            return [exc.size, exc.budget, str(exc)]
        return None

    client = client_for(make_app(cart_sessions(), big=big))
    size, budget, message = (await client.get("/big")).json()
    assert budget == 4096
    assert size > 4096
    assert str(size) in message
    assert "4096" in message


async def test_clear_deletes_the_cookie_with_its_path_and_domain(client_for: Any) -> None:
    async def clear(s: satchel.RequestSessions, request: Any) -> Any:
        s.clear(Cart)
        return "ok"

    sessions = cart_sessions(path="/shop", domain="example.com")
    client = client_for(make_app(sessions, add=add, clear=clear))
    response = await client.get("/clear", headers={"cookie": "CART=whatever"})
    [deletion] = set_cookies(response)
    assert deletion.startswith("CART=;")
    assert "Max-Age=0" in deletion
    assert "Path=/shop" in deletion
    assert "Domain=example.com" in deletion


async def test_several_cookie_headers_are_joined(client_for: Any) -> None:
    client = client_for(make_app(cart_sessions(), add=add, show=show))
    await client.get("/add")
    value = client.cookies["CART"]
    client.cookies.clear()
    response = await client.get("/show", headers=[("cookie", "a=1"), ("cookie", f"CART={value}")])
    assert response.json() == ["apple"]


async def test_a_planted_invalid_cookie_does_not_hide_the_real_one(client_for: Any) -> None:
    client = client_for(make_app(cart_sessions(), add=add, show=show))
    await client.get("/add")
    value = client.cookies["CART"]
    client.cookies.clear()
    response = await client.get("/show", headers={"cookie": f"CART=planted; CART={value}"})
    assert response.json() == ["apple"]


async def test_header_transport_round_trip(client_for: Any) -> None:
    sessions = satchel.Sessions(satchel.header(Cart, "X-Cart", transformers=[satchel.Sign(KEY)]))
    client = client_for(make_app(sessions, add=add, show=show))
    first = await client.get("/add")
    token = first.headers["x-cart"]
    assert first.headers["vary"] == "X-Cart"
    assert (await client.get("/show", headers={"x-cart": token})).json() == ["apple"]
    assert (await client.get("/show")).json() is None


async def test_existing_vary_header_is_extended_not_replaced(client_for: Any) -> None:
    from starlette.responses import JSONResponse

    async def varying(s: satchel.RequestSessions, request: Any) -> Any:
        await s.get(Cart)
        return JSONResponse("x", headers={"vary": "Accept-Encoding"})

    client = client_for(make_app(cart_sessions(), varying=varying))
    response = await client.get("/varying")
    assert response.headers["vary"] == "Accept-Encoding, Cookie"


async def test_stateless_value_carries_no_readable_secret_when_signed_only() -> None:
    # Signing is integrity, not secrecy: document by test that the value is readable.
    sessions = cart_sessions()
    request = sessions.detached()
    request.set(Cart(items=["visible-item"]))
    headers = await request.commit()
    cookie = next(v for k, v in headers if k == "set-cookie")
    value = cookie.split(";")[0].split("=", 1)[1]
    assert b"visible-item" in base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


async def test_a_flood_of_duplicate_cookies_costs_three_checks(client_for: Any) -> None:
    """Stateless values are verified three at most per request, as server-side IDs are
    looked up; malformed ones cost nothing and do not count.

    Verifying every duplicate would let one request (1 MiB of them) cost about 100 ms of CPU.
    """
    checked: list[bytes] = []

    class Counting:
        authenticates = True

        def __init__(self) -> None:
            self.sign = satchel.Sign(KEY)

        def encode(self, data: bytes) -> bytes:
            return self.sign.encode(data)

        def decode(self, data: bytes) -> bytes | None:
            checked.append(data)
            return self.sign.decode(data)

    client = client_for(make_app(cart_sessions(transformers=[Counting()]), show=show))
    junk = base64.urlsafe_b64encode(b"\x00" * 300).decode().rstrip("=")
    flood = "; ".join([f"CART={junk}"] * 2000 + ["CART=*not*base64*"] * 2000)
    assert (await client.get("/show", headers={"cookie": flood})).json() is None
    assert len(checked) == 3


async def test_a_value_grown_in_place_past_the_cookie_budget_keeps_the_last_good_one(
    client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The handler answered already: no error page; the change is not sent, and it is logged."""

    async def grow(s: satchel.RequestSessions, request: Any) -> Any:
        cart = await s.get(Cart)
        assert cart is not None
        cart.items.append("x" * 5000)  # in place, after set(): only seen at response start
        return "ok"

    client = client_for(make_app(cart_sessions(), add=add, grow=grow, show=show))
    await client.get("/add")
    with caplog.at_level("ERROR", logger="satchel"):
        response = await client.get("/grow")
    assert response.status_code == 200
    assert set_cookies(response) == []
    assert "cannot be saved" in caplog.text
    assert "4096" in caplog.text  # the budget it went past
    assert (await client.get("/show")).json() == ["apple"]


async def test_value_without_deadline_is_refused_once_max_age_is_configured() -> None:
    """A value issued while the mapping had no idle timeout (max_age=None: no deadline in
    it) is refused once the app sets a max_age, as if it were as old as it may be: otherwise
    a client could replay it forever."""
    clock = Clock()
    before = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], max_age=None), clock=clock
    )
    jar: dict[str, str] = {}
    r = before.detached(cookies=jar)
    r.set(Cart(items=["old"]))
    apply(jar, await r.commit())

    after = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], max_age=3600), clock=clock
    )
    clock.now += 365 * 24 * 3600  # a year later, far beyond max_age
    r = after.detached(cookies=jar)
    assert await r.get(Cart) is None, "a year-old value without deadline still opens with max_age=3600"


async def test_no_resend_right_after_a_resend() -> None:
    """A rolling session whose idle deadline is capped by max_lifetime is not sent again on
    every request near its end: when it was last sent is not guessed as `expires - max_age`
    (wrong when max_lifetime set `expires`), so a response right after a resend carries no
    Set-Cookie and stays cacheable."""
    clock = Clock()
    sessions = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], max_age=100, max_lifetime=120),
        clock=clock,
    )
    jar: dict[str, str] = {}
    r = sessions.detached(cookies=jar)
    r.set(Cart(items=["a"]))
    apply(jar, await r.commit())

    clock.now += 60  # past max_age/2 since it was sent: a resend is due
    r = sessions.detached(cookies=jar)
    await r.get(Cart)
    headers = await r.commit()
    assert any(k == "set-cookie" for k, _ in headers)
    apply(jar, headers)

    clock.now += 12  # 12 s after the resend; max_age is 100
    r = sessions.detached(cookies=jar)
    await r.get(Cart)
    headers = await r.commit()
    assert not any(k == "set-cookie" for k, _ in headers), "sent again 12 s after the last send"
