"""``SerializerContract`` and ``TransformerContract``: the codec side of the kit.

Subclass one in a test module and provide its fixtures::

    class TestEncrypt(satchel_conformance.TransformerContract):
        @pytest.fixture
        def transformer(self):
            return satchel_crypto.Encrypt(KEY)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

import hypothesis.strategies as st
import pytest
import satchel
from hypothesis import HealthCheck, given, settings

from ._base import Contract, label, require_equal

__all__ = ["SerializerContract", "TransformerContract"]

# Inputs no serializer should choke on: empty, NUL, broken UTF-8, the other format's
# bytes, absurd nesting, huge numbers, and a pickle (which must never be unpickled).
_FOREIGN = [
    b"",
    b"\x00",
    b"\xff\xfe\xfd",
    b"\xc3\x28",
    b"null",
    b"[]",
    b"{}",
    b'"text"',
    b"1e999999",
    b"9" * 5000,
    b"[" * 100_000,
    b"{" * 100_000,
    b'{"a":' * 50_000,
    b"\x91" * 100_000,  # MessagePack: a one-element array, nested
    b"\x81\xa1a" * 50_000,  # MessagePack: a one-entry map, nested
    b"\xdd\xff\xff\xff\xff",  # MessagePack: an array claiming 4 billion items
    b"\xdb\xff\xff\xff\xff",  # MessagePack: a string claiming 4 GiB
    b"\xc1",  # MessagePack: the one byte that is never used
    b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94.",  # a pickle
    b'{"__class__": "os.system", "args": ["true"]}',
]

_SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _run(examples: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> None:
    given(strategy)(settings(_SETTINGS, max_examples=examples)(check))()


class SerializerContract(Contract, kit=True):
    """The conformance checks for a `satchel.Serializer`; subclass it in a test module.

    Fixtures the subclass provides:

    ``serializer`` (required)
        The serializer under test, built for its target type.
    ``values`` (required) -> ``hypothesis.strategies.SearchStrategy``
        Values of the target type that must round-trip (``==`` after decode).

    ``examples`` (class attribute) sets how many generated values each check tries.
    """

    examples: ClassVar[int] = 200

    def test_round_trip(self, serializer: satchel.Serializer[Any], values: st.SearchStrategy[Any]) -> None:
        """Every generated value decodes back equal to itself, through bytes."""

        def check(value: Any) -> None:
            data = serializer.encode(value)
            assert isinstance(data, bytes), f"encode returned {type(data).__name__}, not bytes"
            got = serializer.decode(data)
            if not (got == value):  # noqa: SIM201 - as the assert did; the message only on failure
                pytest.fail(f"{value!r} decoded back as {got!r}")

        _run(self.examples, values, check)

    def test_truncated_input(
        self, serializer: satchel.Serializer[Any], values: st.SearchStrategy[Any]
    ) -> None:
        """A value cut short at any length decodes or raises SerializationError, nothing else."""

        def check(value: Any) -> None:
            data = serializer.encode(value)
            step = max(1, len(data) // 256)
            for cut in range(0, len(data), step):
                _decode_or_serialization_error(serializer, data[:cut], f"{cut}-byte prefix")

        _run(max(1, self.examples // 4), values, check)

    def test_foreign_input(self, serializer: satchel.Serializer[Any]) -> None:
        """Foreign bytes (other formats, absurd nesting, a pickle) raise only SerializationError."""
        for data in _FOREIGN:
            _decode_or_serialization_error(serializer, data, f"foreign input {data[:16]!r}")

        def check(data: bytes) -> None:
            _decode_or_serialization_error(serializer, data, f"random input {data[:16]!r}")

        _run(self.examples, st.binary(max_size=256), check)


def _decoded(
    decode: Callable[[bytes], Any],
    data: bytes,
    what: str,
    rule: str,
    allowed: tuple[type[Exception], ...] = (),
) -> Any:
    """``decode(data)``, or None where it raised one of ``allowed``; any other exception fails."""
    try:
        return decode(data)
    except allowed:
        return None
    except Exception as exc:
        pytest.fail(f"decode of {what} raised {type(exc).__name__}: {exc}; {rule}", pytrace=False)


def _decode_or_serialization_error(serializer: satchel.Serializer[Any], data: bytes, what: str) -> None:
    _decoded(
        serializer.decode,
        data,
        what,
        "a serializer may raise only satchel.SerializationError",
        (satchel.SerializationError,),
    )


def _refused(transformer: satchel.Transformer, data: bytes, what: str) -> None:
    got = _decoded(transformer.decode, data, what, "a transformer refuses by returning None")
    assert got is None, f"decode accepted {what} and returned {got[:32]!r}"


def _claims_integrity(kit: TransformerContract, transformer: satchel.Transformer) -> None:
    # a function, not a method, so a subclass cannot override it to skip the tamper checks
    if not kit.integrity:
        if getattr(transformer, "authenticates", False) is True:
            pytest.fail(
                "the transformer declares authenticates = True (it may protect a stateless "
                "mapping alone), so the tamper checks must run: drop integrity = False"
            )
        pytest.skip("the kit subclass declares integrity = False")


class TransformerContract(Contract, kit=True):
    """The conformance checks for a `satchel.Transformer`; subclass it in a test module.

    Fixtures the subclass provides:

    ``transformer`` (required)
        The transformer under test.
    ``other_transformer`` (optional)
        One of the same kind with another key: what it produces must be refused.
    ``rotation`` (optional) -> ``(old, new)``
        Two transformers where ``new`` keeps ``old``'s key as a fallback: a value from
        ``old`` must open under ``new`` as `satchel.Reissue`.

    ``integrity`` (class attribute, default ``True``): whether the transformer claims to
    detect any change. A transformer that does not (a compressor) sets it to ``False``,
    and the tamper checks skip, by name, saying so.
    """

    integrity: ClassVar[bool] = True
    examples: ClassVar[int] = 200

    @pytest.fixture
    def other_transformer(self) -> satchel.Transformer | None:
        """Override to return a transformer of the same kind under another key."""
        return None

    @pytest.fixture
    def rotation(self) -> tuple[satchel.Transformer, satchel.Transformer] | None:
        """Override to return ``(old, new)``, ``new`` holding ``old``'s key as a fallback."""
        return None

    def test_round_trip(self, transformer: satchel.Transformer) -> None:
        """decode(encode(data)) gives data back, for empty, binary and large payloads."""
        for data in (b"", bytes(range(256)), os.urandom(256 * 1024)):
            got = transformer.decode(transformer.encode(data))
            require_equal(got, data, f"a {len(data)}-byte payload did not round-trip: got {label(got)}")

        def check(data: bytes) -> None:
            encoded = transformer.encode(data)
            assert isinstance(encoded, bytes), f"encode returned {type(encoded).__name__}"
            got = transformer.decode(encoded)
            require_equal(got, data, f"{label(data)} did not round-trip: got {label(got)}")

        _run(self.examples, st.binary(max_size=512), check)

    def test_every_bit_flip_refused(self, transformer: satchel.Transformer) -> None:
        """Flipping any single bit of an encoded value makes decode refuse it."""
        _claims_integrity(self, transformer)
        for data in (b"", b"x", b'{"user": "ada", "admin": false}'):
            encoded = transformer.encode(data)
            for bit in range(len(encoded) * 8):
                flipped = bytearray(encoded)
                flipped[bit // 8] ^= 1 << (bit % 8)
                _refused(transformer, bytes(flipped), f"the value for {data!r} with bit {bit} flipped")

    def test_truncation_refused(self, transformer: satchel.Transformer) -> None:
        """Every proper prefix of an encoded value is refused."""
        _claims_integrity(self, transformer)
        for data in (b"", b'{"user": "ada"}'):
            encoded = transformer.encode(data)
            for cut in range(len(encoded)):
                _refused(transformer, encoded[:cut], f"the value for {data!r} cut to {cut} bytes")

    def test_extension_refused(self, transformer: satchel.Transformer) -> None:
        """An encoded value with bytes added at either end, or doubled, is refused."""
        _claims_integrity(self, transformer)
        encoded = transformer.encode(b'{"user": "ada"}')
        for extra in (b"\x00", b"\xff", b"=", os.urandom(16)):
            _refused(transformer, encoded + extra, f"the value with {extra!r} appended")
            _refused(transformer, extra + encoded, f"the value with {extra!r} prepended")
        _refused(transformer, encoded + encoded, "the value twice over")

    def test_foreign_value_refused(
        self, transformer: satchel.Transformer, other_transformer: satchel.Transformer | None
    ) -> None:
        """A value encoded under another key is refused."""
        _claims_integrity(self, transformer)
        if other_transformer is None:
            pytest.skip("no other_transformer fixture: provide one to check foreign keys")
        _refused(transformer, other_transformer.encode(b"payload"), "a value from another key")

    def test_bound_contexts_are_separate(self, transformer: satchel.Transformer) -> None:
        """A value bound to one mapping never opens under another (BindableTransformer)."""
        _claims_integrity(self, transformer)
        if not isinstance(transformer, satchel.BindableTransformer):
            pytest.skip("the transformer is not a satchel.BindableTransformer")
        cart, login = transformer.bind("cookie:CART"), transformer.bind("cookie:LOGIN")
        header = transformer.bind("header:CART")
        value = cart.encode(b"payload")
        require_equal(cart.decode(value), b"payload", "a bound transformer does not round-trip")
        _refused(login, value, "a cookie:CART value under cookie:LOGIN")
        _refused(header, value, "a cookie:CART value under header:CART")
        _refused(transformer, value, "a cookie:CART value under the unbound transformer")

    def test_rotation_reissues(
        self, rotation: tuple[satchel.Transformer, satchel.Transformer] | None
    ) -> None:
        """A value under a fallback key opens as satchel.Reissue; one under the new key does not."""
        if rotation is None:
            pytest.skip("no rotation fixture: provide (old, new) to check key rotation")
        old, new = rotation
        got = new.decode(old.encode(b"payload"))
        require_equal(got, b"payload", f"a value under the fallback key did not open: got {label(got)}")
        assert isinstance(got, satchel.Reissue), "a value under the fallback key was not Reissue"
        fresh = new.decode(new.encode(b"payload"))
        require_equal(fresh, b"payload", f"a value under the new key did not open: got {label(fresh)}")
        assert not isinstance(fresh, satchel.Reissue), "a value under the new key was Reissue"

    def test_decode_never_raises(self, transformer: satchel.Transformer) -> None:
        """decode of arbitrary bytes returns bytes or None and never raises."""

        def check(data: bytes) -> None:
            got = _decoded(transformer.decode, data, repr(data[:32]), "it must return None to refuse")
            assert got is None or isinstance(got, bytes), f"decode returned {type(got).__name__}"

        for data in _FOREIGN:
            check(data)
        _run(self.examples, st.binary(max_size=512), check)
