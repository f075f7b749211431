"""SerializerContract and TransformerContract against the core's serializers and transformers."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import msgspec
import pytest
import satchel
from satchel_conformance import SerializerContract, TransformerContract

KEY = "1dZ-Y_J0alHA0UH0uiPsbQ5Gt5ra1WKvBwyqXiRw5mw"
OLD_KEY = "oTEXLb_lKzxaFoC9vg5QnfgRrvRJBJLZShZ0fc3WcAE"


class Cart(msgspec.Struct):
    items: list[str] = []
    total: int = 0


CARTS = st.builds(Cart, items=st.lists(st.text(max_size=20), max_size=8), total=st.integers())
# what JSON and MessagePack both carry exactly (no NaN, which is not equal to itself)
PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


class TestJSONSerializerOfStruct(SerializerContract):
    @pytest.fixture
    def serializer(self) -> satchel.Serializer[Cart]:
        return satchel.JSONSerializer(Cart)

    @pytest.fixture
    def values(self) -> st.SearchStrategy[Cart]:
        return CARTS


class TestMsgPackSerializerOfDict(SerializerContract):
    @pytest.fixture
    def serializer(self) -> satchel.Serializer[dict[str, Any]]:
        return satchel.MsgPackSerializer(dict[str, Any])

    @pytest.fixture
    def values(self) -> st.SearchStrategy[dict[str, Any]]:
        return st.dictionaries(st.text(max_size=8), PLAIN, max_size=6)


class TestSign(TransformerContract):
    @pytest.fixture
    def transformer(self) -> satchel.Transformer:
        return satchel.Sign(KEY)

    @pytest.fixture
    def other_transformer(self) -> satchel.Transformer:
        return satchel.Sign(OLD_KEY)

    @pytest.fixture
    def rotation(self) -> tuple[satchel.Transformer, satchel.Transformer]:
        return satchel.Sign(OLD_KEY), satchel.Sign(KEY, fallback_keys=[OLD_KEY])


class TestDigest(TransformerContract):
    @pytest.fixture
    def transformer(self) -> satchel.Transformer:
        return satchel.Digest()

    @pytest.fixture
    def other_transformer(self) -> satchel.Transformer:
        return satchel.Digest(salt="another salt")
