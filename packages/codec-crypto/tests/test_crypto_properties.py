"""Property tests: every value round-trips, and no change to a real value opens."""

from __future__ import annotations

import os

import satchel
from hypothesis import given, settings
from hypothesis import strategies as st
from satchel_crypto import Encrypt

KEY, OLD = os.urandom(32), os.urandom(32)
PLAIN = Encrypt(KEY, fallback_keys=[OLD]).bind("cookie:CART")
COMPRESSING = Encrypt(KEY, fallback_keys=[OLD], compress=True).bind("cookie:CART")
BOXES = st.sampled_from([PLAIN, COMPRESSING])
# session values as they come from a serializer: JSON-ish text, often repetitive
DATA = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=200).map(str.encode),
    st.lists(st.sampled_from([b'"apple",', b'"pear",', b"1299,"]), max_size=100).map(b"".join),
)


@given(box=BOXES, data=DATA)
def test_every_value_round_trips(box: Encrypt, data: bytes) -> None:
    opened = box.decode(box.encode(data))
    assert opened == data
    assert not isinstance(opened, satchel.Reissue)


@given(box=BOXES, data=DATA)
def test_values_under_the_old_key_round_trip_as_reissue(box: Encrypt, data: bytes) -> None:
    old = Encrypt(OLD, compress=True).bind("cookie:CART")
    opened = box.decode(old.encode(data))
    assert opened == data
    assert isinstance(opened, satchel.Reissue)


@settings(max_examples=60)
@given(box=BOXES, data=st.binary(max_size=48))
def test_every_single_bit_flip_of_a_real_value_is_refused(box: Encrypt, data: bytes) -> None:
    value = bytearray(box.encode(data))
    for index in range(len(value)):
        for bit in range(8):
            value[index] ^= 1 << bit
            assert box.decode(bytes(value)) is None, (index, bit)
            value[index] ^= 1 << bit
    assert box.decode(bytes(value)) == data


@given(box=BOXES, data=DATA, junk=st.binary(min_size=1, max_size=32))
def test_appending_or_prepending_anything_is_refused(box: Encrypt, data: bytes, junk: bytes) -> None:
    value = box.encode(data)
    assert box.decode(value + junk) is None
    assert box.decode(junk + value) is None


@given(box=BOXES, junk=st.binary(max_size=256))
def test_decode_never_raises_on_arbitrary_input(box: Encrypt, junk: bytes) -> None:
    assert box.decode(junk) is None


@given(
    box=BOXES,
    junk=st.binary(min_size=16, max_size=128),
)
def test_decode_never_raises_on_input_that_looks_like_a_value(box: Encrypt, junk: bytes) -> None:
    # right version byte and key id, so decoding goes as far as the tag check
    prefix = box.encode(b"")[:5]
    assert box.decode(prefix + junk) is None
