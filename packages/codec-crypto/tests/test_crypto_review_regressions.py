"""Regressions found in review: values past the inflate cap, and weak master keys."""

from __future__ import annotations

import os
import secrets
from typing import Any

import httpx
import pytest
import satchel
import satchel.testing
from satchel_crypto import Encrypt

KEY = os.urandom(32)


def test_a_compressible_value_larger_than_the_cap_round_trips() -> None:
    # decode refuses to inflate past max_inflated, so such a value must travel raw
    box = Encrypt(KEY, compress=True).bind("cookie:CART")
    data = b'{"items": ["apple"]}' * 5000  # 100 000 bytes, very compressible
    assert box.decode(box.encode(data)) == data


def test_a_value_over_a_small_cap_round_trips() -> None:
    box = Encrypt(KEY, compress=True, max_inflated=1024).bind("cookie:CART")
    data = b"a" * 2048
    assert box.decode(box.encode(data)) == data


@pytest.mark.anyio
async def test_a_large_compressible_cart_is_never_silently_lost() -> None:
    """Past the cap the value travels raw, so a cookie too large for it fails loudly at set."""
    sessions = satchel.Sessions(satchel.cookie(dict, "CART", transformers=[Encrypt(KEY, compress=True)]))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    cart = {"items": [f"apple-{i % 50}" for i in range(9000)]}
    transport = httpx.ASGITransport(satchel.SessionMiddleware(app, sessions))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        with pytest.raises(satchel.SessionTooLarge):
            await satchel.testing.set_session(client, sessions, cart)
        small = {"items": [f"apple-{i % 50}" for i in range(300)]}
        await satchel.testing.set_session(client, sessions, small)
        assert await satchel.testing.get_session(client, sessions, dict) == small


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
def test_random_keys_in_every_spelling_are_accepted(make: Any) -> None:
    for _ in range(50):
        Encrypt(make())
