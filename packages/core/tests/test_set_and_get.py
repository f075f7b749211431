"""What set(), get(), get_or_set(), clear() and regenerate() do with a handler's value.

Within one request and across requests, server-side and stateless alike: the value last set
or changed in place is the one read and saved, and set() refuses at once (with a message
that says what to do) a value that would not read back, so the last good value is kept.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TypedDict

import msgspec
import pytest
import satchel
from core_helpers import KEY, live_keys, request

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("both_paths")]


class Login(msgspec.Struct):
    user: str


class Cart(msgspec.Struct):
    items: list[str] = []


@dataclasses.dataclass
class Counter:
    n: int = 0


class Prefs(TypedDict):
    theme: str


def server() -> satchel.Sessions:
    return satchel.Sessions(satchel.cookie(Cart, "CART", storage=satchel.MemoryStorage()))


def stateless() -> satchel.Sessions:
    return satchel.Sessions(satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]))


async def read(s: satchel.RequestSessions) -> Cart | None:
    return await s.get(Cart)


# -- the value set or changed last is the one read and saved ----------------------------------


async def test_get_after_set_returns_the_value_just_set_and_it_is_saved() -> None:
    """On a server-side mapping, get() after a set() with no get() before it returns the value just
    set, and that value is saved: the stored value is not loaded over it."""
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    jar: dict[str, str] = {}

    async def login_alice(s: satchel.RequestSessions) -> None:
        s.set(Login(user="alice"))

    await request(sessions, jar, login_alice)

    async def switch_to_bob_then_read(s: satchel.RequestSessions) -> Login | None:
        s.set(Login(user="bob"))  # no get() before the set
        return await s.get(Login)

    seen = await request(sessions, jar, switch_to_bob_then_read)
    assert seen == Login(user="bob"), f"get() right after set() returned {seen!r}"

    async def read(s: satchel.RequestSessions) -> Login | None:
        return await s.get(Login)

    assert await request(sessions, jar, read) == Login(user="bob")


async def test_get_or_set_after_set_keeps_the_set_value() -> None:
    """get_or_set() after set() returns and keeps the value set: the stored one does not replace
    it."""
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    jar: dict[str, str] = {}

    async def login_alice(s: satchel.RequestSessions) -> None:
        s.set(Login(user="alice"))

    await request(sessions, jar, login_alice)

    async def handler(s: satchel.RequestSessions) -> None:
        s.set(Login(user="bob"))
        await s.get_or_set(Login, lambda: Login(user="anon"))  # e.g. a helper further down

    await request(sessions, jar, handler)

    async def read(s: satchel.RequestSessions) -> Login | None:
        return await s.get(Login)

    assert await request(sessions, jar, read) == Login(user="bob")


@pytest.mark.parametrize("make", [server, stateless], ids=["server-side", "stateless"])
async def test_get_or_set_then_append_is_saved(make) -> None:  # type: ignore[no-untyped-def]
    """A value that get_or_set() created and the handler then changed in place is saved as changed,
    not as it was when created: the most common get_or_set pattern."""
    sessions = make()
    jar: dict[str, str] = {}

    async def add_apple(s: satchel.RequestSessions) -> None:
        cart = await s.get_or_set(Cart, Cart)
        cart.items.append("apple")

    await request(sessions, jar, add_apple)
    assert await request(sessions, jar, read) == Cart(items=["apple"])


@pytest.mark.parametrize("make", [server, stateless], ids=["server-side", "stateless"])
async def test_set_then_mutate_is_saved(make) -> None:  # type: ignore[no-untyped-def]
    """A value changed in place after set() is saved as changed: set() takes no snapshot that would
    hide the later change."""
    sessions = make()
    jar: dict[str, str] = {}

    async def handler(s: satchel.RequestSessions) -> None:
        cart = Cart()
        s.set(cart)
        cart.items.append("pear")

    await request(sessions, jar, handler)
    assert await request(sessions, jar, read) == Cart(items=["pear"])


async def test_change_in_place_then_regenerate_is_saved() -> None:
    """The login pattern: read, change in place, regenerate. The new ID holds the value as
    changed, not the value as read: regenerate() does not hide the in-place change."""
    sessions = server()
    jar: dict[str, str] = {}

    async def start(s: satchel.RequestSessions) -> None:
        s.set(Cart(items=["a"]))

    await request(sessions, jar, start)

    async def login(s: satchel.RequestSessions) -> None:
        cart = await s.get(Cart)
        assert cart is not None
        cart.items.append("b")
        s.regenerate(Cart)

    await request(sessions, jar, login)
    assert await request(sessions, jar, read) == Cart(items=["a", "b"])


@pytest.mark.parametrize("server", [True, False])
async def test_async_factory_is_awaited_and_saved(server: bool) -> None:
    """get_or_set() with an async factory awaits it, returns its value and saves it (not the
    coroutine), server-side and stateless."""
    kw = {"storage": satchel.MemoryStorage()} if server else {"transformers": [satchel.Sign(KEY)]}
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", **kw))  # type: ignore[arg-type]
    jar: dict[str, str] = {}

    async def make() -> Login:
        return Login(user="anon")

    async def h(s: satchel.RequestSessions) -> object:
        return await s.get_or_set("SID", make)

    assert await request(sessions, jar, h) == Login(user="anon")

    async def r(s: satchel.RequestSessions) -> object:
        return await s.get(Login)

    assert await request(sessions, jar, r) == Login(user="anon")


async def test_set_clear_set_and_regenerate_without_get() -> None:
    """set, clear and set again in one request ends the old ID and saves the last value under a new
    one; regenerate() without a get() keeps the value under a new ID and ends the old one."""
    storage = satchel.MemoryStorage()
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=storage))
    jar: dict[str, str] = {}

    async def a(s: satchel.RequestSessions) -> None:
        s.set(Login(user="a"))

    await request(sessions, jar, a)
    old = dict(jar)

    async def b(s: satchel.RequestSessions) -> None:
        s.set(Login(user="b"))
        s.clear(Login)
        s.set(Login(user="c"))

    await request(sessions, jar, b)
    assert jar["SID"] != old["SID"]
    assert len(storage) == 1

    async def rd(s: satchel.RequestSessions) -> object:
        return await s.get(Login)

    assert await request(sessions, old, rd) is None
    assert await request(sessions, jar, rd) == Login(user="c")
    before = dict(jar)

    async def regen(s: satchel.RequestSessions) -> None:
        s.regenerate(Login)

    await request(sessions, jar, regen)
    assert jar["SID"] != before["SID"]
    assert await request(sessions, before, rd) is None
    assert await request(sessions, jar, rd) == Login(user="c")
    assert len(live_keys(storage)) == 1  # and a tombstone where the old ID was


# -- set() refuses a value that would not read back ---------------------------------------


@pytest.mark.parametrize(
    ("key", "bad"),
    [(Cart, Cart(items=123)), (Counter, Counter(n="seven")), (Prefs, {"theme": 7})],  # type: ignore[arg-type]
    ids=["struct", "dataclass", "typeddict"],
)
@pytest.mark.parametrize("server_side", [False, True], ids=["stateless", "server-side"])
async def test_set_refuses_a_value_that_would_not_read_back(
    key: type, bad: object, server_side: bool
) -> None:
    """set() of a value that does not match its type raises SerializationError at once, and the
    session keeps its previous value: it is not found broken at a later read."""
    storage = satchel.MemoryStorage() if server_side else None
    transformers = [] if server_side else [satchel.Sign(KEY)]
    sessions = satchel.Sessions(satchel.cookie(key, "S", storage=storage, transformers=transformers))
    jar: dict[str, str] = {}
    good = {Cart: Cart(items=["a"]), Counter: Counter(n=1), Prefs: {"theme": "dark"}}[key]

    async def write_good(s: satchel.RequestSessions) -> None:
        s.set(good, key=key)

    async def write_bad(s: satchel.RequestSessions) -> None:
        with pytest.raises(satchel.SerializationError, match="would not read back"):
            s.set(bad, key=key)

    async def read(s: satchel.RequestSessions) -> object:
        return await s.get(key)

    await request(sessions, jar, write_good)
    await request(sessions, jar, write_bad)
    # the refused value did not replace the session: nothing was lost
    assert await request(sessions, jar, read) == good


def wrong_type(cart: Cart) -> None:
    cart.items = 5  # type: ignore[assignment]


def not_encodable(cart: Cart) -> None:
    cart.items.append(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("server_side", [False, True], ids=["stateless", "server-side"])
@pytest.mark.parametrize("breaks", [wrong_type, not_encodable], ids=["wrong-type", "not-encodable"])
async def test_an_in_place_change_that_would_not_read_back_keeps_the_last_good_value(
    server_side: bool, breaks: Callable[[Cart], None], caplog: pytest.LogCaptureFixture
) -> None:
    """A value changed in place into one that would not read back is not saved: the last good value
    stays, and one error is logged for it however often it is saved."""
    storage = satchel.MemoryStorage() if server_side else None
    transformers = [] if server_side else [satchel.Sign(KEY)]
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", storage=storage, transformers=transformers))
    jar: dict[str, str] = {}

    async def write(s: satchel.RequestSessions) -> None:
        s.set(Cart(items=["apple"]))

    async def break_in_place(s: satchel.RequestSessions) -> None:
        cart = await s.get(Cart)
        assert cart is not None
        breaks(cart)
        await s.save()  # a save, then the response start: no error page either time

    async def read(s: satchel.RequestSessions) -> Cart | None:
        return await s.get(Cart)

    await request(sessions, jar, write)
    with caplog.at_level(logging.ERROR, logger="satchel"):
        await request(sessions, jar, break_in_place)
    assert caplog.text.count("the last good value stays") == 1  # once, though saved twice
    assert await request(sessions, jar, read) == Cart(items=["apple"])


async def test_a_value_msgpack_cannot_encode_is_a_serialization_error() -> None:
    """A value msgpack cannot encode (an integer past 64 bits, nesting too deep) raises
    SerializationError at set(), not an error of the encoder at the response start."""
    sessions = satchel.Sessions(satchel.cookie(dict, "BAG", transformers=[satchel.Sign(KEY)]))

    async def handler(s: satchel.RequestSessions) -> None:
        with pytest.raises(satchel.SerializationError, match="cannot encode"):
            s.set({"n": 2**64})  # past msgpack's integers
        deep: dict[str, object] = {}
        for _ in range(5000):
            deep = {"d": deep}
        with pytest.raises(satchel.SerializationError, match="cannot encode"):
            s.set(deep)

    await request(sessions, {}, handler)


# -- messages -------------------------------------------------------------------------------


async def test_set_none_is_a_type_error_that_points_to_clear() -> None:
    """set(None) is a TypeError whose message says that clear() ends a session."""
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]))

    async def handler(s: satchel.RequestSessions) -> None:
        with pytest.raises(TypeError, match=r"set\(None\): to end the session, call clear"):
            s.set(None)
        with pytest.raises(TypeError, match=r"to end session 'CART', call clear"):
            s.set(None, key=Cart)

    await request(sessions, {}, handler)


async def test_too_large_for_the_storage_names_the_storage_not_the_transport() -> None:
    """A value too large for a server-side mapping's storage is refused with a message naming the
    storage and its limit, not with advice to go server-side."""
    storage = satchel.MemoryStorage()
    limit = satchel.capabilities_of(storage).max_value_size
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", storage=storage))

    async def handler(s: satchel.RequestSessions) -> None:
        with pytest.raises(satchel.SessionTooLarge) as raised:
            s.set(Cart(items=["x" * limit]))
        message = str(raised.value)
        assert "its storage (MemoryStorage) accepts at most" in message
        assert "server-side" not in message  # it already is

    await request(sessions, {}, handler)
