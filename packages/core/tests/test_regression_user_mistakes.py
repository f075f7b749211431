"""Mistakes a new user makes, found by following the docs literally: each one either was
accepted and failed later (a forgeable mapping, a session that silently vanished) or
failed with an error that did not say what to change."""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import secrets
from collections.abc import Callable
from typing import TypedDict

import msgspec
import pytest
import satchel
from core_helpers import KEY
from review_helpers import request


class Role(msgspec.Struct):
    admin: bool = False


class Cart(msgspec.Struct):
    items: list[str] = []


@dataclasses.dataclass
class Counter:
    n: int = 0


class Prefs(TypedDict):
    theme: str


# -- a stateless mapping must authenticate what travels ---------------------------------


def test_a_stateless_mapping_protected_only_by_a_digest_is_refused() -> None:
    # anyone can recompute a digest: such a cookie could be forged with admin=True
    with pytest.raises(satchel.ConfigError, match=r"none of its transformers \(Digest\) authenticates"):
        satchel.cookie(Role, "ROLE", transformers=[satchel.Digest()])


def test_a_transformer_that_does_not_say_it_authenticates_is_not_enough() -> None:
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
    with pytest.raises(satchel.ConfigError, match=r"NoneType, not str or bytes.*variable is set"):
        satchel.Sign(os.environ.get("SATCHEL_TEST_SURELY_UNSET_KEY"))  # type: ignore[arg-type]
    with pytest.raises(satchel.ConfigError, match=r"lists the class; make one: Sign\(key\)"):
        satchel.cookie(Role, "ROLE", transformers=[satchel.Sign])  # type: ignore[list-item]


# -- set() refuses a value that would not read back ---------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("key", "bad"),
    [(Cart, Cart(items=123)), (Counter, Counter(n="seven")), (Prefs, {"theme": 7})],  # type: ignore[arg-type]
    ids=["struct", "dataclass", "typeddict"],
)
@pytest.mark.parametrize("server_side", [False, True], ids=["stateless", "server-side"])
async def test_set_refuses_a_value_that_would_not_read_back(
    key: type, bad: object, server_side: bool
) -> None:
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


@pytest.mark.anyio
@pytest.mark.parametrize("server_side", [False, True], ids=["stateless", "server-side"])
@pytest.mark.parametrize("breaks", [wrong_type, not_encodable], ids=["wrong-type", "not-encodable"])
async def test_an_in_place_change_that_would_not_read_back_keeps_the_last_good_value(
    server_side: bool, breaks: Callable[[Cart], None], caplog: pytest.LogCaptureFixture
) -> None:
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


# -- messages -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_set_none_is_a_type_error_that_points_to_clear() -> None:
    sessions = satchel.Sessions(satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]))

    async def handler(s: satchel.RequestSessions) -> None:
        with pytest.raises(TypeError, match=r"set\(None\): to end the session, call clear"):
            s.set(None)
        with pytest.raises(TypeError, match=r"to end session 'CART', call clear"):
            s.set(None, key=Cart)

    await request(sessions, {}, handler)


@pytest.mark.anyio
async def test_too_large_for_the_storage_names_the_storage_not_the_transport() -> None:
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


# -- keys: Sign refuses what Encrypt refuses --------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    [
        "k" * 32,
        bytes(range(32)),
        b"\x00" * 64,
        "ab" * 32,
        "0123456789abcdef0123456789abcdef",
        "correct horse battery staple 123",
        "change me: at least 32 random bytes, e.g. from `satchel keygen`",
        "0123456789abcdef" * 4,
        "thisismysupersecretkeyforsigningsessionsinproduction",
        b"password" * 4 + b"1234567890",
    ],
    ids=[
        "repeat",
        "counter",
        "zeros",
        "hex-repeat",
        "hex-counter",
        "passphrase",
        "readme-placeholder",
        "hex-pattern",
        "lowercase-phrase",
        "printable-bytes-phrase",
    ],
)
def test_sign_refuses_a_placeholder_or_passphrase_key(weak: str | bytes) -> None:
    # HMAC under a guessable key can be forged by anyone who guesses it
    with pytest.raises(satchel.ConfigError, match="satchel keygen"):
        satchel.Sign(weak)
    with pytest.raises(satchel.ConfigError, match="Sign fallback key"):
        satchel.Sign(KEY, fallback_keys=[weak])


DJANGO_STYLE = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)"


def wrapped_base64(raw: bytes) -> str:
    """Base64 broken into 64-column lines, as `openssl rand -base64 64` prints it."""
    text = base64.b64encode(raw).decode()
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64))


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32),
        lambda: os.urandom(32),
        lambda: bytearray(os.urandom(48)),
        lambda: "".join(secrets.choice(DJANGO_STYLE) for _ in range(50)),
        lambda: wrapped_base64(os.urandom(64)),
        lambda: base64.b64encode(os.urandom(32)).decode(),
    ],
    ids=["keygen", "hex", "bytes", "bytearray", "django-style-50", "wrapped-base64", "standard-base64"],
)
def test_sign_accepts_random_keys_in_every_usual_spelling(make: Callable[[], str | bytes]) -> None:
    # random keys must never be refused at random: a key that passed in CI must pass at deploy
    for _ in range(500):
        sign = satchel.Sign(make())
        assert sign.decode(sign.encode(b"x")) == b"x"


def test_a_key_with_a_newline_or_too_few_spelled_bytes_says_so() -> None:
    with pytest.raises(satchel.ConfigError, match=r"ends with whitespace.*strip it"):
        satchel.Sign(secrets.token_urlsafe(32) + "\n")  # open(file).read()
    with pytest.raises(satchel.ConfigError, match="spells only 16 bytes in hex"):
        satchel.Sign(secrets.token_hex(16))


def test_a_bindable_transformer_that_authenticates_may_bind_to_a_helper() -> None:
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


@pytest.mark.anyio
async def test_a_value_msgpack_cannot_encode_is_a_serialization_error() -> None:
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


def test_a_key_that_is_not_utf8_or_has_a_newline_as_bytes_says_so() -> None:
    with pytest.raises(satchel.ConfigError, match="not UTF-8"):
        satchel.Sign(secrets.token_urlsafe(32) + "\udcff")  # how os.environ keeps such bytes
    with pytest.raises(satchel.ConfigError, match="ends with whitespace"):
        satchel.Sign(base64.b64encode(os.urandom(32)) + b"\n")  # a key file read in binary mode
