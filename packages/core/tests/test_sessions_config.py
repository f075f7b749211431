"""A broken configuration fails when it is built, with a message that says what to change."""

from __future__ import annotations

import datetime
import math
import os
from typing import Any

import msgspec
import pytest
import satchel
from core_helpers import KEY, make_app, set_cookies
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.anyio


class Cart(msgspec.Struct):
    items: list[str] = []


class Login(msgspec.Struct):
    user: str


class Role(msgspec.Struct):
    admin: bool = False


def sign() -> list[satchel.Transformer]:
    return [satchel.Sign(KEY)]


def test_two_mappings_with_one_name_clash() -> None:
    with pytest.raises(satchel.ConfigError, match="'S' is used by two mappings"):
        satchel.Sessions(
            satchel.cookie(Cart, "S", transformers=sign()),
            satchel.cookie(Login, "S", transformers=sign()),
        )


def test_header_names_clash_regardless_of_case() -> None:
    with pytest.raises(satchel.ConfigError, match="used by two mappings"):
        satchel.Sessions(
            satchel.header(Cart, "X-A", transformers=sign()),
            satchel.header(Login, "x-a", transformers=sign()),
        )


def test_one_type_mapped_twice_clashes() -> None:
    with pytest.raises(satchel.ConfigError, match="Cart is mapped twice"):
        satchel.Sessions(
            satchel.cookie(Cart, "A", transformers=sign()),
            satchel.cookie(Cart, "B", transformers=sign()),
        )


def test_a_stateless_mapping_without_protection_is_refused() -> None:
    with pytest.raises(satchel.ConfigError, match=r"anyone could forge it.*Sign"):
        satchel.cookie(Cart, "CART")


def test_a_short_key_is_refused_and_keygen_is_named() -> None:
    with pytest.raises(satchel.ConfigError, match="satchel keygen"):
        satchel.Sign("too short")
    with pytest.raises(satchel.ConfigError, match="fallback"):
        satchel.Sign(KEY, fallback_keys=["short"])


def test_an_unsupported_session_type_is_refused() -> None:
    class NotSerializable:
        def __init__(self, x: object) -> None:
            self.x = x

    with pytest.raises(satchel.ConfigError, match="cannot be a session type"):
        satchel.cookie(NotSerializable, "X", transformers=sign())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "__Host-s", "path": "/app"}, "requires path='/'"),
        ({"name": "__Host-s", "domain": "example.com"}, "forbids a domain"),
        ({"name": "__Host-s", "secure": False}, "requires secure=True"),
        ({"name": "__Secure-s", "secure": False}, "requires secure=True"),
        ({"same_site": "none", "secure": False}, "requires secure=True"),
        ({"partitioned": True, "secure": False}, "requires secure=True"),
        ({"same_site": "sometimes"}, "use 'lax', 'strict' or 'none'"),
        ({"name": "bad name"}, "not a valid token"),
        ({"max_age": 0}, "seconds > 0"),
        ({"max_lifetime": -1}, "seconds > 0"),
    ],
)
def test_cookie_attribute_rules(options: dict[str, Any], message: str) -> None:
    options.setdefault("name", "S")
    name = options.pop("name")
    with pytest.raises(satchel.ConfigError, match=message):
        satchel.cookie(Cart, name, transformers=sign(), **options)


def test_conflict_detection_needs_compare_and_set() -> None:
    class NoCas:
        async def read(self, id: str) -> bytes | None:
            return None

        async def write(self, id: str, data: bytes, ttl: float | None) -> None: ...
        async def invalidate(self, id: str) -> None: ...
        async def touch(self, id: str, ttl: float | None) -> None: ...
        async def aclose(self) -> None: ...

    with pytest.raises(satchel.ConfigError, match="compare-and-set"):
        satchel.cookie(Login, "SID", storage=NoCas(), detect_conflicts=True)


def test_an_object_that_is_not_a_storage_is_refused() -> None:
    with pytest.raises(satchel.ConfigError, match="is not a SessionStorage"):
        satchel.cookie(Login, "SID", storage=object())  # type: ignore[arg-type]


def test_an_unknown_storage_scheme_names_the_package_to_install() -> None:
    with pytest.raises(satchel.PluginError, match=r"no plugin provides the storage scheme 'nosuch'.*memory"):
        satchel.cookie(Login, "SID", storage="nosuch://x")


def test_a_storage_url_without_scheme_is_refused() -> None:
    with pytest.raises(satchel.PluginError, match="scheme://"):
        satchel.cookie(Login, "SID", storage="sessions.db")


def test_storage_url_resolves_through_plugins() -> None:
    mapping = satchel.cookie(Login, "SID", storage="memory://")
    assert isinstance(mapping.storage, satchel.MemoryStorage)


def test_middleware_needs_sessions() -> None:
    with pytest.raises(satchel.ConfigError, match=r"satchel.Sessions"):
        satchel.SessionMiddleware(lambda s, r, w: None, [satchel.cookie(Cart, "C", transformers=sign())])  # type: ignore[arg-type]


async def test_sessions_of_without_middleware_says_how_to_install_it() -> None:
    with pytest.raises(satchel.ConfigError, match=r"SessionMiddleware\(app, sessions\)"):
        satchel.sessions_of({"type": "http"})


async def test_asking_for_an_unmapped_type_names_the_mapped_ones(client_for: Any) -> None:
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", transformers=sign()))
    request = satchel.RequestSessions(sessions, {"type": "http", "headers": []})
    with pytest.raises(satchel.ConfigError, match=r"Cart \('CART'\)"):
        await request.get(Login)


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [
        ("http://localhost", False),  # an in-process test client: no real server says so
        ("http://testserver", False),
        ("http://testserver.local", False),  # Litestar's test client
        ("http://127.0.0.1:8000", True),  # what a real server behind a TLS proxy reports
        ("http://example.com", True),
        ("https://example.com", True),
        ("https://localhost", True),
    ],
)
async def test_secure_by_default_except_plain_http_through_a_test_client(
    client_for: Any, base_url: str, secure: bool
) -> None:
    async def put(s: satchel.RequestSessions, request: Any) -> Any:
        s.set(Cart(items=["a"]))
        return "ok"

    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", transformers=sign()))
    client = client_for(make_app(sessions, put=put), base_url=base_url)
    [cookie] = set_cookies(await client.get("/put"))
    assert ("; Secure" in cookie) is secure
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie
    assert "; Path=/" in cookie


async def test_host_prefix_always_secure(client_for: Any) -> None:
    async def put(s: satchel.RequestSessions, request: Any) -> Any:
        s.set(Cart(items=["a"]))
        return "ok"

    sessions = satchel.Sessions(satchel.cookie(Cart, "__Host-cart", transformers=sign(), partitioned=True))
    client = client_for(make_app(sessions, put=put), base_url="http://localhost")
    [cookie] = set_cookies(await client.get("/put"))
    assert "; Secure" in cookie
    assert "; Partitioned" in cookie


@pytest.mark.parametrize(
    "value",
    [float("inf"), float("nan"), -1, 0, 0.0, "3600", b"60", True, [60], datetime.timedelta(0)],
)
@pytest.mark.parametrize("label", ["max_age", "max_lifetime"])
def test_a_duration_that_cannot_work_is_refused_when_the_mapping_is_built(label: str, value: object) -> None:
    """inf, nan and other durations that cannot work are refused when the mapping is built,
    not accepted only to make every set() answer 500."""
    with pytest.raises(satchel.ConfigError, match=label):
        satchel.cookie(Cart, "CART", transformers=sign(), **{label: value})
    with pytest.raises(satchel.ConfigError, match=label):
        satchel.header(Cart, "X-Cart", storage=satchel.MemoryStorage(), **{label: value})


@pytest.mark.parametrize(
    ("value", "seconds"), [(3600, 3600.0), (1.5, 1.5), (datetime.timedelta(hours=1), 3600.0), (None, None)]
)
def test_durations_take_seconds_or_a_timedelta(value: object, seconds: float | None) -> None:
    mapping = satchel.cookie(Cart, "CART", transformers=sign(), max_age=value, max_lifetime=value)  # type: ignore[arg-type]
    assert mapping.max_age == seconds
    assert mapping.max_lifetime == seconds


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.timedeltas(),
        st.text(max_size=8),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_any_duration_is_taken_exactly_or_refused_with_a_config_error(value: object) -> None:
    """Whatever a user passes as max_age, the mapping is built with that many seconds, or
    construction fails with a ConfigError naming it; never an error at the first request."""
    seconds: float | None
    if value is None:
        seconds = None
    elif isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        seconds = -1.0
    usable = seconds is None or (math.isfinite(seconds) and seconds > 0)
    if not usable:
        with pytest.raises(satchel.ConfigError, match="max_age"):
            satchel.cookie(Cart, "CART", transformers=sign(), max_age=value)  # type: ignore[arg-type]
        return
    mapping = satchel.cookie(Cart, "CART", transformers=sign(), max_age=value)  # type: ignore[arg-type]
    assert mapping.max_age == seconds


@pytest.mark.parametrize("name", ["S\x00ID", "S\x7fID", "S\u0100ID", "S\x0bID"])
def test_bad_cookie_name_is_a_config_error(name: str) -> None:
    """A cookie name that is not an RFC 6265 token (a control character such as NUL, DEL or
    VT, or a character outside ASCII) is refused when the mapping is built: it would go into
    Set-Cookie as-is, or fail only at the first response (a 500)."""
    with pytest.raises(satchel.ConfigError):
        satchel.cookie(Cart, name, storage=satchel.MemoryStorage())


@pytest.mark.parametrize("path", ["/a\x00b", "/caf\u0100"])
def test_bad_cookie_path_is_a_config_error(path: str) -> None:
    """A cookie path with a control character or a character outside ASCII is refused when
    the mapping is built, for the same reason as a bad name."""
    with pytest.raises(satchel.ConfigError):
        satchel.cookie(Cart, "SID", storage=satchel.MemoryStorage(), path=path)


# -- a stateless mapping must authenticate what travels ---------------------------------


def test_a_stateless_mapping_protected_only_by_a_digest_is_refused() -> None:
    """A stateless mapping whose only transformer is a Digest is refused: anyone can recompute a
    digest, so such a cookie could be forged with admin=True."""
    # anyone can recompute a digest: such a cookie could be forged with admin=True
    with pytest.raises(satchel.ConfigError, match=r"none of its transformers \(Digest\) authenticates"):
        satchel.cookie(Role, "ROLE", transformers=[satchel.Digest()])


def test_a_transformer_that_does_not_say_it_authenticates_is_not_enough() -> None:
    """A third-party transformer that does not declare `authenticates = True` does not make a
    stateless mapping safe on its own; beside Sign, or on a server-side mapping, it is
    accepted."""

    class Reverse:  # a third-party transformer that only reshapes the bytes
        def encode(self, data: bytes) -> bytes:
            return data[::-1]

        def decode(self, data: bytes) -> bytes | None:
            return data[::-1]

    with pytest.raises(satchel.ConfigError, match="authenticates = True"):
        satchel.header(Role, "X-Role", transformers=[Reverse()])
    # with Sign beside it, or on a server-side mapping (only an ID travels), it is fine
    satchel.header(Role, "X-Role", transformers=[Reverse(), satchel.Sign(KEY)])
    satchel.cookie(Role, "SID", storage=satchel.MemoryStorage(), transformers=[satchel.Digest()])


def test_a_missing_key_or_a_transformer_class_says_what_to_change() -> None:
    """A key read from an unset environment variable (None), or the Sign class listed instead of an
    instance, is refused with a message that says what to change."""
    with pytest.raises(satchel.ConfigError, match=r"NoneType, not str or bytes.*variable is set"):
        satchel.Sign(os.environ.get("SATCHEL_TEST_SURELY_UNSET_KEY"))  # type: ignore[arg-type]
    with pytest.raises(satchel.ConfigError, match=r"lists the class; make one: Sign\(key\)"):
        satchel.cookie(Role, "ROLE", transformers=[satchel.Sign])  # type: ignore[list-item]


def test_a_bindable_transformer_that_authenticates_may_bind_to_a_helper() -> None:
    """A transformer that declares `authenticates = True` and binds to a helper object that
    declares nothing is accepted: the declaration of the transformer given counts."""

    class Inner:  # what bind() returns: does the work, declares nothing
        def __init__(self, sign: satchel.Sign) -> None:
            self._sign = sign

        def encode(self, data: bytes) -> bytes:
            return self._sign.encode(data)

        def decode(self, data: bytes) -> bytes | None:
            return self._sign.decode(data)

    class Outer:
        authenticates = True

        def encode(self, data: bytes) -> bytes:
            raise AssertionError("only the bound copy is used")

        def decode(self, data: bytes) -> bytes | None:
            raise AssertionError("only the bound copy is used")

        def bind(self, context: str) -> Inner:
            return Inner(satchel.Sign(KEY).bind(context))

    satchel.cookie(Role, "ROLE", transformers=[Outer()])
