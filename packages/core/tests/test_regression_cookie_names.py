"""F10 (low): cookie names and paths that are not RFC 6265 tokens pass the config check:
control characters other than TAB/CR/LF (NUL, DEL) and non-ASCII. A name outside latin-1
only fails at the first response (UnicodeEncodeError -> 500), and NUL/DEL go into the
Set-Cookie header as-is."""

from __future__ import annotations

import msgspec
import pytest
import satchel


class Cart(msgspec.Struct):
    items: list[str] = []


@pytest.mark.parametrize("name", ["S\x00ID", "S\x7fID", "S\u0100ID", "S\x0bID"])
def test_bad_cookie_name_is_a_config_error(name: str) -> None:
    with pytest.raises(satchel.ConfigError):
        satchel.cookie(Cart, name, storage=satchel.MemoryStorage())


@pytest.mark.parametrize("path", ["/a\x00b", "/caf\u0100"])
def test_bad_cookie_path_is_a_config_error(path: str) -> None:
    with pytest.raises(satchel.ConfigError):
        satchel.cookie(Cart, "SID", storage=satchel.MemoryStorage(), path=path)
