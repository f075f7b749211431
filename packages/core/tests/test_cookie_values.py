"""A request's session cookie is read by name only (issue 12): the values found under a
name must be exactly those a full split of the Cookie headers gives, whatever else the
browser sends (names that contain the session's name, quotes, spaces, empty values,
several headers, the same name again)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from satchel._cookies import cookie_values, parse_cookie_header

_PIECES = st.sampled_from(["CART", "XCART", "CARTX", "cart", " ", "=", ";", '"', "a", "\xa0", "=;", "\t"])
_HEADER = st.lists(_PIECES, max_size=24).map("".join).map(lambda t: t.encode("latin-1"))


@given(values=st.lists(_HEADER, max_size=3))
@example(values=[b'XCART=1; CART = "signed" ; CART=; CARTX=2', b"CART=second"])
@example(values=[b"theme=dark", b' CART="'])
def test_reading_one_name_finds_what_the_full_split_finds(values: list[bytes]) -> None:
    headers = [(b"cookie", v) for v in values] + [(b"x-cart", b"CART=not-a-cookie")]
    for name in ("CART", "XCART", "cart"):
        assert cookie_values(headers, name) == parse_cookie_header(values).get(name, [])
