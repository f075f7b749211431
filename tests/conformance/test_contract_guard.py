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


def test_an_accepted_xfail_override_runs_the_kit_check_strictly() -> None:
    class Marked(TransformerContract):
        @pytest.mark.xfail(reason="this transformer pads to a block size")
        def test_extension_refused(self, transformer: object) -> None:
            pass  # never runs

    check = Marked.test_extension_refused
    assert check.__wrapped__ is TransformerContract.test_extension_refused  # type: ignore[attr-defined]
    (mark,) = [m for m in check.pytestmark if m.name == "xfail"]  # type: ignore[attr-defined]
    assert mark.kwargs == {"reason": "this transformer pads to a block size", "strict": True}


def test_an_xfail_that_does_not_run_the_check_is_refused() -> None:
    class NotRun(TransformerContract):
        @pytest.mark.xfail(reason="slow", run=False)
        def test_extension_refused(self, transformer: object) -> None:
            pass

    with pytest.raises(pytest.fail.Exception, match="run=False"):
        NotRun().test_extension_refused(object())


@pytest.mark.parametrize("mark", [pytest.mark.skip(reason="flaky"), pytest.mark.skipif(True, reason="ci")])
def test_a_class_level_skip_is_refused_when_the_class_is_defined(mark: pytest.MarkDecorator) -> None:
    with pytest.raises(TypeError, match=r"class-level pytest\.mark\.skip(if)?, which would drop every"):

        class Skipped(StorageContract):
            pytestmark = (pytest.mark.anyio, mark)


def test_a_skip_inherited_from_a_mixin_is_refused() -> None:
    class Mixin:
        pytestmark = pytest.mark.skip(reason="flaky")

    with pytest.raises(TypeError, match=r"class-level pytest\.mark\.skip,"):

        class Skipped(Mixin, StorageContract):
            pass


@pytest.mark.parametrize("name", ["kit_timing", "kit_event_loop_gate"])
def test_a_kit_fixture_cannot_be_overridden(name: str) -> None:
    with pytest.raises(TypeError, match=f"{name} overrides a fixture the conformance checks rely on"):
        type("Bending", (StorageContract,), {name: pytest.fixture(lambda self: None)})


def test_a_subclass_of_a_subclass_keeps_the_strict_check() -> None:
    class Marked(TransformerContract):
        @pytest.mark.xfail(reason="pads to a block size")
        def test_extension_refused(self, transformer: object) -> None:
            pass

    class Again(Marked):
        pass

    assert Again.test_extension_refused is Marked.test_extension_refused
