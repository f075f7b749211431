"""What every contract class shares: the list of standard checks and the guard that keeps them.

A kit class (``StorageContract``, ``SerializerContract``, ``TransformerContract``) is
declared with ``kit=True``; its ``test_*`` methods are its standard checks. A class that
subclasses it may override a check only to mark it ``@pytest.mark.xfail(reason=...)``:
any other override is replaced by a test that fails and says so, and an override that
is not a function at all (``test_x = None``) is refused when the class is defined.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

__all__ = ["Contract", "describe"]

_REFUSED = "_satchel_refused_override"


def _has_xfail_reason(obj: object) -> bool:
    marks = getattr(obj, "pytestmark", [])
    return any(getattr(mark, "name", None) == "xfail" and bool(mark.kwargs.get("reason")) for mark in marks)


def _refusal(cls: type, name: str, override: Callable[..., Any]) -> Callable[..., Any]:
    message = (
        f"{cls.__qualname__}.{name} overrides a standard conformance check without saying why. "
        "A backend may not quietly drop a check: mark the override "
        f"@pytest.mark.xfail(reason='...') to record why it does not hold, or remove it."
    )
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


class Contract:
    """Base of the kit's contract classes; keeps subclasses from dropping standard checks."""

    _standard_checks: ClassVar[dict[str, Callable[..., Any]]] = {}

    def __init_subclass__(cls, kit: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kit:
            own = {name: fn for name, fn in vars(cls).items() if name.startswith("test") and callable(fn)}
            cls._standard_checks = {**cls._standard_checks, **own}
            return
        for name, standard in cls._standard_checks.items():
            current = inspect.getattr_static(cls, name, None)
            if current is standard or getattr(current, _REFUSED, False):
                continue
            if not callable(current):
                raise TypeError(
                    f"{cls.__qualname__}.{name} = {current!r} drops a standard conformance "
                    "check; override it with a test marked "
                    "@pytest.mark.xfail(reason='...') instead"
                )
            if not _has_xfail_reason(current):
                setattr(cls, name, _refusal(cls, name, current))


def describe(cls: type, name: str) -> str:
    """The first line of a check's docstring: what it asserts, in words."""
    doc = inspect.getdoc(getattr(cls, name, None)) or ""
    return doc.splitlines()[0] if doc else ""
