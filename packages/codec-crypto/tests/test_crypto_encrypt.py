"""Encrypt on its own: wire format, binding, rotation, keys, compression cap."""

from __future__ import annotations

import os
import secrets
import tracemalloc
import zlib
from typing import Any

import pytest
import satchel
from satchel_crypto import Encrypt

KEY = os.urandom(32)
OLD = os.urandom(32)
OVERHEAD = 1 + 4 + 12 + 1 + 16  # version, key id, nonce, flag, tag


def box(key: bytes = KEY, **options: object) -> Encrypt:
    return Encrypt(key, **options).bind("cookie:CART")  # type: ignore[arg-type]


def test_round_trip_and_nothing_of_the_plaintext_shows() -> None:
    data = b'{"items":["apple","pear"],"price":1299}'
    value = box().encode(data)
    assert box().decode(value) == data
    assert len(value) == len(data) + OVERHEAD
    for word in (b"apple", b"pear", b"1299", b"items"):
        assert word not in value


def test_empty_value_round_trips() -> None:
    assert box().decode(box().encode(b"")) == b""


def test_is_a_bindable_transformer() -> None:
    assert isinstance(Encrypt(KEY), satchel.BindableTransformer)
    assert isinstance(Encrypt(KEY).bind("cookie:CART"), satchel.Transformer)


def test_every_value_gets_a_fresh_nonce() -> None:
    encrypt = box()
    values = [encrypt.encode(b"same") for _ in range(2000)]
    assert len({v[5:17] for v in values}) == len(values)
    assert len(set(values)) == len(values)


@pytest.mark.parametrize("other", ["cookie:LOGIN", "header:CART", "cookie:cart", "cookie:CART ", ""])
def test_a_value_made_for_one_mapping_never_opens_under_another(other: str) -> None:
    value = box().encode(b"data")
    assert Encrypt(KEY).bind(other).decode(value) is None


def test_bind_replaces_the_context_rather_than_nesting() -> None:
    value = Encrypt(KEY).bind("cookie:LOGIN").bind("cookie:CART").encode(b"data")
    assert box().decode(value) == b"data"


def test_truncated_values_are_refused_at_every_length() -> None:
    value = box().encode(b"some session data")
    encrypt = box()
    for cut in range(len(value)):
        assert encrypt.decode(value[:cut]) is None


def test_a_shortened_tag_is_refused() -> None:
    value = box().encode(b"some session data")
    for tag_length in (4, 8, 12, 15):
        assert box().decode(value[: len(value) - 16 + tag_length]) is None


def test_a_foreign_version_byte_is_refused() -> None:
    value = box().encode(b"data")
    for version in (0, 2, 0x80, 0xFF):
        assert box().decode(bytes([version]) + value[1:]) is None


def test_a_foreign_key_id_is_refused() -> None:
    value = box().encode(b"data")
    forged = value[:1] + bytes(b ^ 0xFF for b in value[1:5]) + value[5:]
    assert box().decode(forged) is None


def test_a_nonce_taken_from_another_value_is_refused() -> None:
    first, second = box().encode(b"first"), box().encode(b"other")
    assert box().decode(first[:17] + second[17:]) is None
    assert box().decode(second[:17] + first[17:]) is None


def test_trailing_bytes_are_refused() -> None:
    assert box().decode(box().encode(b"data") + b"\x00") is None


def test_not_bytes_but_bytes_like_input_still_opens() -> None:
    value = box().encode(b"data")
    assert box().decode(bytearray(value)) == b"data"  # type: ignore[arg-type]  # bytes-like on purpose
    assert box().decode(memoryview(value)) == b"data"  # type: ignore[arg-type]


# --- rotation ---------------------------------------------------------------------


def test_a_value_under_a_fallback_key_opens_and_asks_to_be_reissued() -> None:
    old_value = box(OLD).encode(b"data")
    opened = box(KEY, fallback_keys=[OLD]).decode(old_value)
    assert opened == b"data"
    assert isinstance(opened, satchel.Reissue)


def test_a_value_under_the_newest_key_is_not_reissued() -> None:
    rotated = box(KEY, fallback_keys=[OLD])
    opened = rotated.decode(rotated.encode(b"data"))
    assert opened == b"data"
    assert not isinstance(opened, satchel.Reissue)


def test_new_values_are_encrypted_under_the_newest_key_only() -> None:
    value = box(KEY, fallback_keys=[OLD]).encode(b"data")
    assert box(KEY).decode(value) == b"data"
    assert box(OLD).decode(value) is None


def test_a_retired_keys_values_are_refused() -> None:
    old_value = box(OLD).encode(b"data")
    assert box(KEY).decode(old_value) is None
    assert box(KEY, fallback_keys=[os.urandom(32)]).decode(old_value) is None


def test_any_listed_fallback_key_opens() -> None:
    keys = [os.urandom(32) for _ in range(3)]
    rotated = box(KEY, fallback_keys=keys)
    for key in keys:
        opened = rotated.decode(box(key).encode(b"data"))
        assert isinstance(opened, satchel.Reissue)
        assert opened == b"data"


# --- keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        b"",
        os.urandom(31),
        "short",
        secrets.token_hex(15),  # 30 characters
    ],
    ids=["empty", "31-bytes", "short-text", "30-hex"],  # fixed ids: parallel runs collect alike
)
def test_a_short_key_is_a_config_error_at_construction(key: str | bytes) -> None:
    with pytest.raises(satchel.ConfigError, match="satchel keygen"):
        Encrypt(key)


@pytest.mark.parametrize("key", ["x" * 32, "password" * 4, b"\x00" * 64, "ab" * 32])
def test_a_placeholder_key_is_a_config_error(key: str | bytes) -> None:
    with pytest.raises(satchel.ConfigError, match="placeholder"):
        Encrypt(key)


def test_a_weak_fallback_key_is_a_config_error() -> None:
    with pytest.raises(satchel.ConfigError, match="fallback key"):
        Encrypt(KEY, fallback_keys=[b"short"])


def test_fallback_keys_given_as_one_key_is_a_config_error() -> None:
    with pytest.raises(satchel.ConfigError, match="list of keys"):
        Encrypt(KEY, fallback_keys=OLD)  # type: ignore[arg-type]  # the mistake under test


@pytest.mark.parametrize(
    "key",
    [secrets.token_urlsafe(32), secrets.token_hex(32), os.urandom(32), os.urandom(64)],
    ids=["base64url", "hex", "32-bytes", "64-bytes"],
)
def test_random_keys_in_every_usual_spelling_are_accepted(key: str | bytes) -> None:
    encrypt = Encrypt(key).bind("cookie:CART")
    assert encrypt.decode(encrypt.encode(b"data")) == b"data"


@pytest.mark.parametrize(
    "weak",
    [
        bytes(range(32)),
        "0123456789abcdef0123456789abcdef",
        "ab" * 32,
        "correct horse battery staple 123",
        "changeme" + "CHANGEME" + "changeme" + "12345678",
    ],
    ids=["counter", "hex-placeholder", "hex-repeat", "passphrase", "changeme"],
)
def test_a_weak_key_is_a_config_error(weak: str | bytes) -> None:
    """A key that only looks random (a counter, a hex placeholder, a repeated pattern, a
    passphrase) is refused and `satchel keygen` is named: the cipher is only as strong as
    its key."""
    with pytest.raises(satchel.ConfigError, match="satchel keygen"):
        Encrypt(weak)


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_urlsafe(64),
        lambda: secrets.token_hex(32),
        lambda: os.urandom(32),
        lambda: os.urandom(48),
    ],
    ids=["keygen", "keygen-64", "hex", "bytes", "bytes-48"],
)
def test_random_keys_are_never_refused_at_random(make: Any) -> None:
    """Random keys in every usual spelling and length are accepted every time: a key check that
    refused one at random would pass in CI and fail at deploy."""
    for _ in range(50):
        Encrypt(make())


def test_repr_shows_no_key_material() -> None:
    text = repr(Encrypt(KEY, fallback_keys=[OLD]))
    assert "2 key(s)" in text
    assert KEY.hex() not in text
    assert repr(KEY) not in text


def test_max_inflated_below_one_is_a_config_error() -> None:
    with pytest.raises(satchel.ConfigError, match="max_inflated"):
        Encrypt(KEY, compress=True, max_inflated=0)


# --- compression ------------------------------------------------------------------

REPETITIVE = b'{"item":"apple","qty":1},' * 200


def test_compression_makes_repetitive_sessions_shorter() -> None:
    plain = box().encode(REPETITIVE)
    compressed = box(compress=True).encode(REPETITIVE)
    assert len(compressed) < len(plain) // 10
    assert box(compress=True).decode(compressed) == REPETITIVE


def test_incompressible_data_is_sent_as_is() -> None:
    data = os.urandom(500)
    assert len(box(compress=True).encode(data)) == len(data) + OVERHEAD


def test_compression_can_be_turned_on_or_off_without_losing_sessions() -> None:
    assert box().decode(box(compress=True).encode(REPETITIVE)) == REPETITIVE
    assert box(compress=True).decode(box().encode(REPETITIVE)) == REPETITIVE


def test_a_value_that_inflates_past_the_cap_is_refused() -> None:
    data = b"a" * 1000
    value = box(compress=True).encode(data)
    assert box(compress=True, max_inflated=1000).decode(value) == data
    assert box(compress=True, max_inflated=999).decode(value) is None


def test_a_compression_bomb_is_refused_without_inflating_it() -> None:
    # 64 MiB of zeros deflates to ~64 KiB; a key holder could put that in a value
    deflater = zlib.compressobj(level=9, wbits=-15)
    bomb = deflater.compress(bytes(64 * 1024 * 1024)) + deflater.flush()
    encrypt = box(compress=True)
    value = _seal_deflated(encrypt, bomb)

    tracemalloc.start()
    try:
        assert encrypt.decode(value) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the cap (64 KiB) plus the sealed value, not the 64 MiB it would inflate to
    assert peak < 1024 * 1024


def test_a_corrupt_deflate_stream_under_a_valid_tag_is_refused() -> None:
    encrypt = box(compress=True)
    assert encrypt.decode(_seal_deflated(encrypt, b"\xff\xff not deflate")) is None
    good = zlib.compressobj(wbits=-15)
    stream = good.compress(b"data") + good.flush()
    assert encrypt.decode(_seal_deflated(encrypt, stream)) == b"data"
    assert encrypt.decode(_seal_deflated(encrypt, stream[:-1])) is None  # unfinished
    assert encrypt.decode(_seal_deflated(encrypt, stream + b"junk")) is None


def test_an_unknown_flag_under_a_valid_tag_is_refused() -> None:
    encrypt = box()
    assert encrypt.decode(_seal(encrypt, b"\x02data")) is None


def test_a_compressible_value_larger_than_the_cap_round_trips() -> None:
    """A compressible value larger than max_inflated round-trips: decode refuses to inflate past
    the cap, so encode sends such a value raw rather than compressed."""
    # decode refuses to inflate past max_inflated, so such a value must travel raw
    box = Encrypt(KEY, compress=True).bind("cookie:CART")
    data = b'{"items": ["apple"]}' * 5000  # 100 000 bytes, very compressible
    assert box.decode(box.encode(data)) == data


def test_a_value_over_a_small_cap_round_trips() -> None:
    """The same with a small max_inflated: a value over it travels raw and opens."""
    box = Encrypt(KEY, compress=True, max_inflated=1024).bind("cookie:CART")
    data = b"a" * 2048
    assert box.decode(box.encode(data)) == data


def _seal_deflated(encrypt: Encrypt, stream: bytes) -> bytes:
    return _seal(encrypt, b"\x01" + stream)


def _seal(encrypt: Encrypt, plaintext: bytes) -> bytes:
    """A value sealed under ``encrypt``'s key with a chosen plaintext, as only a key
    holder could make: what the checks after authentication must still survive."""
    key = encrypt._keys[0]
    header = b"\x01" + key.key_id + os.urandom(12)
    return header + key.aead.encrypt(header[-12:], plaintext, header)
