"""The hypothesis state machine: random operation sequences against an in-memory model.

Time moves for real (short TTLs, waits), so the model cannot know the exact instant a
value expires. It keeps, per id, a window: before ``alive_until`` the value must be
there, after ``gone_after`` it must be gone, and in between either answer is right; the
first answer seen in the window settles it. The windows come from the measured start
and end of each call plus the declared tolerance, so slow or remote servers pass too.

The machine runs in a worker thread and calls the storage on the test's event loop
through ``anyio.from_thread``, so the storage stays on the loop that made it.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.from_thread
import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test
from satchel import CompareAndSet, SessionStorage

from ._base import label, require_equal, require_one_of

if TYPE_CHECKING:
    from ._storage import Timing

__all__ = ["run_state_machine"]

T = TypeVar("T")

_VALUES = st.one_of(
    st.binary(max_size=48),
    st.sampled_from([b"", b"\x00", bytes(range(256))]),
)


@dataclass
class _Entry:
    value: bytes
    alive_until: float  # before this instant (our clock) the value must be there
    gone_after: float  # after it, the value must be gone
    maybe_gone: bool = False  # touched while perhaps expired: alive only if a read says so


def _window(sent: float, returned: float, ttl: float | None, tolerance: float) -> tuple[float, float]:
    if ttl is None:
        return math.inf, math.inf
    return sent + ttl - tolerance, returned + ttl + tolerance


def run_state_machine(
    storage: SessionStorage,
    *,
    timing: Timing,
    new_id: Callable[[], str],
    examples: int,
    steps: int,
    call_timeout: float = 30.0,
) -> None:
    """Run random sequences of read, write, write_if, invalidate, touch and waits on ``storage``.

    Call it from a worker thread of the event loop that owns ``storage``.
    """
    ttls = st.sampled_from([None, timing.ttl, 2 * timing.ttl])
    # short waits only: outlive_the_next_expiry is the rule that waits for an expiry
    waits = st.sampled_from([timing.ttl / 4, timing.ttl / 2])
    cas = storage if isinstance(storage, CompareAndSet) else None

    async def bounded(call: Callable[[], Awaitable[T]]) -> T:
        with anyio.fail_after(call_timeout):
            return await call()

    def call(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> tuple[T, float, float]:
        sent = time.monotonic()
        result = anyio.from_thread.run(bounded, functools.partial(fn, *args, **kwargs))
        return result, sent, time.monotonic()

    class StorageModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            base = new_id()
            # two of the three ids share all but their last character
            self.ids = [base, base[:-1] + ("A" if base[-1] != "A" else "B"), new_id()]
            self.model: dict[str, _Entry] = {}

        def _state(self, id: str, sent: float, returned: float) -> tuple[_Entry | None, bool, bool]:
            """(entry, surely there, surely gone) for a call that ran from sent to returned."""
            entry = self.model.get(id)
            if entry is None or sent > entry.gone_after:
                self.model.pop(id, None)
                return None, False, True
            there = returned < entry.alive_until and not entry.maybe_gone
            return entry, there, False

        @rule(n=st.integers(0, 2), value=_VALUES, ttl=ttls)
        def write(self, n: int, value: bytes, ttl: float | None) -> None:
            id = self.ids[n]
            _, sent, returned = call(storage.write, id, value, ttl)
            self.model[id] = _Entry(value, *_window(sent, returned, ttl, timing.tolerance))

        @rule(n=st.integers(0, 2))
        def read(self, n: int) -> None:
            self._read(self.ids[n])

        def _read(self, id: str) -> None:
            got, sent, returned = call(storage.read, id)
            entry, there, _ = self._state(id, sent, returned)
            if entry is None:
                assert got is None, f"read({id!r}) = {label(got)}; the model says absent or expired"
            elif there:
                require_equal(got, entry.value, f"read({id!r}) = {label(got)}; expected {label(entry.value)}")
            else:
                require_one_of(
                    got,
                    (None, entry.value),
                    f"read({id!r}) = {label(got)}; expected {label(entry.value)} or (expired) None",
                )
                if got is None:
                    del self.model[id]
                else:
                    entry.maybe_gone = False

        @rule(n=st.integers(0, 2))
        def invalidate(self, n: int) -> None:
            id = self.ids[n]
            call(storage.invalidate, id)
            self.model.pop(id, None)

        @rule(n=st.integers(0, 2), ttl=ttls)
        def touch(self, n: int, ttl: float | None) -> None:
            id = self.ids[n]
            _, sent, returned = call(storage.touch, id, ttl)
            entry, there, _ = self._state(id, sent, returned)
            if entry is not None:
                entry.alive_until, entry.gone_after = _window(sent, returned, ttl, timing.tolerance)
                entry.maybe_gone = entry.maybe_gone or not there

        @precondition(lambda self: cas is not None)
        @rule(
            n=st.integers(0, 2),
            value=_VALUES,
            ttl=ttls,
            expect=st.sampled_from(["current", "absent", "other"]),
        )
        def write_if(self, n: int, value: bytes, ttl: float | None, expect: str) -> None:
            id = self.ids[n]
            known = self.model.get(id)
            expected = {
                "current": known.value if known is not None else b"never written",
                "absent": None,
                "other": b"not the stored value",
            }[expect]
            assert cas is not None
            ok, sent, returned = call(cas.write_if, id, value, ttl, expected=expected)
            entry, there, gone = self._state(id, sent, returned)
            could_be_absent = entry is None or not there
            could_match = (expected is None and could_be_absent) or (
                entry is not None and not gone and entry.value == expected
            )
            must_match = (expected is None and entry is None) or (
                there and entry is not None and entry.value == expected
            )
            if ok:
                assert could_match, (
                    f"write_if({id!r}, expected={expected!r}) returned True, but the stored "
                    f"value was {entry.value if entry and there else None!r}"
                )
                self.model[id] = _Entry(value, *_window(sent, returned, ttl, timing.tolerance))
            else:
                assert not must_match, (
                    f"write_if({id!r}, expected={expected!r}) returned False, but that is what was stored"
                )
                if entry is not None and expected is not None and entry.value == expected:
                    del self.model[id]  # it refused, so the value had expired
                elif entry is not None and expected is None:
                    entry.maybe_gone = False  # it refused, so the value was still there

        @rule(seconds=waits)
        def wait(self, seconds: float) -> None:
            time.sleep(seconds)

        def _next_expiry(self) -> tuple[float, str]:
            return min(((e.gone_after, id) for id, e in self.model.items()), default=(math.inf, ""))

        @precondition(lambda self: self._next_expiry()[0] < math.inf)
        @rule()
        def outlive_the_next_expiry(self) -> None:
            # random waits rarely land just past an expiry; this one does, then looks
            deadline, id = self._next_expiry()
            time.sleep(max(0.0, deadline - time.monotonic()) + 0.005)
            self._read(id)

        def teardown(self) -> None:
            # best effort: a storage that fails here has already failed a step, and
            # one failure is enough to wait for
            try:
                for id in self.ids:
                    call(storage.invalidate, id)
            except Exception:  # noqa: S110 - the failing step is what gets reported
                pass

    run_state_machine_as_test(
        StorageModel,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            # replaying sequences with real waits to shrink them would take minutes
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
