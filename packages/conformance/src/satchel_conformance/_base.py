"""What every contract class shares: the list of standard checks and the guard that keeps them.

A kit class (``StorageContract``, ``SerializerContract``, ``TransformerContract``) is
declared with ``kit=True``; its ``test_*`` methods are its standard checks, and the names
in its ``_kit_fixtures`` are fixtures the checks rely on. A class that subclasses it:

- may override a check only to mark it ``@pytest.mark.xfail(reason=...)``. The override's
  body is not what runs: the kit's own check runs in its place, carrying the override's
  xfail mark made strict, so the check must really fail (an XPASS fails the run whatever
  ``xfail_strict`` says). Any other override is replaced by a test that fails and says so;
- may not set a check to something that is not a function (``test_x = None``), override a
  kit fixture, or carry a class-level ``skip``/``skipif``/``xfail`` mark: each is refused
  with a ``TypeError`` when the class is defined (a mark put on by a class decorator fails
  every check of the class instead, through the kit's pytest plugin).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import pytest

__all__ = ["Contract", "describe", "label", "refuse_dropping_marks", "require_equal", "require_one_of"]

_REFUSED = "_satchel_refused_override"
# class-level marks that would drop every check, or its verdict, while the run passes
_DROPPING_MARKS = ("skip", "skipif", "xfail")


def label(data: object) -> str:
    """A short description of a value a check got: large bytes are shown by length and start."""
    if isinstance(data, bytes) and len(data) > 24:
        return f"<{len(data)} bytes starting {data[:12]!r}>"
    return repr(data)


# The checks compare bytes through these rather than with ``assert got == expected``: on a
# failure pytest would explain the assert with a diff of the two values, which on large
# bytes takes minutes (and where a CI variable is set, pytest computes that diff in full).
def require_equal(got: object, expected: object, message: str) -> None:
    """Fail the check with ``message`` unless ``got == expected``."""
    __tracebackhide__ = True
    if not (got == expected):  # noqa: SIM201 - exactly what ``assert got == expected`` tested
        pytest.fail(message)


def require_one_of(got: object, choices: tuple[object, ...], message: str) -> None:
    """Fail the check with ``message`` unless ``got`` equals one of ``choices``."""
    __tracebackhide__ = True
    if not any(got == choice for choice in choices):
        pytest.fail(message)


def _listed(marks: object) -> list[Any]:
    return list(marks) if isinstance(marks, Iterable) else [marks]  # one mark, or a list


def _marks(obj: object) -> list[Any]:
    return _listed(getattr(obj, "pytestmark", []))


def _xfail_marks(obj: object) -> list[Any]:
    return [mark for mark in _marks(obj) if getattr(mark, "name", None) == "xfail"]


def _failing(override: Callable[..., Any], message: str) -> Callable[..., Any]:
    refusal: Callable[..., Any]
    if inspect.iscoroutinefunction(override):

        @functools.wraps(override)
        async def refusal(*args: object, **kwargs: object) -> None:
            pytest.fail(message, pytrace=False)

    else:

        @functools.wraps(override)
        def refusal(*args: object, **kwargs: object) -> None:
            pytest.fail(message, pytrace=False)

    setattr(refusal, _REFUSED, True)
    return refusal


def _not_run(cls: type, name: str) -> str:
    return (
        f"{cls.__qualname__}.{name} is marked xfail(run=False), which would drop a standard "
        "conformance check: remove run=False (a hang counts as a failure after check_timeout)"
    )


def _refusal(cls: type, name: str, override: Callable[..., Any]) -> Callable[..., Any]:
    return _failing(
        override,
        f"{cls.__qualname__}.{name} overrides a standard conformance check without saying why. "
        "A backend may not quietly drop a check: mark the override "
        "@pytest.mark.xfail(reason='...') to record why it does not hold, or remove it.",
    )


def _expected_failure(standard: Callable[..., Any], xfails: list[Any]) -> Callable[..., Any]:
    """The standard check, expected to fail for the reasons the override's marks give."""
    check: Callable[..., Any]
    if inspect.iscoroutinefunction(standard):

        @functools.wraps(standard)
        async def check(*args: Any, **kwargs: Any) -> None:
            await standard(*args, **kwargs)

    else:

        @functools.wraps(standard)
        def check(*args: Any, **kwargs: Any) -> None:
            standard(*args, **kwargs)

    strict = [pytest.mark.xfail(*mark.args, **{**mark.kwargs, "strict": True}).mark for mark in xfails]
    check.pytestmark = [*_marks(standard), *strict]  # type: ignore[attr-defined]
    return check


class Contract:
    """Base of the kit's contract classes; keeps subclasses from dropping standard checks."""

    _standard_checks: ClassVar[dict[str, Callable[..., Any]]] = {}
    _kit_fixtures: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, kit: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kit:
            own = {name: fn for name, fn in vars(cls).items() if name.startswith("test") and callable(fn)}
            cls._standard_checks = {**cls._standard_checks, **own}
            return
        refuse_dropping_marks(cls)
        for name in cls._kit_fixtures:
            if name in vars(cls):
                raise TypeError(
                    f"{cls.__qualname__}.{name} overrides a fixture the conformance checks rely "
                    "on; remove it (set the class attributes the kit documents instead)"
                )
        for name, standard in cls._standard_checks.items():
            current = inspect.getattr_static(cls, name, None)
            if current is standard or getattr(current, _REFUSED, False):
                continue
            if getattr(current, "__wrapped__", None) is standard:
                continue  # already replaced in a base class
            if not callable(current):
                raise TypeError(
                    f"{cls.__qualname__}.{name} = {current!r} drops a standard conformance "
                    "check; override it with a test marked "
                    "@pytest.mark.xfail(reason='...') instead"
                )
            xfails = _xfail_marks(current)
            if not xfails or not all(mark.kwargs.get("reason") for mark in xfails):
                setattr(cls, name, _refusal(cls, name, current))
            elif not all(mark.kwargs.get("run", True) for mark in xfails):
                setattr(cls, name, _failing(current, _not_run(cls, name)))
            else:
                setattr(cls, name, _expected_failure(standard, xfails))


def refuse_dropping_marks(cls: type) -> None:
    """Raise TypeError if ``cls`` or a base carries a class-level skip, skipif or xfail mark.

    Called when a contract class is defined, and again by the pytest plugin before each
    check runs, for a mark a class decorator put there after the class was defined.
    """
    for klass in cls.__mro__:
        names = [getattr(mark, "name", None) for mark in _listed(vars(klass).get("pytestmark", []))]
        found = [name for name in names if name in _DROPPING_MARKS]
        if found:
            raise TypeError(
                f"{cls.__qualname__} carries a class-level pytest.mark.{found[0]}, which would drop "
                "every standard conformance check while the run passes. Skip a whole module "
                "with pytest.importorskip or a fixture that calls pytest.skip when its server "
                "is missing; mark a check that does not hold by overriding it with "
                "@pytest.mark.xfail(reason='...')."
            )


def describe(cls: type, name: str) -> str:
    """The first line of a check's docstring: what it asserts, in words."""
    doc = inspect.getdoc(getattr(cls, name, None)) or ""
    return doc.splitlines()[0] if doc else ""
