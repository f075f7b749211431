"""Responses that carry a session are never kept by a shared cache: ``Cache-Control: private``."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import satchel
from core_helpers import KEY, make_app
from starlette.responses import JSONResponse

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("both_paths")]


class Cart(msgspec.Struct):
    items: list[str] = []


def sessions(**options: Any) -> satchel.Sessions:
    return satchel.Sessions(
        satchel.cookie(Cart, "CART", transformers=[satchel.Sign(KEY)]),
        satchel.header(dict, "X-Session", storage=satchel.MemoryStorage()),
        **options,
    )


def responding(cache_control: str | None, *, change: str = "set") -> Any:
    async def handler(s: satchel.RequestSessions, request: Any) -> Any:
        if change == "set":
            s.set(Cart(items=["a"]))
        elif change == "clear":
            s.clear(Cart)
        elif change == "header":
            s.set({"user": "ada"}, key=dict)
        else:
            await s.get(Cart)
        headers = {"cache-control": cache_control} if cache_control else {}
        return JSONResponse("ok", headers=headers)

    return handler


@pytest.mark.parametrize(
    ("app_set", "sent"),
    [
        (None, "private"),
        ("public, max-age=600", "private, max-age=600"),
        ("max-age=60, s-maxage=600, public", "private, max-age=60"),
        ("no-cache", "private, no-cache"),
        ("no-store", "no-store"),  # stricter than private: kept as it is
        ("private, max-age=5", "private, max-age=5"),
        ("Private", "Private"),
    ],
)
async def test_a_response_that_sets_a_session_is_private(
    client_for: Any, app_set: str | None, sent: str
) -> None:
    """A response that sets a session is private, not only marked Vary: Cookie (which a
    shared cache may ignore)."""
    client = client_for(make_app(sessions(), go=responding(app_set)))
    assert (await client.get("/go")).headers["cache-control"] == sent


@pytest.mark.parametrize("change", ["clear", "header"])
async def test_deleting_a_cookie_or_setting_a_session_header_is_private_too(
    client_for: Any, change: str
) -> None:
    client = client_for(make_app(sessions(), put=responding(None), go=responding("public", change=change)))
    await client.get("/put")
    assert (await client.get("/go")).headers["cache-control"] == "private"


async def test_a_response_that_only_read_a_session_is_left_to_the_app(client_for: Any) -> None:
    client = client_for(make_app(sessions(), put=responding(None), go=responding("public", change="read")))
    await client.get("/put")
    response = await client.get("/go")
    assert response.headers["cache-control"] == "public"  # it varies on Cookie: caches keep them apart
    assert response.headers["vary"] == "Cookie"


async def test_an_app_opts_out_with_private_false(client_for: Any) -> None:
    client = client_for(make_app(sessions(private=False), go=responding("public, max-age=60")))
    assert (await client.get("/go")).headers["cache-control"] == "public, max-age=60"
