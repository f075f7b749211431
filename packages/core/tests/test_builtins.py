"""The built-ins: Sign (and the keys it refuses), Digest, serializers, MemoryStorage, token_id, the CLI."""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from typing import TypedDict

import attrs
import msgspec
import pytest
import satchel
from core_helpers import KEY, OTHER_KEY
from satchel._cli import main


def test_sign_refuses_every_truncation_and_extension() -> None:
    sign = satchel.Sign(KEY)
    token = sign.encode(b"hello")
    for cut in range(len(token)):
        assert sign.decode(token[:cut]) is None
    assert sign.decode(token + b"\x00") is None


def test_sign_binding_gives_each_context_its_own_key() -> None:
    sign = satchel.Sign(KEY)
    cart, prefs = sign.bind("cookie:CART"), sign.bind("cookie:PREFS")
    assert cart.decode(cart.encode(b"x")) == b"x"
    assert prefs.decode(cart.encode(b"x")) is None
    assert sign.decode(cart.encode(b"x")) is None


def test_sign_rotation_marks_old_key_values_for_reissue() -> None:
    old = satchel.Sign(OTHER_KEY)
    rotated = satchel.Sign(KEY, fallback_keys=[OTHER_KEY])
    opened = rotated.decode(old.encode(b"x"))
    assert opened == b"x"
    assert isinstance(opened, satchel.Reissue)
    assert not isinstance(rotated.decode(rotated.encode(b"x")), satchel.Reissue)


def test_digest_detects_accidents_but_is_not_keyed() -> None:
    digest = satchel.Digest()
    value = digest.encode(b"data")
    assert digest.decode(value) == b"data"
    assert digest.decode(value[:-1] + bytes([value[-1] ^ 1])) is None
    assert satchel.Digest(salt="other").decode(value) is None
    with pytest.raises(satchel.ConfigError, match="sha256"):
        satchel.Digest(algorithm="nope")


class S(msgspec.Struct):
    a: int


@dataclasses.dataclass
class D:
    a: int


@attrs.define
class A:
    a: int


class T(TypedDict):
    a: int


@pytest.mark.parametrize("kind", [satchel.JSONSerializer, satchel.MsgPackSerializer])
@pytest.mark.parametrize(
    ("type_", "value"), [(S, S(1)), (D, D(1)), (A, A(1)), (T, {"a": 1}), (dict, {"a": 1})]
)
def test_serializers_round_trip_every_session_kind(kind: type, type_: type, value: object) -> None:
    ser = kind(type_)
    assert ser.decode(ser.encode(value)) == value


@pytest.mark.parametrize("kind", [satchel.JSONSerializer, satchel.MsgPackSerializer])
def test_serializers_validate_and_raise_only_serialization_error(kind: type) -> None:
    ser = kind(S)
    for bad in (b"", b"\xff\xfe", ser.encode(S(1))[:-1], kind(dict).encode({"a": "not an int"})):
        with pytest.raises(satchel.SerializationError):
            ser.decode(bad)


def test_token_id_is_32_random_bytes_url_safe() -> None:
    ids = {satchel.token_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 43 and satchel.token_id.is_valid(i) for i in ids)
    assert not satchel.token_id.is_valid("a" * 42)
    assert not satchel.token_id.is_valid("a" * 42 + "=")
    with pytest.raises(satchel.ConfigError):
        satchel.TokenId(nbytes=8)


@pytest.mark.anyio
async def test_memory_storage_purges_expired_entries_as_it_goes() -> None:
    now = [0.0]
    storage = satchel.MemoryStorage(clock=lambda: now[0])
    for i in range(1000):
        await storage.write(f"id{i}", b"x", 10)
    now[0] = 11
    for i in range(200):
        await storage.write(f"new{i}", b"y", 10)
    assert len(storage) < 1000  # expired ones go without anyone reading them
    assert await storage.read("id0") is None
    assert await storage.read("new0") == b"y"


@pytest.mark.anyio
async def test_memory_storage_touch_keeps_data_and_extends() -> None:
    now = [0.0]
    storage = satchel.MemoryStorage(clock=lambda: now[0])
    await storage.write("a", b"x", 10)
    now[0] = 8
    await storage.touch("a", 10)
    now[0] = 15
    assert await storage.read("a") == b"x"
    await storage.touch("absent", 10)
    assert await storage.read("absent") is None


def test_cli_keygen_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    key = capsys.readouterr().out.strip()
    satchel.Sign(key)  # long enough to be accepted
    assert len(key) >= 43


def test_cli_plugins_lists_the_core_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    main(["plugins"])
    out = capsys.readouterr().out
    assert "satchel 0.1.0" in out
    assert "schemes: memory" in out
    assert "transformers: digest, sign" in out


def test_cli_purge(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "nosuch://x"]) == 2
    assert "no plugin provides the storage scheme 'nosuch'" in capsys.readouterr().err
    assert main(["purge", "memory://"]) == 0
    assert "nothing to purge" in capsys.readouterr().out


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "satchel._cli", "keygen", "--bytes", "48"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(result.stdout.strip()) == 64


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
    """Sign refuses a placeholder or passphrase key, as a key or as a fallback key, and names
    `satchel keygen`: HMAC under a guessable key can be forged by anyone who guesses it."""
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
    """Random keys in every usual spelling (keygen, hex, bytes, base64 wrapped or not, a
    50-character secret) are always accepted: a key check that refused one at random would
    pass in CI and fail at deploy."""
    # random keys must never be refused at random: a key that passed in CI must pass at deploy
    for _ in range(500):
        sign = satchel.Sign(make())
        assert sign.decode(sign.encode(b"x")) == b"x"


def test_a_key_with_a_newline_or_too_few_spelled_bytes_says_so() -> None:
    """A key read from a file with its newline, or a hex key that spells too few bytes, is refused
    with a message that says so."""
    with pytest.raises(satchel.ConfigError, match=r"ends with whitespace.*strip it"):
        satchel.Sign(secrets.token_urlsafe(32) + "\n")  # open(file).read()
    with pytest.raises(satchel.ConfigError, match="spells only 16 bytes in hex"):
        satchel.Sign(secrets.token_hex(16))


def test_a_key_that_is_not_utf8_or_has_a_newline_as_bytes_says_so() -> None:
    """A key that is not UTF-8 (as os.environ keeps such bytes), or a bytes key ending with a
    newline (a key file read in binary mode), is refused with a message that says so."""
    with pytest.raises(satchel.ConfigError, match="not UTF-8"):
        satchel.Sign(secrets.token_urlsafe(32) + "\udcff")  # how os.environ keeps such bytes
    with pytest.raises(satchel.ConfigError, match="ends with whitespace"):
        satchel.Sign(base64.b64encode(os.urandom(32)) + b"\n")  # a key file read in binary mode
