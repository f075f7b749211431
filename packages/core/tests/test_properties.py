"""Property tests of the request path, through a real Starlette app and httpx's ASGI transport.

What a client sends is generated: garbage never raises and reads as no session, a signed
value survives no bit flip, a value never crosses mappings, every session type round
trips, and a stateless value dies at its deadline however often the client replays it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import math
import re
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict, TypeVar

import attrs
import httpx
import msgspec
import pytest
import satchel
from core_helpers import Clock
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from satchel._cookies import parse_cookie_header  # how the app splits the header
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY = "-d7LhUgpcWwkTZnHi3EkvOXl71qfHpgeVo8hE_gXKoQ"
START = 1_700_000_000.0  # Unix seconds on the fake clocks
BASE_URL = "https://testserver"
T = TypeVar("T")

# Each request goes through asyncio.run: the default deadline would measure event loop
# start-up, not the code under test.
FEW = settings(max_examples=25, deadline=None)
SOME = settings(max_examples=60, deadline=None)


# -- the app under test ---------------------------------------------------------------

Handler = Callable[[satchel.RequestSessions], Awaitable[Any]]


def serve(sessions: satchel.Sessions, handler: Handler) -> satchel.SessionMiddleware:
    """A Starlette app whose only endpoint answers ``handler(sessions_of(request))`` as JSON."""

    async def endpoint(request: Request) -> Response:
        return JSONResponse(await handler(satchel.sessions_of(request)))

    return satchel.SessionMiddleware(Starlette(routes=[Route("/", endpoint, methods=["GET"])]), sessions)


@asynccontextmanager
async def client(app: satchel.SessionMiddleware) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions (the default) turns any exception in the app into a test failure
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def wrapped() -> T:
        return await main()

    return asyncio.run(wrapped())


def issued(response: httpx.Response, m: satchel.Mapping[Any]) -> str | None:
    """The value the response hands the client for mapping ``m`` (cookie or header)."""
    if m.transport == "header":
        value: str | None = response.headers.get(m.name)
        return value
    for line in response.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        if name == m.name:
            return rest.partition(";")[0]
    return None


async def first_value(sessions: satchel.Sessions, handler: Handler, m: satchel.Mapping[Any]) -> str:
    """What a first request through ``handler`` hands the client for mapping ``m``."""
    async with client(serve(sessions, handler)) as c:
        text = issued(await c.get("/"), m)
    assert text is not None, "the first request set no session"
    return text


def sent(m: satchel.Mapping[Any], value: str | bytes) -> list[tuple[bytes, bytes]]:
    """The request header that carries ``value`` for mapping ``m``."""
    raw = value.encode("latin-1") if isinstance(value, str) else value
    if m.transport == "header":
        return [(m.name.encode("ascii"), raw)]
    return [(b"cookie", m.name.encode("ascii") + b"=" + raw)]


# -- session types ----------------------------------------------------------------------


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


async def write_ada(s: satchel.RequestSessions) -> None:
    s.set(Login(user="ada"))


async def read_user(s: satchel.RequestSessions) -> Any:
    got = await s.get(Login)
    return None if got is None else got.user


class Prefs(msgspec.Struct):
    theme: str = "light"


class Api(msgspec.Struct):
    client: str


class Token(msgspec.Struct):
    scope: str


# -- 1. garbage in, no session out ---------------------------------------------------------


def garbage_sessions() -> tuple[satchel.Sessions, list[satchel.MemoryStorage]]:
    stores = [satchel.MemoryStorage() for _ in range(3)]
    sign = satchel.Sign(KEY)
    sessions = satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[sign]),
        satchel.cookie(Login, "SID", storage=stores[0], transformers=[sign]),
        satchel.cookie(Prefs, "PREFS", storage=stores[1]),
        satchel.header(Api, "X-Api", transformers=[sign]),
        satchel.header(Token, "X-Token", storage=stores[2]),
    )
    return sessions, stores


TYPES = (Cart, Login, Prefs, Api, Token)
COOKIE_NAMES = ["CART", "SID", "PREFS", "cart", "sid", " CART", "CART ", ""]
TOKEN_CHARS = string.ascii_letters + string.digits + '-_.=;" \t,'

any_text = st.text(max_size=200).map(lambda s: s.encode("utf-8"))
any_bytes = st.binary(max_size=300)
token_like = st.text(alphabet=TOKEN_CHARS, max_size=120).map(lambda s: s.encode("latin-1"))
cookie_pair = st.tuples(st.sampled_from(COOKIE_NAMES), st.one_of(token_like, any_bytes)).map(
    lambda p: p[0].encode("latin-1") + b"=" + p[1]
)
cookie_like = st.lists(cookie_pair, min_size=1, max_size=5).map(b";".join)
header_value = st.one_of(any_bytes, any_text, token_like, cookie_like)


@SOME
@given(
    cookies=st.lists(header_value, max_size=3),
    api=st.none() | header_value,
    token=st.none() | header_value,
    then_set=st.booleans(),
)
def test_garbage_reads_as_no_session_and_never_fails(
    cookies: list[bytes], api: bytes | None, token: bytes | None, then_set: bool
) -> None:
    sessions, stores = garbage_sessions()
    headers = [(b"cookie", c) for c in cookies]
    if api is not None:
        headers.append((b"x-api", api))
    if token is not None:
        headers.append((b"x-token", token))

    async def handler(s: satchel.RequestSessions) -> Any:
        seen = [await s.get(t) for t in TYPES]
        if then_set:
            s.set(Cart(items=["a"]))
            s.set(Login(user="u"))
            s.set(Prefs())
            s.set(Api(client="c"))
            s.set(Token(scope="s"))
        return [v is None for v in seen]

    async def main() -> httpx.Response:
        async with client(serve(sessions, handler)) as c:
            return await c.get("/", headers=headers)

    response = run(main)
    assert response.status_code == 200
    assert response.json() == [True] * len(TYPES)
    # nothing the client sent was adopted: storage holds exactly what this request set
    assert [len(s) for s in stores] == ([1, 1, 1] if then_set else [0, 0, 0])


@SOME
@given(
    transport=st.sampled_from(["cookie", "header"]),
    suffix=st.one_of(
        st.binary(max_size=20),
        st.text(alphabet=st.characters(max_codepoint=255), max_size=12).map(lambda t: t.encode("latin-1")),
        # what a hint looks like, with the Latin-1 characters that str.isdigit() also accepts
        st.text(alphabet="0123456789\u00b9\u00b2\u00b3", min_size=1, max_size=12).map(
            lambda t: t.encode("latin-1")
        ),
    ),
)
@example(transport="cookie", suffix="\u00b2".encode("latin-1"))
@example(transport="cookie", suffix=b"garbage.1.2")
@example(transport="header", suffix=b"1.2")
@example(transport="header", suffix=b"1234567890123")
def test_only_digits_may_follow_a_server_side_id(transport: str, suffix: bytes) -> None:
    """What follows the ID is exactly "." and 1 to 12 ASCII digits (when the cookie was
    last sent), or nothing: then the session reads; anything else makes the value no
    session, consistently, and never fails the request."""
    storage = satchel.MemoryStorage()
    sign = satchel.Sign(KEY)
    if transport == "cookie":
        mapping = satchel.cookie(Login, "SID", storage=storage, transformers=[sign])
    else:
        mapping = satchel.header(Login, "X-Sid", storage=storage, transformers=[sign])
    sessions = satchel.Sessions(mapping)

    async def main() -> httpx.Response:
        text = await first_value(sessions, write_ada, mapping)
        sealed = text.partition(".")[0].encode("ascii")
        async with client(serve(sessions, read_user)) as c:
            return await c.get("/", headers=sent(mapping, sealed + b"." + suffix))

    response = run(main)
    assert response.status_code == 200
    # what reaches the app after the cookie parser (up to ';', trimmed) or the HTTP layer (trimmed)
    arrived = suffix.decode("latin-1")
    arrived = arrived.split(";")[0].strip() if transport == "cookie" else arrived.strip(" \t")
    hint = re.fullmatch(r"[0-9]{1,12}", arrived) is not None
    assert response.json() == ("ada" if hint else None)


class Basket(msgspec.Struct):
    count: int = 0


times = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1e300, 1e300, START, START + 1e9]),
    st.floats(),
)


@pytest.mark.parametrize(
    ("max_age", "max_lifetime"), [(3600.0, None), (None, 600.0), (3600.0, 600.0), (None, None)]
)
def test_any_envelope_times_never_fail_the_request(max_age: float | None, max_lifetime: float | None) -> None:
    """An envelope that verifies (a leaked key, a bug in an older release) may carry any
    times, NaN, infinities, far past and future. That must never turn into an error page."""

    @SOME
    @given(created=times, expires=times, count=st.integers(0, 9))
    @example(created=math.nan, expires=0.0, count=1)
    @example(created=math.inf, expires=0.0, count=1)
    @example(created=1e13, expires=0.0, count=1)  # a start in the year 318857
    def check(created: float, expires: float, count: int) -> None:
        forge(max_age, max_lifetime, created, expires, msgspec.msgpack.encode(Basket(count=count)))

    check()


def forge(
    max_age: float | None, max_lifetime: float | None, created: float, expires: float, data: bytes
) -> None:
    """Send an envelope the client cut and signed with the app's key; the handler reads and sets."""
    mapping = satchel.cookie(
        Basket, "BASKET", transformers=[satchel.Sign(KEY)], max_age=max_age, max_lifetime=max_lifetime
    )
    sessions = satchel.Sessions(mapping, clock=lambda: START)
    envelope = msgspec.msgpack.encode([1, "BASKET", created, expires, data])
    forged = b64(satchel.Sign(KEY).bind("cookie:BASKET").encode(envelope))

    async def bump(s: satchel.RequestSessions) -> Any:
        basket = await s.get(Basket) or Basket()
        s.set(Basket(count=basket.count + 1))
        return basket.count

    async def main() -> httpx.Response:
        async with client(serve(sessions, bump)) as c:
            return await c.get("/", headers=sent(mapping, forged))

    assert run(main).status_code == 200


@SOME
@given(
    server_side=st.booleans(),
    planted=st.lists(
        st.one_of(token_like, st.sampled_from([b"", b"x", b"A" * 43, b"A" * 43 + b".1"])), max_size=6
    ),
    others=st.lists(cookie_pair, max_size=4),
    real_first=st.booleans(),
)
@example(server_side=True, planted=[b"x", b"x", b"x"], others=[], real_first=False)
def test_junk_and_planted_cookies_never_hide_the_real_one(
    server_side: bool, planted: list[bytes], others: list[bytes], real_first: bool
) -> None:
    """Other cookies, and malformed values under the same name (planted by a sibling
    subdomain or a more specific path, so sent first), still leave the real session readable;
    but a stateless mapping verifies at most three well-formed values per request, so three
    planted before the real one hide it (a flood of duplicates costs three MAC checks)."""
    storage = satchel.MemoryStorage() if server_side else None
    mapping = satchel.cookie(Login, "SID", storage=storage, transformers=[satchel.Sign(KEY)])
    sessions = satchel.Sessions(mapping)
    sent: list[bytes] = []

    async def main() -> httpx.Response:
        text = await first_value(sessions, write_ada, mapping)
        real = b"SID=" + text.encode("ascii")
        fakes = [b"SID=" + p.replace(b";", b"") for p in planted]
        pairs = [real, *fakes] if real_first else [*fakes, real]
        sent[:] = [b"; ".join([*others, *pairs]), text.encode("ascii")]
        async with client(serve(sessions, read_user)) as c:
            return await c.get("/", headers=[(b"cookie", sent[0])])

    response = run(main)
    assert response.status_code == 200
    # the SID values the app sees before the real one, in order (other cookies may be SID too)
    values = parse_cookie_header([sent[0]])["SID"]
    ahead = sum(mapping._well_formed(v) for v in values[: values.index(sent[1].decode("ascii"))])
    hidden = not server_side and ahead >= 3
    assert response.json() == (None if hidden else "ada")


# -- 2. every bit flip is refused ------------------------------------------------------------


def flips(data: bytes) -> Iterator[bytes]:
    """``data`` with each one of its bits flipped in turn."""
    for i in range(len(data) * 8):
        out = bytearray(data)
        out[i // 8] ^= 1 << (i % 8)
        yield bytes(out)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


FLIP_MAPPINGS: dict[str, Callable[[], satchel.Mapping[Any]]] = {
    "stateless cookie": lambda: satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
    "stateless header": lambda: satchel.header(Cart, "X-Cart", transformers=[satchel.Sign(KEY)]),
    "signed server-side ID": lambda: satchel.cookie(
        Cart, "SID", storage=satchel.MemoryStorage(), transformers=[satchel.Sign(KEY)]
    ),
    "digest server-side ID": lambda: satchel.cookie(
        Cart, "SID", storage=satchel.MemoryStorage(), transformers=[satchel.Digest()]
    ),
}


def issue_then_replay(
    mapping: satchel.Mapping[Any], value: Cart, variants: Callable[[str], Iterator[bytes]]
) -> tuple[str, list[bytes]]:
    """Cut ``value``'s travelling text; replay each variant of its protected part.

    Returns the text and the variants that were accepted (read as a session).
    """
    sessions = satchel.Sessions(mapping)

    async def write(s: satchel.RequestSessions) -> None:
        s.set(value)

    async def read(s: satchel.RequestSessions) -> Any:
        got = await s.get(Cart)
        return None if got is None else got.items

    async def main() -> tuple[str, list[bytes]]:
        text = await first_value(sessions, write, mapping)
        # a server-side value ends in ".<when it was sent>", an unsigned hint; the ID is before it
        protected, dot, hint = text.partition(".")
        accepted = []
        async with client(serve(sessions, read)) as c:
            baseline = await c.get("/", headers=sent(mapping, text))
            assert baseline.json() == value.items, "the untouched value must read back"
            for variant in variants(protected):
                tail = (dot + hint).encode("ascii")
                r = await c.get("/", headers=sent(mapping, variant + tail))
                assert r.status_code == 200
                if r.json() is not None:
                    accepted.append(variant)
        return text, accepted

    return run(main)


def decoded_flips(protected: str) -> Iterator[bytes]:
    return (b64(f).encode("ascii") for f in flips(unb64(protected)))


def text_flips(protected: str) -> Iterator[bytes]:
    return flips(protected.encode("ascii"))


@pytest.mark.parametrize("kind", list(FLIP_MAPPINGS))
@pytest.mark.parametrize("variants", [decoded_flips, text_flips], ids=["decoded bytes", "base64url text"])
def test_every_single_bit_flip_is_refused(kind: str, variants: Callable[[str], Iterator[bytes]]) -> None:
    text, accepted = issue_then_replay(FLIP_MAPPINGS[kind](), Cart(items=["apple", "pear"]), variants)
    assert accepted == [], f"{len(accepted)} bit flips of {text!r} were accepted"


@FEW
@given(items=st.lists(st.text(max_size=12), max_size=5), seed=st.integers(0, 2**32))
def test_bit_flips_of_generated_values_are_refused(items: list[str], seed: int) -> None:
    def some_flips(protected: str) -> Iterator[bytes]:
        # a handful of flips spread over the whole value, both spellings
        raw = unb64(protected)
        positions = {(seed * (k + 1) * 2654435761) % (len(raw) * 8) for k in range(8)}
        for i in positions:
            out = bytearray(raw)
            out[i // 8] ^= 1 << (i % 8)
            yield b64(bytes(out)).encode("ascii")
        text = protected.encode("ascii")
        j = seed % (len(text) * 8)
        yield bytes(c ^ (1 << (j % 8)) if n == j // 8 else c for n, c in enumerate(text))

    mapping = FLIP_MAPPINGS["stateless cookie"]()
    _, accepted = issue_then_replay(mapping, Cart(items=items), some_flips)
    assert accepted == []


# -- 3. a value cut for one mapping never opens under another --------------------------------


class NoteA(msgspec.Struct):
    text: str


class NoteB(msgspec.Struct):
    text: str


class NoteC(msgspec.Struct):
    text: str


class NoteD(msgspec.Struct):
    text: str


def note_mappings(shared: satchel.MemoryStorage) -> list[satchel.Mapping[Any]]:
    """Four mappings, one key, one storage, types of the same shape: only the binding separates them."""
    sign = satchel.Sign(KEY)
    return [
        satchel.cookie(NoteA, "NOTE", transformers=[sign]),
        satchel.header(NoteB, "X-Note", transformers=[sign]),
        satchel.cookie(NoteC, "NOTE_SID", storage=shared, transformers=[sign]),
        satchel.header(NoteD, "X-Note-Sid", storage=shared, transformers=[sign]),
    ]


@FEW
@given(source=st.integers(0, 3), target=st.integers(0, 3), text=st.text(max_size=30))
def test_a_value_never_verifies_for_another_mapping_of_the_same_app(
    source: int, target: int, text: str
) -> None:
    mappings = note_mappings(satchel.MemoryStorage())
    sessions = satchel.Sessions(*mappings)
    src, dst = mappings[source], mappings[target]

    async def write(s: satchel.RequestSessions) -> None:
        s.set(src.type(text=text))

    async def read(s: satchel.RequestSessions) -> Any:
        got = await s.get(dst.type)
        return None if got is None else got.text

    async def main() -> Any:
        value = await first_value(sessions, write, src)
        async with client(serve(sessions, read)) as c:
            return (await c.get("/", headers=sent(dst, value))).json()

    assert run(main) == (text if source == target else None)


names = st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12)
transports = st.sampled_from(["cookie", "header"])


class UnboundSign:
    """Signs with one key for every mapping: a transformer with no ``bind``."""

    authenticates = True

    def __init__(self) -> None:
        self._sign = satchel.Sign(KEY)

    def encode(self, data: bytes) -> bytes:
        return self._sign.encode(data)

    def decode(self, data: bytes) -> bytes | None:
        return self._sign.decode(data)


def single(
    transport: str, name: str, storage: satchel.MemoryStorage | None, protect: satchel.Transformer
) -> satchel.Mapping[NoteA]:
    if transport == "cookie":
        return satchel.cookie(NoteA, name, storage=storage, transformers=[protect])
    return satchel.header(NoteA, name, storage=storage, transformers=[protect])


@FEW
@given(
    first=st.tuples(transports, names),
    second=st.tuples(transports, names),
    kind=st.sampled_from(["signed stateless", "signed server-side", "unbound stateless"]),
)
def test_a_value_never_verifies_for_another_mapping_of_another_app(
    first: tuple[str, str], second: tuple[str, str], kind: str
) -> None:
    """Two apps, one key, one storage, one session type: the name and transport still bind.

    A transformer that authenticates but binds nothing (a third-party one) leaves the
    stateless value's own name to refuse it.
    """
    if kind == "unbound stateless":
        assume(first[1] != second[1])  # nothing but the name is left to tell them apart
    shared = satchel.MemoryStorage() if kind == "signed server-side" else None
    protect: satchel.Transformer = UnboundSign() if kind == "unbound stateless" else satchel.Sign(KEY)
    src = single(*first, shared, protect)
    dst = single(*second, shared, protect)

    async def write(s: satchel.RequestSessions) -> None:
        s.set(NoteA(text="secret"))

    async def read(s: satchel.RequestSessions) -> Any:
        got = await s.get(NoteA)
        return None if got is None else got.text

    async def main() -> Any:
        async with client(serve(satchel.Sessions(src), write)) as c:
            value = issued(await c.get("/"), src)
        assert value is not None
        async with client(serve(satchel.Sessions(dst), read)) as c:
            return (await c.get("/", headers=sent(dst, value))).json()

    assert run(main) == ("secret" if first == second else None)


# -- 4. round trips for every session type ----------------------------------------------------


class StructSession(msgspec.Struct):
    name: str
    count: int
    tags: list[str]
    ratio: float
    flag: bool
    note: str | None = None


@dataclasses.dataclass
class DataclassSession:
    name: str
    count: int
    tags: list[str]
    ratio: float
    flag: bool
    note: str | None = None


@attrs.define
class AttrsSession:
    name: str
    count: int
    tags: list[str]
    ratio: float
    flag: bool
    note: str | None = None


class TypedDictSession(TypedDict):
    name: str
    count: int
    tags: list[str]
    ratio: float
    flag: bool
    note: str | None


short_text = st.text(max_size=16)
fields: dict[str, st.SearchStrategy[Any]] = {
    "name": short_text,
    "count": st.integers(-(2**63), 2**63 - 1),
    "tags": st.lists(short_text, max_size=4),
    "ratio": st.floats(allow_nan=False),
    "flag": st.booleans(),
    "note": st.none() | short_text,
}
json_like: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3),
    max_leaves=12,
)

SESSION_VALUES: dict[type[Any], st.SearchStrategy[Any]] = {
    StructSession: st.builds(StructSession, **fields),
    DataclassSession: st.builds(DataclassSession, **fields),
    AttrsSession: st.builds(AttrsSession, **fields),
    TypedDictSession: st.fixed_dictionaries(fields),
    dict: st.dictionaries(short_text, json_like, max_size=5),
}


def round_trip_mapping(type_: type[Any], transport: str, server_side: bool) -> satchel.Mapping[Any]:
    storage = satchel.MemoryStorage() if server_side else None
    transformers = [] if server_side else [satchel.Sign(KEY)]
    if transport == "cookie":
        return satchel.cookie(type_, "S", storage=storage, transformers=transformers)
    return satchel.header(type_, "X-S", storage=storage, transformers=transformers)


@pytest.mark.parametrize("type_", list(SESSION_VALUES), ids=lambda t: t.__name__)
@pytest.mark.parametrize(
    ("transport", "server_side"),
    [("cookie", False), ("cookie", True), ("header", False), ("header", True)],
    ids=["stateless cookie", "server-side cookie", "stateless header", "server-side header"],
)
def test_round_trip_for_every_session_type(type_: type[Any], transport: str, server_side: bool) -> None:
    mapping = round_trip_mapping(type_, transport, server_side)
    sessions = satchel.Sessions(mapping)

    @FEW
    @given(value=SESSION_VALUES[type_])
    def check(value: Any) -> None:
        seen: list[object] = []

        async def write(s: satchel.RequestSessions) -> None:
            s.set(value, key=type_)

        async def read(s: satchel.RequestSessions) -> None:
            seen.append(await s.get(type_))

        async def main() -> httpx.Response:
            text = await first_value(sessions, write, mapping)
            async with client(serve(sessions, read)) as c:
                return await c.get("/", headers=sent(mapping, text))

        reread = run(main)
        assert seen == [value]
        assert type(seen[0]) is type(value)
        assert issued(reread, mapping) is None, "a session that was only read is not sent again"

    check()


class FixedId:
    """An identity generator that hands out one given ID; its ``is_valid`` accepts any
    URL-unreserved text of 16 to 64 characters (RFC 3986 section 2.3)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __call__(self) -> str:
        return self.value

    def is_valid(self, value: str) -> bool:
        return 16 <= len(value) <= 64 and all(c in UNRESERVED for c in value)


UNRESERVED = string.ascii_letters + string.digits + "-._~"


@pytest.mark.parametrize("transport", ["cookie", "header"])
@pytest.mark.parametrize("signed", [False, True], ids=["plain ID", "signed ID"])
def test_round_trip_with_a_custom_identity_generator(transport: str, signed: bool) -> None:
    @FEW
    @given(session_id=st.text(alphabet=UNRESERVED, min_size=16, max_size=64))
    @example(session_id="user.0123456789abcdef")
    def check(session_id: str) -> None:
        storage = satchel.MemoryStorage()
        options: dict[str, Any] = {
            "storage": storage,
            "identity": FixedId(session_id),
            "transformers": [satchel.Sign(KEY)] if signed else [],
        }
        mapping = (satchel.cookie if transport == "cookie" else satchel.header)(Login, "SID", **options)
        sessions = satchel.Sessions(mapping)

        async def write(s: satchel.RequestSessions) -> None:
            s.set(Login(user="ada"))

        async def read(s: satchel.RequestSessions) -> Any:
            got = await s.get(Login)
            return None if got is None else got.user

        async def main() -> Any:
            text = await first_value(sessions, write, mapping)
            async with client(serve(sessions, read)) as c:
                return (await c.get("/", headers=sent(mapping, text))).json()

        assert run(main) == "ada"
        assert len(storage) == 1

    check()


# -- 5. stateless values die at their deadline ----------------------------------------------------


def expiring(
    transport: str, server_side: bool, clock: Clock, max_age: float, max_lifetime: float | None = None
) -> satchel.Mapping[Cart]:
    storage = satchel.MemoryStorage(clock=clock) if server_side else None
    transformers = [] if server_side else [satchel.Sign(KEY)]
    if transport == "cookie":
        return satchel.cookie(
            Cart,
            "CART",
            storage=storage,
            transformers=transformers,
            max_age=max_age,
            max_lifetime=max_lifetime,
        )
    return satchel.header(
        Cart, "X-Cart", storage=storage, transformers=transformers, max_age=max_age, max_lifetime=max_lifetime
    )


KINDS = [("cookie", False), ("header", False), ("cookie", True), ("header", True)]
KIND_IDS = ["stateless cookie", "stateless header", "server-side cookie", "server-side header"]


@pytest.mark.parametrize(("transport", "server_side"), KINDS, ids=KIND_IDS)
def test_a_value_is_refused_after_max_age_though_the_client_replays_it(
    transport: str, server_side: bool
) -> None:
    @FEW
    @given(max_age=st.integers(1, 10**6), early=st.floats(0, 1, exclude_max=True), late=st.floats(1, 5))
    def check(max_age: int, early: float, late: float) -> None:
        clock = Clock(START)
        mapping = expiring(transport, server_side, clock, max_age)
        sessions = satchel.Sessions(mapping, clock=clock)

        async def write(s: satchel.RequestSessions) -> None:
            s.set(Cart(items=["x"]))

        async def read(s: satchel.RequestSessions) -> Any:
            return await s.get(Cart) is not None

        async def main() -> tuple[bool, bool]:
            text = await first_value(sessions, write, mapping)
            async with client(serve(sessions, read)) as c:
                # replay the value exactly as first issued, whatever the server sent since
                clock.now = START + min(int(early * max_age), max_age - 1)
                before = (await c.get("/", headers=sent(mapping, text))).json()
                # a stateless value carries its own deadline, so renewals never revive it; a
                # server-side session is one entry, and a read past half its idle time was
                # activity that moved its deadline
                renewed = server_side and clock.now - START > max_age / 2
                clock.now = (clock.now if renewed else START) + max_age * late
                after = (await c.get("/", headers=sent(mapping, text))).json()
            return before, after

        assert run(main) == (True, False)

    check()


def lifetime_timeline(
    transport: str, server_side: bool, lifetime: int, step: int, handler: Handler
) -> list[tuple[float, bool]]:
    """Start a session with max_lifetime=``lifetime``, then come back every ``step``
    seconds through ``handler`` (which returns whether the session was there), keeping
    whatever the server hands back: (seconds since the start, alive) per visit."""
    clock = Clock(START)
    mapping = expiring(transport, server_side, clock, max_age=100, max_lifetime=lifetime)
    sessions = satchel.Sessions(mapping, clock=clock)

    async def write(s: satchel.RequestSessions) -> None:
        s.set(Cart(items=["x"]))

    async def main() -> list[tuple[float, bool]]:
        text = await first_value(sessions, write, mapping)
        timeline = []
        async with client(serve(sessions, handler)) as c:
            while clock.now < START + lifetime + 2 * step:
                clock.now += step
                r = await c.get("/", headers=sent(mapping, text))
                timeline.append((clock.now - START, r.json()))
                text = issued(r, mapping) or text
        return timeline

    return run(main)


@pytest.mark.parametrize(("transport", "server_side"), KINDS, ids=KIND_IDS)
def test_rolling_renewals_never_outlive_max_lifetime(transport: str, server_side: bool) -> None:
    async def read(s: satchel.RequestSessions) -> Any:
        return await s.get(Cart) is not None

    @FEW
    @given(lifetime=st.integers(150, 2000), step=st.integers(51, 99))
    def check(lifetime: int, step: int) -> None:
        # visits every `step` seconds, under max_age: rolling renews, up to max_lifetime
        timeline = lifetime_timeline(transport, server_side, lifetime, step, read)
        assert [alive for _, alive in timeline] == [t < lifetime for t, _ in timeline], timeline

    check()


@pytest.mark.parametrize(("transport", "server_side"), KINDS, ids=KIND_IDS)
def test_regenerating_never_outlives_max_lifetime(transport: str, server_side: bool) -> None:
    """An app that regenerates the session on every request (a new ID each time) does not
    push back its absolute lifetime: regenerate keeps when the session began."""

    async def rotate(s: satchel.RequestSessions) -> Any:
        alive = await s.get(Cart) is not None
        if alive:
            s.regenerate(Cart)
        return alive

    @FEW
    @given(lifetime=st.integers(150, 600), step=st.integers(10, 99))
    def check(lifetime: int, step: int) -> None:
        timeline = lifetime_timeline(transport, server_side, lifetime, step, rotate)
        assert [alive for _, alive in timeline] == [t < lifetime for t, _ in timeline], timeline

    check()
