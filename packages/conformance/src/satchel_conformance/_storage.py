"""``StorageContract``: the whole ``SessionStorage`` contract as a pytest class to subclass.

A backend's test module::

    import pytest, satchel_conformance
    from my_backend import MyStorage

    class TestMyStorage(satchel_conformance.StorageContract):
        @pytest.fixture
        async def storage(self):
            storage = MyStorage(...)
            yield storage
            await storage.aclose()

Optional fixtures widen what is checked (each missing one skips its checks by name):
``reopen``, ``other_namespace``, ``raw_read``, ``raw_write``. See `StorageContract`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.lowlevel
import pytest
import satchel
from satchel import SessionStorage, StorageCapabilities

from ._base import Contract, label, require_equal, require_one_of

__all__ = ["StorageContract", "Timing", "Reopen", "RawRead", "RawWrite"]

Reopen = Callable[[], Awaitable[SessionStorage]]
"""``reopen()``: opens the data the ``storage`` fixture held, after the kit closed it."""
RawRead = Callable[[str], Awaitable["bytes | None"]]
"""``raw_read(id)``: what the backend holds for ``id``, read without the storage class."""
RawWrite = Callable[[str, bytes], Awaitable[None]]
"""``raw_write(id, data)``: put ``data`` under ``id`` (no expiry) without the storage class."""

F = TypeVar("F", bound=Callable[..., Awaitable[None]])

# The alphabet of satchel.token_id and of the generic ID check (16 to 128 of these).
_ALPHABET = satchel.TokenId.alphabet
_MIN_ID, _MAX_ID = 16, 128
# The smallest max_value_size a storage may declare: what one cookie can carry.
_MIN_VALUE_SIZE = 4096


def _now() -> float:
    return time.monotonic()


async def _sleep_until(deadline: float) -> None:
    await anyio.sleep(max(0.0, deadline - _now()))


@dataclass(frozen=True)
class Timing:
    """The short real TTL the kit writes with, and how far an expiry may drift from it.

    A value written with ``ttl`` must still be there ``ttl - tolerance`` after the
    write was sent, and gone ``ttl + tolerance`` after it returned.
    """

    ttl: float
    tolerance: float

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance < self.ttl:
            raise pytest.UsageError(
                f"satchel conformance: ttl={self.ttl} must be larger than "
                f"tolerance={self.tolerance} >= 0; raise --satchel-ttl"
            )


def _check(fn: F) -> F:
    """Run a check under the class's ``check_timeout``; a hang is a failure, not a stuck run."""

    @functools.wraps(fn)
    async def run(self: StorageContract, *args: Any, **kwargs: Any) -> None:
        storage = kwargs.get("storage")
        if storage is not None:
            StorageContract._declared[type(self)] = satchel.capabilities_of(storage)
        with anyio.move_on_after(self.check_timeout) as scope:
            await fn(self, *args, **kwargs)
        if scope.cancelled_caught:
            pytest.fail(
                f"the check did not finish within check_timeout={self.check_timeout}s: "
                "a storage call hangs (every call must fail with StorageError instead)",
                pytrace=False,
            )

    return run  # type: ignore[return-value]


# The checks' helpers are functions, not methods, so a subclass cannot override one to
# bend a check (and have the skip or failure reported in the storage's name).


def written_ids(kit: StorageContract) -> list[str]:
    """The IDs the checks of ``kit`` wrote so far, so a URL run can remove them."""
    ids: list[str] = kit.__dict__.setdefault("_written_ids", [])
    return ids


def _remember(kit: StorageContract, *ids: str) -> str:
    written_ids(kit).extend(ids)
    return ids[0]


def _new_id(kit: StorageContract) -> str:
    return _remember(kit, satchel.token_id())


async def _write_all(
    storage: SessionStorage, items: Iterable[tuple[str, bytes]], ttl: float | None = None
) -> None:
    for id, data in items:
        await storage.write(id, data, ttl)


async def _expect(storage: SessionStorage, expected: dict[str, bytes | None], what: str) -> None:
    wrong = []
    for id, want in expected.items():
        got = await storage.read(id)
        if got is not None and not isinstance(got, bytes):
            pytest.fail(f"read({id!r}) returned {type(got).__name__}, not bytes")
        if got != want:
            wrong.append(f"  read({id!r}) = {label(got)}, expected {label(want)}")
    if wrong:
        shown = "\n".join(wrong[:8]) + ("\n  ..." if len(wrong) > 8 else "")
        pytest.fail(f"{what}: {len(wrong)} of {len(expected)} wrong\n{shown}", pytrace=False)


def _cas(storage: SessionStorage) -> satchel.CompareAndSet:
    if not isinstance(storage, satchel.CompareAndSet):
        pytest.skip(
            "the storage has no write_if (satchel.CompareAndSet); compare-and-set checks do not apply"
        )
    return storage


def _in_time(since: float, ttl: float, timing: Timing) -> bool:
    """Whether a value given ``ttl`` at ``since`` must still be there now.

    A TTL check asserts a value is present only after the calls before the assertion
    came back in time; when they did not (a loaded machine, a remote server), the check
    cannot judge and `_timed` runs it again with a longer ttl.
    """
    return _now() <= since + ttl - timing.tolerance


async def _timed(timing: Timing, attempt: Callable[[float], Awaitable[bool]]) -> None:
    """Run ``attempt(ttl)``; when it reports the calls too slow to judge, double the ttl."""
    for n in range(3):
        if await attempt(timing.ttl * 2**n):
            return
    pytest.fail(
        f"the storage calls alone took longer than ttl={timing.ttl * 4}s - tolerance, "
        "three times; raise --satchel-ttl",
        pytrace=False,
    )


def _skip_undeclared_loop(loop: str, declared: StorageCapabilities) -> None:
    if loop not in declared.event_loops:
        pytest.skip(f"the storage declares event_loops={sorted(declared.event_loops)}")


class StorageContract(Contract, kit=True):
    """The conformance checks for a `satchel.SessionStorage`; subclass it in a test module.

    Fixtures the subclass provides:

    ``storage`` (required)
        A fresh, empty storage. May be an async (generator) fixture; it should close the
        storage at teardown (``aclose`` is idempotent, some checks close it first).
    ``reopen`` (optional) -> `Reopen`
        An async callable that opens the same data again (same URL, same namespace). The
        persistence check calls it after ``await storage.aclose()`` and closes what it
        returns. Without it, a storage that declares ``persistent=True`` skips that check.
    ``other_namespace`` (optional) -> ``SessionStorage``
        A storage on the same backend in another namespace, for the isolation check.
    ``raw_read`` / ``raw_write`` (optional) -> `RawRead` / `RawWrite`
        Read and write the backend directly, bypassing the storage class, so the kit can
        check what was really persisted and that ``read`` sees what the backend holds.

    What varies between backends is read from ``satchel.capabilities_of(storage)``:
    ``persistent``, ``max_value_size`` and ``event_loops``. A storage that offers
    ``write_if`` (`satchel.CompareAndSet`) gets the compare-and-set checks.

    Class attributes a subclass may set (command-line options override them):

    ``ttl`` / ``tolerance``
        The short real TTL the TTL checks write with, and the drift allowed around it
        (``--satchel-ttl``, ``--satchel-tolerance``). Raise both for a remote server.
    ``check_timeout``
        Seconds one check may take before it counts as a hang.
    ``state_machine_examples`` / ``state_machine_steps``
        How many random operation sequences the state machine runs, and how long each is.

    A subclass may override a standard check only to mark it
    ``@pytest.mark.xfail(reason="...")``: the kit's own check then runs in its place,
    expected to fail (strictly); any other override fails the run. The ``kit_*`` fixtures
    are the kit's own and may not be overridden.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]

    ttl: ClassVar[float] = 0.25
    tolerance: ClassVar[float] = 0.1
    check_timeout: ClassVar[float] = 60.0
    state_machine_examples: ClassVar[int] = 10
    state_machine_steps: ClassVar[int] = 20

    # Capabilities seen on earlier checks, so the trio check can skip before it builds a
    # storage on a loop the backend never claimed to support.
    _declared: ClassVar[dict[type, StorageCapabilities]] = {}
    _kit_fixtures = ("kit_timing", "kit_event_loop_gate")

    # ---- fixtures a subclass may override -------------------------------------------

    @pytest.fixture
    def anyio_backend(self) -> str:
        """The event loop the checks run on; a trio-only storage overrides it with "trio"."""
        return "asyncio"

    @pytest.fixture
    def reopen(self) -> Reopen | None:
        """Override to return an async callable that reopens the same data."""
        return None

    @pytest.fixture
    def other_namespace(self) -> SessionStorage | None:
        """Override to give a storage on the same backend in another namespace."""
        return None

    @pytest.fixture
    def raw_read(self) -> RawRead | None:
        """Override to read the backend directly, bypassing the storage."""
        return None

    @pytest.fixture
    def raw_write(self) -> RawWrite | None:
        """Override to write the backend directly, bypassing the storage."""
        return None

    @pytest.fixture
    def kit_timing(self, pytestconfig: pytest.Config) -> Timing:
        ttl = pytestconfig.getoption("satchel_ttl", None)
        tolerance = pytestconfig.getoption("satchel_tolerance", None)
        return Timing(
            ttl=self.ttl if ttl is None else ttl,
            tolerance=self.tolerance if tolerance is None else tolerance,
        )

    # ---- basics ---------------------------------------------------------------------

    @_check
    async def test_round_trip(self, storage: SessionStorage) -> None:
        """A value written is read back unchanged, as bytes."""
        id = _new_id(self)
        await storage.write(id, b'{"user": "ada"}', None)
        await _expect(storage, {id: b'{"user": "ada"}'}, "round trip")

    @_check
    async def test_absent_id_reads_none(self, storage: SessionStorage) -> None:
        """An id never written reads as None."""
        await _expect(storage, {_new_id(self): None}, "absent id")

    @_check
    async def test_overwrite_replaces_value(self, storage: SessionStorage) -> None:
        """A second write replaces the value, and a shorter one leaves no trailing bytes."""
        id = _new_id(self)
        await storage.write(id, b"first value, the longer one", None)
        await storage.write(id, b"second", None)
        await _expect(storage, {id: b"second"}, "overwrite")

    @_check
    async def test_invalidate_deletes(self, storage: SessionStorage) -> None:
        """After invalidate the id reads None; invalidating twice is fine; it can be written again."""
        id, other = _new_id(self), _new_id(self)
        await _write_all(storage, [(id, b"doomed"), (other, b"bystander")])
        await storage.invalidate(id)
        await _expect(storage, {id: None, other: b"bystander"}, "after invalidate")
        await storage.invalidate(id)
        await storage.write(id, b"again", None)
        await _expect(storage, {id: b"again"}, "write after invalidate")

    @_check
    async def test_invalidate_absent_id(self, storage: SessionStorage) -> None:
        """Invalidating an id that was never written is not an error and creates nothing."""
        id = _new_id(self)
        await storage.invalidate(id)
        await _expect(storage, {id: None}, "invalidate of an absent id")

    # ---- time -----------------------------------------------------------------------

    @_check
    async def test_ttl_expires(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """A value written with a ttl is there before the ttl and gone after it."""

        async def attempt(ttl: float) -> bool:
            id = _new_id(self)
            sent = _now()
            await storage.write(id, b"short-lived", ttl)
            written = _now()
            got = await storage.read(id)
            if not _in_time(sent, ttl, kit_timing):
                return False
            require_equal(
                got,
                b"short-lived",
                f"a value written with ttl={ttl}s read back as {label(got)} {_now() - written:.3f}s later",
            )
            await _sleep_until(written + ttl + kit_timing.tolerance)
            got = await storage.read(id)
            assert got is None, (
                f"a value written with ttl={ttl}s is still readable {_now() - written:.3f}s after the write"
            )
            return True

        await _timed(kit_timing, attempt)

    @_check
    async def test_ttl_none_never_expires(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """ttl=None means no expiry: the value outlives a neighbour written with a short ttl."""
        keep, lapse = _new_id(self), _new_id(self)
        await storage.write(keep, b"forever", None)
        await storage.write(lapse, b"brief", kit_timing.ttl)
        await _sleep_until(_now() + kit_timing.ttl + kit_timing.tolerance)
        await _expect(storage, {keep: b"forever", lapse: None}, "ttl=None after a ttl")

    @_check
    async def test_overwrite_replaces_ttl(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """A write sets the expiry anew: a short ttl overwritten with None stays, and back."""

        async def attempt(ttl: float) -> bool:
            kept, shortened = _new_id(self), _new_id(self)
            sent = _now()
            await storage.write(kept, b"old", ttl)
            await storage.write(kept, b"new", None)
            if not _in_time(sent, ttl, kit_timing):
                return False
            await storage.write(shortened, b"old", None)
            await storage.write(shortened, b"new", ttl)
            await _sleep_until(_now() + ttl + kit_timing.tolerance)
            await _expect(storage, {kept: b"new", shortened: None}, "overwritten ttl")
            return True

        await _timed(kit_timing, attempt)

    @_check
    async def test_touch_extends_and_keeps_data(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """touch moves the expiry to ttl from now, keeping the data, and the new ttl still ends."""

        async def attempt(ttl: float) -> bool:
            id = _new_id(self)
            sent = _now()
            await storage.write(id, b"rolling", ttl)
            written = _now()  # the touch is sent now
            await storage.touch(id, 3 * ttl)
            touched = _now()
            if not _in_time(sent, ttl, kit_timing):
                return False
            await _sleep_until(written + ttl + kit_timing.tolerance)
            got = await storage.read(id)
            if not _in_time(written, 3 * ttl, kit_timing):
                return False
            require_equal(
                got,
                b"rolling",
                f"past the first ttl={ttl}s, a value touched with ttl={3 * ttl}s read back as {label(got)}",
            )
            await _sleep_until(touched + 3 * ttl + kit_timing.tolerance)
            await _expect(storage, {id: None}, f"past the touched ttl={3 * ttl}s")
            return True

        await _timed(kit_timing, attempt)

    @_check
    async def test_touch_sets_expiry_from_now(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """touch(id, ttl) gives an unexpiring value a ttl; touch(id, None) takes the ttl away."""

        async def attempt(ttl: float) -> bool:
            given, freed = _new_id(self), _new_id(self)
            sent = _now()
            await storage.write(freed, b"loses its ttl", ttl)
            await storage.touch(freed, None)
            if not _in_time(sent, ttl, kit_timing):
                return False
            await storage.write(given, b"gets a ttl", None)
            await storage.touch(given, ttl)
            await _sleep_until(_now() + ttl + kit_timing.tolerance)
            await _expect(storage, {given: None, freed: b"loses its ttl"}, "after touch")
            return True

        await _timed(kit_timing, attempt)

    @_check
    async def test_touch_absent_id(self, storage: SessionStorage) -> None:
        """Touching an absent id is not an error and creates nothing."""
        id = _new_id(self)
        await storage.touch(id, 60.0)
        await storage.touch(id, None)
        await _expect(storage, {id: None}, "touch of an absent id")

    @_check
    async def test_touch_does_not_revive_expired(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """Touching an id whose ttl has passed leaves it gone."""
        id = _new_id(self)
        await storage.write(id, b"expired", kit_timing.ttl)
        await _sleep_until(_now() + kit_timing.ttl + kit_timing.tolerance)
        await storage.touch(id, None)
        await _expect(storage, {id: None}, "touch after expiry")

    # ---- values ---------------------------------------------------------------------

    @_check
    async def test_every_byte_value(self, storage: SessionStorage) -> None:
        """Every byte value survives, including NUL, invalid UTF-8 and line breaks."""
        values = [
            bytes(range(256)),
            bytes(reversed(range(256))),
            b"\x00",
            b"\x00" * 1000,
            b"\xff\xfe\xfd",
            b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc",  # broken UTF-8 sequences
            b"\xef\xbb\xbfBOM",
            b"\r\n\r\n\n\r",
            b"null",
            b"   ",
            "caf\u00e9 \u2603 \U0001f600".encode(),
            os.urandom(4096),
        ]
        items = [(_new_id(self), value) for value in values]
        await _write_all(storage, items)
        await _expect(storage, dict(items), "binary values")

    @_check
    async def test_empty_value(self, storage: SessionStorage) -> None:
        """An empty value reads back as b"", never as None."""
        id = _new_id(self)
        await storage.write(id, b"", None)
        await _expect(storage, {id: b""}, "empty value")

    @_check
    async def test_declares_a_usable_max_value_size(self, storage: SessionStorage) -> None:
        """The declared max_value_size is at least 4096 bytes (_MIN_VALUE_SIZE)."""
        limit = satchel.capabilities_of(storage).max_value_size
        assert limit >= _MIN_VALUE_SIZE, (
            f"the storage declares max_value_size={limit}; a session storage must accept "
            f"values of at least {_MIN_VALUE_SIZE} bytes (a cookie's worth), and the "
            "concurrency and cancellation checks need values that large to catch a torn write"
        )

    @_check
    async def test_large_values(self, storage: SessionStorage) -> None:
        """Values up to the declared max_value_size round-trip whole."""
        limit = satchel.capabilities_of(storage).max_value_size
        sizes = sorted({s for s in (2**16 - 1, 2**16 + 1, 2**20 + 1, limit) if s <= limit})
        for size in sizes:
            id, value = _new_id(self), os.urandom(size)
            await storage.write(id, value, None)
            got = await storage.read(id)
            require_equal(
                got, value, f"a {size}-byte value (declared max_value_size={limit}) read back as {label(got)}"
            )
            await storage.invalidate(id)

    # ---- ids ------------------------------------------------------------------------

    @_check
    async def test_ids_from_default_generator(self, storage: SessionStorage) -> None:
        """200 ids from satchel.token_id each keep their own value."""
        items = [(_new_id(self), os.urandom(16)) for _ in range(200)]
        await _write_all(storage, items)
        await _expect(storage, dict(items), "ids from satchel.token_id")

    @_check
    async def test_id_alphabet_edges(self, storage: SessionStorage) -> None:
        """Every character of the id alphabet, ids differing only in case, 16 and 128 chars."""
        ids = [char * satchel.token_id.length for char in _ALPHABET]
        ids += [
            _ALPHABET[:_MIN_ID],
            (_ALPHABET * 2)[:_MAX_ID],
            "-" + _ALPHABET[:_MIN_ID],
            "_" * _MAX_ID,
        ]
        _remember(self, *ids)
        items = [(id, id.encode() + b"#" + bytes([n % 256])) for n, id in enumerate(ids)]
        await _write_all(storage, items)
        await _expect(storage, dict(items), "ids at the edge of the alphabet")

    @_check
    async def test_ids_sharing_a_prefix(self, storage: SessionStorage) -> None:
        """Ids that share a prefix (or are prefixes of each other) never see each other."""
        base = satchel.token_id()
        flip = "A" if base[-1] != "A" else "B"
        ids = [base, base[:-1] + flip, base + "A", base[:_MIN_ID], base[:32] + "Z" * 11, base * 2]
        _remember(self, *ids)
        items = [(id, f"value of {id}".encode()) for id in ids]
        await _write_all(storage, items)
        await _expect(storage, dict(items), "ids sharing a prefix")
        await storage.invalidate(base)
        await _expect(storage, {base: None, **dict(items[1:])}, "ids sharing a prefix after invalidate")

    # ---- isolation, concurrency, cancellation ----------------------------------------

    @_check
    async def test_namespaces_are_isolated(
        self, storage: SessionStorage, other_namespace: SessionStorage | None
    ) -> None:
        """Two namespaces on one backend never see each other's ids."""
        if other_namespace is None:
            pytest.skip("no other_namespace fixture: provide one to check isolation")
        shared, only_here = _new_id(self), _new_id(self)
        await storage.write(shared, b"here", None)
        await other_namespace.write(shared, b"there", None)
        await storage.write(only_here, b"mine", None)
        await _expect(storage, {shared: b"here", only_here: b"mine"}, "this namespace")
        await _expect(other_namespace, {shared: b"there", only_here: None}, "other one")
        await storage.invalidate(shared)
        await _expect(other_namespace, {shared: b"there"}, "other after invalidate here")

    @_check
    async def test_concurrent_writers_on_distinct_ids(self, storage: SessionStorage) -> None:
        """64 concurrent writers on 64 ids: every one reads back its own value."""
        items = [(_new_id(self), os.urandom(64)) for _ in range(64)]
        async with anyio.create_task_group() as tg:
            for id, value in items:
                tg.start_soon(storage.write, id, value, None)
        await _expect(storage, dict(items), "concurrent writes on distinct ids")

    @_check
    async def test_concurrent_writers_on_one_id(self, storage: SessionStorage) -> None:
        """16 concurrent writers on one id, read meanwhile: only whole written values are seen."""
        id = _new_id(self)
        size = min(256 * 1024, satchel.capabilities_of(storage).max_value_size)
        initial = b"\xaa" * size
        values = {bytes([n]) * size for n in range(16)}
        await storage.write(id, initial, None)
        seen: list[bytes | None] = []

        async def read_while_writing(done: anyio.Event) -> None:
            while not done.is_set():
                seen.append(await storage.read(id))
                await anyio.lowlevel.checkpoint()

        done = anyio.Event()
        async with anyio.create_task_group() as readers:
            readers.start_soon(read_while_writing, done)
            async with anyio.create_task_group() as writers:
                for value in values:
                    writers.start_soon(storage.write, id, value, None)
            done.set()
        final = await storage.read(id)
        seen.append(final)
        torn = [v for v in seen if v not in values and v != initial]
        assert not torn, f"read saw a value nobody wrote (torn write): {label(torn[0])}"
        require_one_of(final, tuple(values), f"after the writers, read gives {label(final)}")

    @_check
    async def test_cancelled_write(self, storage: SessionStorage) -> None:
        """A write cancelled midway leaves the old or the new value, and the storage usable."""
        size = min(1024 * 1024, satchel.capabilities_of(storage).max_value_size)
        for delay in (0.0, 0.0005, 0.002, 0.01):
            id = _new_id(self)
            old, new = b"\x01" * size, b"\x02" * size
            await storage.write(id, old, None)
            with anyio.move_on_after(delay):
                await storage.write(id, new, None)
            got = await storage.read(id)
            require_one_of(
                got,
                (old, new),
                f"after a write cancelled at {delay}s, read gives {label(got)}: neither the old "
                "nor the new value",
            )
            probe = _new_id(self)
            await storage.write(probe, b"still works", None)
            await _expect(storage, {probe: b"still works"}, f"storage after a write cancelled at {delay}s")
            await storage.write(id, b"settled", None)
            await _expect(storage, {id: b"settled"}, "write after cancellation")

    # ---- lifetime -------------------------------------------------------------------

    @_check
    async def test_data_survives_reopen(
        self, storage: SessionStorage, reopen: Reopen | None, kit_timing: Timing
    ) -> None:
        """Data (and its expiry) survives aclose and reopening, where the storage is persistent."""
        if not satchel.capabilities_of(storage).persistent:
            pytest.skip("the storage declares persistent=False")
        if reopen is None:
            pytest.skip(
                "no reopen fixture: provide one to check persistence (the storage declares persistent=True)"
            )
        keep, lapse, empty, binary = (_new_id(self) for _ in range(4))
        await storage.write(keep, b"kept", None)
        await storage.write(empty, b"", 3600.0)
        await storage.write(binary, bytes(range(256)), None)
        await storage.write(lapse, b"lapses", kit_timing.ttl)
        written = _now()
        await storage.aclose()
        reopened = await reopen()
        try:
            await _expect(
                reopened,
                {keep: b"kept", empty: b"", binary: bytes(range(256))},
                "after close and reopen",
            )
            await _sleep_until(written + kit_timing.ttl + kit_timing.tolerance)
            await _expect(reopened, {lapse: None}, "a ttl across close and reopen")
        finally:
            await reopened.aclose()

    @_check
    async def test_aclose_is_idempotent(self, storage: SessionStorage) -> None:
        """aclose can be called twice."""
        await storage.write(_new_id(self), b"x", None)
        await storage.aclose()
        await storage.aclose()

    # ---- raw access -----------------------------------------------------------------

    @_check
    async def test_write_reaches_the_backend(self, storage: SessionStorage, raw_read: RawRead | None) -> None:
        """What write stores is really in the backend, and invalidate really removes it."""
        if raw_read is None:
            pytest.skip(
                "no raw_read fixture, so what reached the backend is not looked at (a test "
                "module can provide one)"
            )
        id, value = _new_id(self), bytes(range(256))
        await storage.write(id, value, None)
        held = await raw_read(id)
        require_equal(held, value, f"the backend does not hold what write was given: it holds {label(held)}")
        await storage.invalidate(id)
        assert await raw_read(id) is None, "invalidate left the value in the backend"

    @_check
    async def test_read_sees_the_backend(self, storage: SessionStorage, raw_write: RawWrite | None) -> None:
        """read returns what the backend holds, written there directly."""
        if raw_write is None:
            pytest.skip(
                "no raw_write fixture, so read is not checked against the backend (a test "
                "module can provide one)"
            )
        id, value = _new_id(self), bytes(reversed(range(256)))
        await raw_write(id, value)
        await _expect(storage, {id: value}, "read of a value written to the backend")

    # ---- compare-and-set ------------------------------------------------------------

    @_check
    async def test_write_if_expected_value(self, storage: SessionStorage) -> None:
        """write_if writes only over the expected value, and says whether it did."""
        cas, id = _cas(storage), _new_id(self)
        await storage.write(id, b"v1", None)
        assert await cas.write_if(id, b"v2", None, expected=b"other") is False
        await _expect(storage, {id: b"v1"}, "write_if with the wrong expected value")
        assert await cas.write_if(id, b"v2", None, expected=b"v1") is True
        await _expect(storage, {id: b"v2"}, "write_if with the right expected value")
        assert await cas.write_if(id, b"v3", None, expected=b"v1") is False, (
            "write_if succeeded against a value that had already been replaced"
        )
        await _expect(storage, {id: b"v2"}, "write_if against a stale value")

    @_check
    async def test_write_if_expected_absent(self, storage: SessionStorage) -> None:
        """write_if(expected=None) writes only when the id is absent."""
        cas, id = _cas(storage), _new_id(self)
        assert await cas.write_if(id, b"first", None, expected=None) is True
        assert await cas.write_if(id, b"second", None, expected=None) is False
        await _expect(storage, {id: b"first"}, "write_if(expected=None) over a value")
        empty = _new_id(self)
        await storage.write(empty, b"", None)
        assert await cas.write_if(empty, b"x", None, expected=None) is False, (
            "write_if(expected=None) took an empty value for an absent one"
        )
        assert await cas.write_if(empty, b"x", None, expected=b"") is True

    @_check
    async def test_write_if_one_winner(self, storage: SessionStorage) -> None:
        """Of 16 concurrent write_if calls with the same expected value, exactly one wins."""
        cas, id = _cas(storage), _new_id(self)
        await storage.write(id, b"base", None)
        wins: list[bytes] = []

        async def attempt(value: bytes) -> None:
            if await cas.write_if(id, value, None, expected=b"base"):
                wins.append(value)

        async with anyio.create_task_group() as tg:
            for n in range(16):
                tg.start_soon(attempt, b"writer %d" % n)
        assert len(wins) == 1, f"{len(wins)} concurrent write_if calls won; exactly one may"
        await _expect(storage, {id: wins[0]}, "the winner's value")

    @_check
    async def test_write_if_after_invalidate(self, storage: SessionStorage) -> None:
        """After invalidate, write_if expecting the old value fails: deletion wins."""
        cas, id = _cas(storage), _new_id(self)
        await storage.write(id, b"session", None)
        await storage.invalidate(id)
        assert await cas.write_if(id, b"resurrected", None, expected=b"session") is False
        await _expect(storage, {id: None}, "write_if after invalidate")

    @_check
    async def test_write_if_sees_expired_as_absent(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """Once a value's ttl has passed, write_if treats the id as absent."""
        cas, id = _cas(storage), _new_id(self)
        await storage.write(id, b"stale", kit_timing.ttl)
        await _sleep_until(_now() + kit_timing.ttl + kit_timing.tolerance)
        assert await cas.write_if(id, b"x", None, expected=b"stale") is False, (
            "write_if matched a value whose ttl had passed"
        )
        assert await cas.write_if(id, b"fresh", None, expected=None) is True
        await _expect(storage, {id: b"fresh"}, "write_if over an expired value")

    # ---- the event loops and the model ----------------------------------------------

    @pytest.fixture
    def kit_event_loop_gate(self, anyio_backend: str) -> None:
        # Set up before `storage`, so a loop the storage declared against on an earlier
        # check skips before the fixture tries to build a storage on it.
        declared = self._declared.get(type(self))
        if declared is not None:
            _skip_undeclared_loop(anyio_backend, declared)
        if anyio_backend == "trio":
            try:
                import trio  # noqa: F401 - only asking whether it is installed
            except ImportError:
                pytest.skip("trio is not installed: pip install trio to check it")

    @pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
    @_check
    async def test_runs_on_declared_event_loop(
        self, anyio_backend: str, kit_event_loop_gate: None, storage: SessionStorage
    ) -> None:
        """On each event loop the storage declares: write, read, touch, invalidate, concurrently."""
        _skip_undeclared_loop(anyio_backend, satchel.capabilities_of(storage))
        items = [(_new_id(self), os.urandom(32)) for _ in range(16)]
        async with anyio.create_task_group() as tg:
            for id, value in items:
                tg.start_soon(storage.write, id, value, 60.0)
        await _expect(storage, dict(items), f"writes on {anyio_backend}")
        for id, _ in items[:8]:
            await storage.touch(id, None)
            await storage.invalidate(id)
        await _expect(
            storage,
            {id: None if n < 8 else value for n, (id, value) in enumerate(items)},
            f"after touch and invalidate on {anyio_backend}",
        )
        if isinstance(storage, satchel.CompareAndSet):
            assert await storage.write_if(items[0][0], b"x", None, expected=None) is True

    @_check
    async def test_state_machine(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """Random sequences of every operation, with time moving, agree with an in-memory model."""
        from ._model import run_state_machine

        await anyio.to_thread.run_sync(
            functools.partial(
                run_state_machine,
                storage,
                timing=kit_timing,
                new_id=functools.partial(_new_id, self),
                examples=self.state_machine_examples,
                steps=self.state_machine_steps,
                call_timeout=self.check_timeout,
            )
        )
