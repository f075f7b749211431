"""The common configuration's fused path (satchel/_lane.py) takes exactly what the generic
steps take, and answers a request byte for byte as they do."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
import satchel
import satchel._mapping
from core_helpers import KEY, OTHER_KEY
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from satchel._codec import ENCODER, Envelope
from satchel._exceptions import SerializationError
from satchel._sessions import RequestSessions
from satchel._state import State

NOW = 1_700_000_000.0


class Cart(msgspec.Struct):
    items: list[str] = []
    total: int = 0


class Limited(msgspec.Struct):
    count: int = msgspec.field(default=0)


def generic_open(m: satchel.Mapping[Any], text: str, now: float) -> tuple[Any, ...] | None:
    """What the generic steps read from ``text``: ``_open_stateless``, then the serializer."""
    opened = m._open_stateless(text, now)
    if opened is None:
        return None
    env, reissue = opened
    try:
        value = m.serializer.decode(env.data)
    except SerializationError:
        return None
    return (value, env.data, env.created, env.expires, reissue)


def lane_open(m: satchel.Mapping[Any], text: str, now: float) -> tuple[Any, ...] | None:
    """What the fused path reads from ``text``; a cookie's value reaches it as the request
    sent it, the ``Cookie`` header's bytes, a header mapping's as text."""
    assert m._lane is not None
    state = State()
    given: str | bytes = text.encode("latin-1") if m.transport == "cookie" else text
    if not m._lane.open(state, given, now):
        return None
    return (state.value, state.data, state.created, state.expires, state.reissue)


MAPPINGS = {
    "cookie": lambda: satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
    "json": lambda: satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], serializer="json"),
    "header": lambda: satchel.header(Cart, "X-Cart", transformers=[satchel.Sign(KEY)]),
    "lifetime": lambda: satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], max_lifetime=3600),
    "no max_age": lambda: satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], max_age=None),
    "rotated": lambda: satchel.cookie(
        Cart, "CART", transformers=[satchel.Sign(OTHER_KEY, fallback_keys=[KEY])]
    ),
}


def test_the_common_configuration_gets_the_fused_path_and_nothing_else_does() -> None:
    for build in MAPPINGS.values():
        assert build()._lane is not None
    others = [
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY), satchel.Digest()]),
        satchel.cookie(
            Cart, "CART", transformers=[satchel.Sign(KEY)], serializer=satchel.JSONSerializer(Cart)
        ),
        satchel.cookie(Cart, "CART", storage=satchel.MemoryStorage()),
    ]
    custom = type("Custom", (satchel.MsgPackSerializer,), {})
    others.append(satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)], serializer=custom))
    # a built-in serializer given as an instance is still the built-in one
    assert [m._lane is not None for m in others] == [False, True, False, False]


@pytest.mark.anyio
async def test_a_sign_subclass_keeps_what_it_overrides_and_takes_the_generic_steps() -> None:
    class Refusing(satchel.Sign):
        """Refuses every value: say, a key being retired at once."""

        def decode(self, data: bytes) -> bytes | None:
            return None

    plain = satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)])
    refusing = satchel.cookie(Cart, "CART", transformers=[Refusing(KEY)])
    assert type(refusing.transformers[0]) is Refusing
    assert refusing._lane is None
    text, _ = plain._seal_stateless(plain.serializer.encode(Cart(items=["x"])), NOW, NOW)
    # the same key and name sign alike, but the subclass refuses on the way in
    assert generic_open(plain, text, NOW) is not None
    assert generic_open(refusing, text, NOW) is None
    async with satchel.Sessions(refusing, clock=lambda: NOW).detached(cookies={"CART": text}) as s:
        assert await s.get(Cart) is None


def sealed(
    m: satchel.Mapping[Any], version: int, name: str, created: float, expires: float, data: bytes
) -> str:
    """An envelope with these fields, signed with ``m``'s own key: what only a key holder makes."""
    return m._protect(ENCODER.encode(Envelope(version, name, created, expires, data)))


times = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, NOW, NOW - 1, NOW + 1, NOW + 300, NOW + 301, NOW + 14 * 86400 + 300]),
    st.floats(min_value=NOW - 30 * 86400, max_value=NOW + 30 * 86400),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(MAPPINGS)),
    version=st.sampled_from([1, 1, 1, 0, 2]),
    name=st.sampled_from(["CART", "CART", "X-Cart", "other", ""]),
    created=times,
    expires=times,
    payload=st.one_of(
        st.builds(Cart, items=st.lists(st.text(max_size=5), max_size=3), total=st.integers(-5, 5)),
        st.binary(max_size=12),
    ),
    now=st.sampled_from([NOW, NOW + 1800, NOW + 7200, NOW + 20 * 86400]),
)
@example(kind="cookie", version=1, name="CART", created=NOW, expires=math.nan, payload=Cart(), now=NOW)
@example(kind="no max_age", version=1, name="CART", created=NOW, expires=0.0, payload=Cart(), now=NOW)
@example(
    kind="lifetime", version=1, name="CART", created=NOW - 3600, expires=NOW + 60, payload=Cart(), now=NOW
)
# each bound of the checks, on both sides
@example(kind="cookie", version=1, name="CART", created=NOW + 300, expires=NOW + 60, payload=Cart(), now=NOW)
@example(kind="cookie", version=1, name="CART", created=NOW + 301, expires=NOW + 60, payload=Cart(), now=NOW)
@example(
    kind="cookie",
    version=1,
    name="CART",
    created=NOW,
    expires=NOW + 14 * 86400 + 300,
    payload=Cart(),
    now=NOW,
)
@example(
    kind="cookie",
    version=1,
    name="CART",
    created=NOW,
    expires=NOW + 14 * 86400 + 301,
    payload=Cart(),
    now=NOW,
)
@example(kind="cookie", version=1, name="CART", created=NOW, expires=NOW, payload=Cart(), now=NOW)
@example(kind="cookie", version=1, name="CART", created=NOW, expires=NOW + 0.5, payload=Cart(), now=NOW)
@example(kind="cookie", version=1, name="CART", created=-math.inf, expires=NOW + 60, payload=Cart(), now=NOW)
@example(
    kind="lifetime", version=1, name="CART", created=NOW - 3599, expires=NOW + 60, payload=Cart(), now=NOW
)
@example(kind="no max_age", version=1, name="CART", created=NOW, expires=NOW - 1, payload=Cart(), now=NOW)
@example(kind="cookie", version=2, name="CART", created=NOW, expires=NOW + 60, payload=Cart(), now=NOW)
@example(kind="cookie", version=1, name="other", created=NOW, expires=NOW + 60, payload=Cart(), now=NOW)
@example(kind="cookie", version=1, name="CART", created=NOW, expires=NOW + 60, payload=b"\xc1", now=NOW)
def test_the_fused_read_takes_only_what_the_generic_steps_take(
    kind: str, version: int, name: str, created: float, expires: float, payload: Any, now: float
) -> None:
    m = MAPPINGS[kind]()
    data = payload if isinstance(payload, bytes) else m.serializer.encode(payload)
    text = sealed(m, version, name, created, expires, data)
    fused, generic = lane_open(m, text, now), generic_open(m, text, now)
    if fused is not None:
        assert fused == generic
    elif generic is not None and not generic[4]:
        # the fused path leaves out only values under a fallback key
        raise AssertionError(f"the fused path refused what the generic steps take: {generic!r}")


@settings(max_examples=300)
@given(
    kind=st.sampled_from(sorted(MAPPINGS)),
    items=st.lists(st.text(max_size=8), max_size=4),
    edit=st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 10_000), st.sampled_from("AQgw_-09az")),
        st.tuples(st.just("cut"), st.integers(0, 10_000), st.just("")),
        st.tuples(st.just("append"), st.just(0), st.sampled_from(["A", "=", "==", " ", ".", "é", "AAAA"])),
        st.tuples(st.just("none"), st.just(0), st.just("")),
    ),
)
def test_an_altered_value_reads_alike_through_both_paths(
    kind: str, items: list[str], edit: tuple[str, int, str]
) -> None:
    m = MAPPINGS[kind]()
    text, _ = m._seal_stateless(m.serializer.encode(Cart(items=items)), NOW, NOW)
    op, at, char = edit
    if op == "flip":
        at %= len(text)
        assume(text[at] != char)
        text = text[:at] + char + text[at + 1 :]
    elif op == "cut":
        text = text[: at % len(text)]
    elif op == "append":
        text += char
    fused, generic = lane_open(m, text, NOW), generic_open(m, text, NOW)
    if op == "none":
        assert fused is not None
        assert fused == generic
        assert fused[0] == Cart(items=items)
    elif fused is not None:
        assert fused == generic


@pytest.mark.anyio
@pytest.mark.parametrize("valid", [True, False])
async def test_a_cookie_header_given_as_a_bytearray_reads_as_bytes_would(valid: bool) -> None:
    """ASGI says header values are bytes; a server that passes a bytearray still gets the
    session, or no session for a malformed value, never an error."""
    m = MAPPINGS["cookie"]()
    text, _ = m._seal_stateless(m.serializer.encode(Cart(items=["x"])), NOW, NOW)
    value = text.encode() if valid else b"AAAA"
    sessions = satchel.Sessions(m, clock=lambda: NOW)
    got = []
    for header in (b"CART=" + value, bytearray(b"CART=" + value)):
        scope = {"type": "http", "headers": [(b"cookie", header)], "scheme": "https"}
        got.append(await RequestSessions(sessions, scope).get(Cart))
    assert got == ([Cart(items=["x"])] * 2 if valid else [None, None])


@pytest.mark.parametrize("kind", sorted(MAPPINGS))
def test_only_the_canonical_spelling_of_a_value_is_read(kind: str) -> None:
    """Base64url's last character may carry unused bits: only the spelling with them clear
    is the value; the others, which decode to the same bytes, are refused by both paths."""
    m = MAPPINGS[kind]()
    for size in range(3):  # the three lengths of a last group: 4, 2 or 3 characters
        text, _ = m._seal_stateless(m.serializer.encode(Cart(items=["a" * size])), NOW, NOW)
        taken = []
        for char in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
            spelled = text[:-1] + char
            fused, generic = lane_open(m, spelled, NOW), generic_open(m, spelled, NOW)
            assert fused is None or fused == generic
            if generic is not None:
                taken.append(char)
        assert taken == [text[-1]]


def test_a_value_under_a_fallback_key_is_left_to_the_generic_steps_which_reissue_it() -> None:
    old, rotated = MAPPINGS["cookie"](), MAPPINGS["rotated"]()
    text, _ = old._seal_stateless(old.serializer.encode(Cart(items=["kept"])), NOW, NOW)
    assert lane_open(rotated, text, NOW) is None
    generic = generic_open(rotated, text, NOW)
    assert generic is not None
    assert generic[0] == Cart(items=["kept"])
    assert generic[4] is True


# -- a whole exchange, through both paths --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def exchange(
    fused: bool, steps: list[tuple[float, str, str]], max_lifetime: float = 86400
) -> list[Any]:
    """Each step's response starts through an app built with the fused path on or off: a
    moving clock, the cookies the app set, handlers that read, change, clear and mutate."""
    satchel._mapping.LANES = fused
    try:
        clock = Clock()
        sessions = satchel.Sessions(
            satchel.cookie(
                Cart, "CART", transformers=[satchel.Sign(KEY)], max_age=3600, max_lifetime=max_lifetime
            ),
            satchel.cookie(Limited, "LIM", transformers=[satchel.Sign(KEY)], max_age=600, rolling=False),
            clock=clock,
        )
    finally:
        satchel._mapping.LANES = True

    async def handler(scope: Any, receive: Any, send: Any) -> None:
        s = satchel.sessions_of(scope)
        action = scope["path"].strip("/")
        cart = await s.get(Cart)
        if action == "add":
            s.set(Cart(items=[*(cart.items if cart else []), "x"], total=(cart.total if cart else 0) + 1))
        elif action == "mutate" and cart is not None:
            cart.items.append("in place")
        elif action in ("mutate-after-set", "start-twice"):
            fresh = Cart(items=["a"])
            s.set(fresh)
            fresh.total = 99
            if action == "start-twice":  # an app that starts its response twice: same both ways
                await send({"type": "http.response.start", "status": 200, "headers": []})
        elif action == "clear-then-set":  # signing in again in one request
            s.clear(Cart)
            s.set(Cart(items=["new"]))
        elif action == "clear":
            s.clear(Cart)
        elif action == "regenerate":
            s.regenerate(Cart)
        elif action == "limited":
            s.set(Limited(count=1))
        elif action == "fail":
            s.set(Cart(items=["lost"]))
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": b""})

    app = satchel.SessionMiddleware(handler, sessions)
    jar: dict[str, str] = {}
    seen: list[Any] = []
    for at, path, extra_cookie in steps:
        clock.now = NOW + at
        # an extra cookie comes first: the fused path reads the first value sent
        cookie = "; ".join([*([extra_cookie] if extra_cookie else []), *(f"{k}={v}" for k, v in jar.items())])
        headers = [(b"host", b"example.com")] + ([(b"cookie", cookie.encode())] if cookie else [])
        scope = {
            "type": "http",
            "scheme": "https",
            "path": path,
            "headers": headers,
            "server": ("10.0.0.1", 443),
        }
        started: list[Any] = []

        async def send(message: Any, started: list[Any] = started) -> None:
            if message["type"] == "http.response.start":
                started.append(message)

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        await app(scope, receive, send)
        headers_out = started[0]["headers"]
        seen.append((path, [(m["status"], m["headers"]) for m in started]))
        for key, value in headers_out:
            if key == b"set-cookie":
                name, _, rest = value.decode().partition("=")
                text = rest.split(";", 1)[0]
                if text:
                    jar[name] = text
                else:
                    jar.pop(name, None)
    return seen


STEPS = [
    (0, "/show", ""),
    (1, "/add", ""),
    (2, "/show", ""),
    (3, "/add", ""),
    (4, "/mutate", ""),
    (5, "/show", ""),
    (2000, "/show", ""),  # past half of max_age: the rolling refresh
    (2001, "/mutate-after-set", ""),
    (2002, "/limited", ""),
    (2003, "/add", ""),
    (2004, "/show", "CART=forged"),
    (2005, "/fail", ""),
    (2006, "/regenerate", ""),
    (2007, "/clear", ""),
    (2008, "/show", ""),
    (2009, "/add", ""),
    (2010, "/clear-then-set", ""),
    (2011, "/start-twice", ""),
    (80_000, "/show", ""),  # idle past max_age: gone
    (80_001, "/add", ""),
    (80_002, "/show", ""),
]


SENT = [  # the steps of STEPS that send a cookie, as a browser would see them
    "/add",
    "/add",
    "/mutate",
    "/show",
    "/mutate-after-set",
    "/limited",
    "/add",
    "/regenerate",
    "/clear",
    "/add",
    "/clear-then-set",
    "/start-twice",
    "/add",
]
SHORT = [*STEPS[:4], (4000, "/add", ""), (4001, "/show", "")]  # the second add finds it expired


CAPPED = [(0, "/add", ""), (3000, "/add", ""), (3001, "/show", "")]  # 2000 s of lifetime left


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("steps", "sent", "max_lifetime"),
    [(STEPS, SENT, 86400), (SHORT, ["/add", "/add", "/add"], 86400), (CAPPED, ["/add", "/add"], 5000)],
)
async def test_both_paths_answer_an_exchange_byte_for_byte_alike(
    steps: list[tuple[float, str, str]], sent: list[str], max_lifetime: float
) -> None:
    fused = await exchange(True, steps, max_lifetime)
    generic = await exchange(False, steps, max_lifetime)
    assert fused == generic
    # and the exchange did what it says: written, refreshed, mutated, ended, expired
    assert [path for path, starts in fused if any(k == b"set-cookie" for k, _ in starts[0][1])] == sent
    if steps is CAPPED:  # the absolute lifetime caps what the cookie is given
        cookie = next(v for k, v in fused[1][1][0][1] if k == b"set-cookie")
        assert b"; Max-Age=2000;" in cookie


# -- the bounds of a value's times, pinned (both paths share these checks) ------------


BOUNDS = [  # (mapping, created, expires, taken): now is NOW, the default max_age 14 days
    ("cookie", NOW + 300, NOW + 60, True),  # clocks may disagree by 300 s
    ("cookie", NOW + 301, NOW + 60, False),
    ("cookie", NOW, NOW + 14 * 86400 + 300, True),
    ("cookie", NOW, NOW + 14 * 86400 + 301, False),  # beyond what max_age could have given
    ("cookie", NOW, NOW, False),  # idle deadline reached
    ("cookie", NOW, NOW + 0.5, True),
    ("cookie", -math.inf, NOW + 60, False),
    ("cookie", math.nan, NOW + 60, False),
    ("cookie", NOW, math.nan, False),
    ("cookie", NOW, -math.inf, False),
    ("cookie", NOW, 0.0, False),  # no idle deadline, where the mapping has one
    ("no max_age", NOW, 0.0, True),
    ("lifetime", NOW - 3600, NOW + 60, False),  # the absolute lifetime is over
    ("lifetime", NOW - 3599, NOW + 60, True),
]


@pytest.mark.parametrize(("kind", "created", "expires", "taken"), BOUNDS)
def test_a_value_is_taken_exactly_within_its_times(
    kind: str, created: float, expires: float, taken: bool
) -> None:
    m = MAPPINGS[kind]()
    text = sealed(m, 1, "CART", created, expires, m.serializer.encode(Cart(items=["in"])))
    generic, fused = generic_open(m, text, NOW), lane_open(m, text, NOW)
    assert (generic is not None) is taken
    assert fused == generic
