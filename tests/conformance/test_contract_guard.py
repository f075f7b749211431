"""A subclass may not drop a standard check, whichever way it tries."""

from __future__ import annotations

import pytest
from satchel_conformance import StorageContract, TransformerContract


def test_a_check_set_to_none_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match=r"test_round_trip = None drops a standard"):

        class Dropping(StorageContract):
            test_round_trip = None


def test_an_override_without_xfail_is_replaced_by_a_failing_check() -> None:
    class Quiet(TransformerContract):
        def test_round_trip(self, transformer: object) -> None:
            pass

    with pytest.raises(pytest.fail.Exception, match="without saying why"):
        Quiet().test_round_trip(object())


def test_an_xfail_override_with_a_reason_is_kept() -> None:
    class Marked(TransformerContract):
        @pytest.mark.xfail(reason="this transformer pads to a block size", strict=True)
        def test_extension_refused(self, transformer: object) -> None:
            raise AssertionError

    assert Marked.test_extension_refused.__name__ == "test_extension_refused"
    assert not hasattr(Marked.test_extension_refused, "_satchel_refused_override")


def test_an_xfail_without_a_reason_does_not_count() -> None:
    class Unexplained(TransformerContract):
        @pytest.mark.xfail
        def test_extension_refused(self, transformer: object) -> None:
            pass

    with pytest.raises(pytest.fail.Exception, match="without saying why"):
        Unexplained().test_extension_refused(object())
