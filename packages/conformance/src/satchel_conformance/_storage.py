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
``reopen``, ``other_namespace``, ``raw_read``, ``raw_write``, ``stored_expiry``, ``outage``.
See `StorageContract`. Optional capabilities are found on the storage itself: ``write_if``
(`satchel.CompareAndSet`), the owner index (`satchel.OwnerIndex`) and ``purge``
(`satchel.Purgeable`) each get their checks, or skip them by name.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.lowlevel
import pytest
import satchel
from satchel import SessionStorage, StorageCapabilities

from ._base import Contract, label, require_equal, require_one_of

if sys.version_info < (3, 11):  # anyio brings the backport there
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

__all__ = ["StorageContract", "Timing", "Reopen", "RawRead", "RawWrite", "StoredExpiry", "Outage"]

Reopen = Callable[[], Awaitable[SessionStorage]]
"""``reopen()``: opens the data the ``storage`` fixture held, after the kit closed it."""
RawRead = Callable[[str], Awaitable["bytes | None"]]
"""``raw_read(id)``: what the backend holds for ``id``, read without the storage class."""
RawWrite = Callable[[str, bytes], Awaitable[None]]
"""``raw_write(id, data)``: put ``data`` under ``id`` (no expiry) without the storage class."""
StoredExpiry = Callable[[str], Awaitable["float | None"]]
"""``stored_expiry(id)``: the expiry the backend holds for ``id``, read without the storage
class: Unix seconds (wall clock), ``None`` for no expiry; raises `LookupError` when the
backend holds nothing under ``id``."""
Outage = Callable[[], contextlib.AbstractAsyncContextManager[object]]
"""``outage()``: an async context manager; the backend is unavailable inside its block."""

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
        try:
            with anyio.move_on_after(self.check_timeout) as scope:
                try:
                    await fn(self, *args, **kwargs)
                except BaseExceptionGroup as group:
                    raise _first_error(group) from None
            if scope.cancelled_caught:
                pytest.fail(
                    f"the check did not finish within check_timeout={self.check_timeout}s: "
                    "a storage call hangs (every call must fail with StorageError instead)",
                    pytrace=False,
                )
        finally:
            await _clean_up(self, kwargs)

    return run  # type: ignore[return-value]


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception a task group gathered, rather than the group itself.

    A storage call that fails in one of the concurrent tasks of a check would otherwise be
    reported as "unhandled errors in a TaskGroup (1 sub-exception)"; the error that matters
    is inside.
    """
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    others = sum(1 for _ in _leaves(group)) - 1
    add_note = getattr(first, "add_note", None)  # Python 3.11 and later
    if others and add_note is not None:
        add_note(f"(and {others} more errors in other tasks of the same check)")
    return first


def _leaves(error: BaseException) -> Iterable[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


async def _clean_up(kit: StorageContract, fixtures: dict[str, Any]) -> None:
    """Remove what the check wrote, from ``storage`` and ``other_namespace``, so a test
    module leaves a persistent backend as it found it (a URL run then removes whatever
    this could not).

    Best effort and bounded: a check that failed, closed its storage or left the backend
    down is judged on what it did, not on the clean-up.
    """
    ids, owners = written_ids(kit), written_owners(kit)
    if not ids and not owners:
        return
    targets = [fixtures.get("storage"), fixtures.get("other_namespace")]
    calls: list[Callable[[], Awaitable[object]]] = []
    for storage in targets:
        if isinstance(storage, satchel.OwnerIndex):
            calls += [functools.partial(storage.invalidate_owned, owner) for owner in owners]
        if storage is not None:
            calls += [functools.partial(storage.invalidate, id) for id in ids]

    async def worker(share: list[Callable[[], Awaitable[object]]]) -> None:
        for call in share:
            await call()

    # a few calls at a time: one by one, the clean-up of a check that wrote 200 ids took
    # longer than the check on a networked backend
    with anyio.move_on_after(kit.check_timeout), contextlib.suppress(Exception):
        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(worker, calls[n::8])
        ids.clear()
        owners.clear()


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


def _id_label(id: str, roles: dict[str, str] | None = None) -> str:
    """How a message names an id: its role in the check where it has one, else its start."""
    if roles and id in roles:
        return roles[id]
    return repr(id) if len(id) <= 12 else f"{id[:8]!r}..."


async def _expect(
    storage: SessionStorage,
    expected: dict[str, bytes | None],
    what: str,
    roles: dict[str, str] | None = None,
) -> None:
    """Fail unless each id reads as expected; the first line names what is wrong.

    ``roles`` names ids by what they stand for in the check ("given a ttl"); the summary
    of a run shows only a failure's first line, so that line says which read was wrong.
    """
    wrong: list[tuple[str, str]] = []
    for id, want in expected.items():
        got = await storage.read(id)
        if got is not None and not isinstance(got, bytes):
            pytest.fail(f"read({_id_label(id, roles)}) returned {type(got).__name__}, not bytes")
        if got != want:
            wrong.append((id, f"read({_id_label(id, roles)}) = {label(got)}, expected {label(want)}"))
    if wrong:
        first = wrong[0][1]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        listed = [f"  {line} [id {id!r}]" for id, line in wrong[:8]]
        shown = "\n".join(listed) + ("\n  ..." if len(wrong) > 8 else "")
        pytest.fail(f"{what}: {len(wrong)} of {len(expected)} wrong: {first}{more}\n{shown}", pytrace=False)


def _cas(storage: SessionStorage) -> satchel.CompareAndSet:
    if not isinstance(storage, satchel.CompareAndSet):
        pytest.skip(
            "the storage has no write_if (satchel.CompareAndSet); compare-and-set checks do not apply"
        )
    return storage


_OWNER_METHODS = ("write_owned", "touch_owned", "list_owned", "invalidate_owned")


def written_owners(kit: StorageContract) -> list[str]:
    """The owners the checks of ``kit`` linked sessions to, so a URL run can remove them."""
    owners: list[str] = kit.__dict__.setdefault("_written_owners", [])
    return owners


def _owners(kit: StorageContract, *owners: str) -> list[str]:
    written_owners(kit).extend(owners)
    return list(owners)


def _new_owner(kit: StorageContract) -> str:
    return _owners(kit, f"owner-{secrets.token_hex(8)}")[0]


def _owner_index(storage: SessionStorage) -> satchel.OwnerIndex:
    if isinstance(storage, satchel.OwnerIndex):
        return storage
    has = [name for name in _OWNER_METHODS if callable(getattr(storage, name, None))]
    if has:
        missing = [name for name in _OWNER_METHODS if name not in has]
        pytest.fail(
            f"the storage has {', '.join(has)} but not {', '.join(missing)}: satchel.OwnerIndex is "
            "all four methods, and without all of them isinstance(storage, satchel.OwnerIndex) is "
            "False, so the owner index is never used",
            pytrace=False,
        )
    pytest.skip("the storage has no owner index (satchel.OwnerIndex); owner-index checks do not apply")


def _wall() -> float:
    """The wall clock (Unix seconds), the clock `satchel.OwnedEntry.expires` is given in."""
    return time.time()


def _short(owner: str) -> str:
    return repr(owner) if len(owner) <= 40 else f"{owner[:24]!r}... ({len(owner)} characters)"


async def _owned(index: satchel.OwnerIndex, owner: str) -> dict[str, satchel.OwnedEntry]:
    """``list_owned(owner)`` by id, once its types are checked and no id is listed twice."""
    entries = await index.list_owned(owner)
    if not isinstance(entries, list):
        pytest.fail(
            f"list_owned({_short(owner)}) returned {type(entries).__name__}, not a list", pytrace=False
        )
    found: dict[str, satchel.OwnedEntry] = {}
    for entry in entries:
        if not isinstance(entry, satchel.OwnedEntry):
            pytest.fail(
                f"list_owned({_short(owner)}) listed a {type(entry).__name__}, not a satchel.OwnedEntry",
                pytrace=False,
            )
        if not isinstance(entry.data, bytes):
            pytest.fail(
                f"list_owned({_short(owner)}) gave {entry.id!r} data of type {type(entry.data).__name__}, "
                "not bytes",
                pytrace=False,
            )
        if entry.expires is not None and (
            isinstance(entry.expires, bool) or not isinstance(entry.expires, (int, float))
        ):
            pytest.fail(
                f"list_owned({_short(owner)}) gave {entry.id!r} expires={entry.expires!r}: "
                "expected Unix seconds (a float) or None",
                pytrace=False,
            )
        if entry.id in found:
            pytest.fail(f"list_owned({_short(owner)}) listed {entry.id!r} twice", pytrace=False)
        found[entry.id] = entry
    return found


async def _expect_owned(
    index: satchel.OwnerIndex, owner: str, expected: dict[str, bytes], what: str
) -> dict[str, satchel.OwnedEntry]:
    """Fail unless ``list_owned(owner)`` lists exactly ``expected``: these ids, with this data."""
    found = await _owned(index, owner)
    wrong = [f"  {id!r} is not listed (it holds {label(expected[id])})" for id in expected if id not in found]
    wrong += [
        f"  {id!r} is listed, with {label(entry.data)}, and should not be"
        for id, entry in found.items()
        if id not in expected
    ]
    wrong += [
        f"  {id!r} is listed with {label(found[id].data)}, expected {label(want)}"
        for id, want in expected.items()
        if id in found and found[id].data != want
    ]
    if wrong:
        shown = "\n".join(wrong[:8]) + ("\n  ..." if len(wrong) > 8 else "")
        pytest.fail(
            f"{what}: list_owned({_short(owner)}) listed {len(found)} sessions, expected "
            f"{len(expected)}; {len(wrong)} wrong\n{shown}",
            pytrace=False,
        )
    return found


def _require_expires(
    entry: satchel.OwnedEntry, ttl: float | None, sent: float, returned: float, timing: Timing, what: str
) -> None:
    """Fail unless ``entry.expires`` is ``ttl`` after a call from ``sent`` to ``returned`` (wall clock)."""
    _require_expiry(entry.expires, ttl, sent, returned, timing, f"{what}: {entry.id!r} is listed with")


async def _invalidate_owned(
    index: satchel.OwnerIndex, owner: str, count: int, what: str, keep: Collection[str] = ()
) -> None:
    """``invalidate_owned(owner, keep=keep)``, failing unless it says it deleted ``count`` sessions."""
    got = await index.invalidate_owned(owner, keep=keep)
    kept = f", keep={len(keep)} ids" if keep else ""
    require_equal(
        got, count, f"{what}: invalidate_owned({_short(owner)}{kept}) returned {got!r}, expected {count}"
    )


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


def _optional_fixture(request: pytest.FixtureRequest, name: str) -> Any:
    """The fixture ``name`` wherever pytest finds it (class, module, conftest), or None.

    Looked up while fixtures are set up, not from inside a check: there an async fixture
    could not be run.
    """
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        return None


def _stored_expiry(lookup: StoredExpiry | None) -> StoredExpiry:
    """The stored-expiry reader, or skip the check that needs it."""
    if lookup is None:
        pytest.skip(
            "no stored_expiry fixture and no satchel_stored_expiry method on the storage, so the "
            "expiry the backend holds is not looked at (a test module or the storage can provide one)"
        )
    return lookup


async def _held(lookup: StoredExpiry, id: str) -> bool:
    """Whether the backend holds anything under ``id``, expired or not."""
    try:
        await lookup(id)
    except LookupError:
        return False
    return True


async def _expect_stored(
    lookup: StoredExpiry, id: str, ttl: float | None, sent: float, returned: float, timing: Timing, what: str
) -> None:
    """Fail unless the backend holds ``id`` with no expiry (``ttl`` None) or ``ttl`` after the call."""
    try:
        expires = await lookup(id)
    except LookupError:
        pytest.fail(f"{what}: the backend holds nothing under the id (stored_expiry raised LookupError)")
    _require_expiry(expires, ttl, sent, returned, timing, f"{what}: the backend holds")


def _require_expiry(
    expires: object, ttl: float | None, sent: float, returned: float, timing: Timing, what: str
) -> None:
    """Fail unless ``expires`` is None for no ``ttl``, else ``ttl`` after a call from ``sent``
    to ``returned`` (Unix seconds, wall clock), within the tolerance."""
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float))):
        pytest.fail(f"{what} expires={expires!r}: expected Unix seconds (a float) or None", pytrace=False)
    if ttl is None:
        if expires is not None:
            pytest.fail(
                f"{what} expires={expires!r} ({expires - returned:+.1f}s from now), but it was given "
                "ttl=None: no expiry (None) was expected",
                pytrace=False,
            )
        return
    low, high = sent + ttl - timing.tolerance, returned + ttl + timing.tolerance
    if expires is None or not low <= expires <= high:
        at = "None" if expires is None else f"{expires!r} ({expires - sent:+.3f}s from the call)"
        pytest.fail(
            f"{what} expires={at}; a ttl of {ttl}s puts it {ttl}s after the call, within "
            f"tolerance={timing.tolerance}s, as Unix seconds (wall clock)",
            pytrace=False,
        )


def _mentions(error: BaseException, secrets_: Iterable[str]) -> str | None:
    """The first of ``secrets_`` found in a message of ``error`` or its chain, or None."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        texts = [str(exc), repr(exc), *(str(note) for note in getattr(exc, "__notes__", ()))]
        for secret in secrets_:
            if any(secret in text for text in texts):
                return secret
        todo += [e for e in (exc.__cause__, exc.__context__) if e is not None]
        if isinstance(exc, BaseExceptionGroup):
            todo += list(exc.exceptions)
    return None


async def _expect_absent(lookup: StoredExpiry, id: str, what: str) -> None:
    try:
        expires = await lookup(id)
    except LookupError:
        return
    pytest.fail(
        f"{what}: the backend holds an entry (expires={expires!r}); stored_expiry must raise "
        "LookupError for an id the backend holds nothing under",
        pytrace=False,
    )


async def _call_in_outage(
    name: str, call: Callable[[], Awaitable[object]], bound: float
) -> satchel.StorageError | None:
    """Run one storage call while the backend is down: its StorageError, or None if it worked.

    Anything else fails the check: another exception type (callers catch StorageError), or
    no answer within ``bound`` seconds (a request that hangs holds a worker).
    """
    started = _now()
    with anyio.move_on_after(bound) as scope:
        try:
            await call()
        except satchel.StorageError as error:
            return error
        except Exception as error:
            pytest.fail(
                f"during an outage, {name} raised {type(error).__name__}, not satchel.StorageError "
                "(raise StorageError(...) from the backend's exception): callers, and the "
                "on_storage_error policy, catch StorageError only",
                pytrace=False,
            )
    if scope.cancelled_caught:
        pytest.fail(
            f"during an outage, {name} neither returned nor raised within outage_timeout={bound}s "
            f"(it was cancelled after {_now() - started:.1f}s): a call must give up and raise "
            "StorageError; raise outage_timeout only if the backend's own timeout is longer",
            pytrace=False,
        )
    return None


async def _recovers(storage: SessionStorage, kept: str, bound: float) -> None:
    """Fail unless the same storage object works again within ``bound`` seconds of the outage."""
    deadline = _now() + bound
    last: satchel.StorageError | None = None
    while _now() < deadline:
        try:
            got = await storage.read(kept)
        except satchel.StorageError as error:
            last = error
            await anyio.sleep(0.1)
            continue
        require_equal(
            got,
            b"kept through the outage",
            f"after the outage, a value written before it reads as {label(got)}",
        )
        probe = _new_probe()
        await storage.write(probe, b"after the outage", None)
        await _expect(storage, {probe: b"after the outage"}, "a write after the outage")
        await storage.invalidate(probe)
        return
    pytest.fail(
        f"the backend was back, yet for outage_timeout={bound}s every read raised "
        f"({last}): the storage must recover without being closed and opened again",
        pytrace=False,
    )


def _new_probe() -> str:
    return satchel.token_id()


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
    ``stored_expiry`` (optional) -> `StoredExpiry`
        Read the expiry the backend holds for an id. Without it the kit asks the storage's
        own ``satchel_stored_expiry`` method, where it has one.
    ``outage`` (optional) -> `Outage`
        ``async with outage():`` makes the backend unavailable inside the block.

    ``stored_expiry`` and ``outage`` may come from the class, the module or a conftest.py.

    What varies between backends is read from ``satchel.capabilities_of(storage)``:
    ``persistent``, ``max_value_size`` and ``event_loops``. A storage that offers
    ``write_if`` (`satchel.CompareAndSet`) gets the compare-and-set checks, and one that is a
    `satchel.OwnerIndex` (all four owner methods) gets the owner-index checks; the checks a
    storage has no capability for skip, saying which.

    Class attributes a subclass may set (command-line options override them):

    ``ttl`` / ``tolerance``
        The short real TTL the TTL checks write with, and the drift allowed around it
        (``--satchel-ttl``, ``--satchel-tolerance``). Raise both for a remote server.
    ``check_timeout``
        Seconds one check may take before it counts as a hang.
    ``outage_timeout``
        Seconds one call may take while the backend is unavailable before it counts as a
        hang (a bound on hanging, not a speed test).
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
    outage_timeout: ClassVar[float] = 30.0
    state_machine_examples: ClassVar[int] = 10
    state_machine_steps: ClassVar[int] = 20

    # Capabilities seen on earlier checks, so the trio check can skip before it builds a
    # storage on a loop the backend never claimed to support.
    _declared: ClassVar[dict[type, StorageCapabilities]] = {}
    _kit_fixtures = ("kit_timing", "kit_event_loop_gate", "kit_stored_expiry", "kit_outage")

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

    @pytest.fixture
    def kit_stored_expiry(
        self, request: pytest.FixtureRequest, storage: SessionStorage
    ) -> StoredExpiry | None:
        """The ``stored_expiry`` fixture found by name, else the storage's ``satchel_stored_expiry``."""
        lookup = _optional_fixture(request, "stored_expiry")
        if lookup is None:
            lookup = getattr(storage, "satchel_stored_expiry", None)
        return lookup  # type: ignore[no-any-return]

    @pytest.fixture
    def kit_outage(self, request: pytest.FixtureRequest) -> Outage | None:
        """The ``outage`` fixture found by name (a class, module or conftest.py may define it)."""
        return _optional_fixture(request, "outage")  # type: ignore[no-any-return]

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
        await _expect(
            storage,
            {keep: b"forever", lapse: None},
            "ttl=None after a ttl",
            roles={keep: "the value written with ttl=None", lapse: "the value written with a short ttl"},
        )

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
            await _expect(
                storage,
                {kept: b"new", shortened: None},
                "overwritten ttl",
                roles={kept: "a ttl overwritten with None", shortened: "None overwritten with a ttl"},
            )
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
            await _expect(
                storage,
                {given: None, freed: b"loses its ttl"},
                "after touch",
                roles={given: f"the value touch gave ttl={ttl}", freed: "the value touch gave ttl=None"},
            )
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

    @_check
    async def test_ttl_zero_or_less_expires_at_once(self, storage: SessionStorage) -> None:
        """A write or touch with ttl <= 0 leaves nothing readable; it is not an error."""
        written = {_new_id(self): ttl for ttl in (0, 0.0, -1.0, -86400.0)}
        for id, ttl in written.items():
            await storage.write(id, b"born expired", ttl)
        roles = {id: f"written with ttl={ttl!r}" for id, ttl in written.items()}
        await _expect(storage, dict.fromkeys(written), "after a write with ttl <= 0", roles)
        touched = {_new_id(self): ttl for ttl in (0, -1.0)}
        for id, ttl in touched.items():
            await storage.write(id, b"touched to expire", None)
            await storage.touch(id, ttl)
        roles = {id: f"touched with ttl={ttl!r}" for id, ttl in touched.items()}
        await _expect(storage, dict.fromkeys(touched), "after a touch with ttl <= 0", roles)

    # ---- what the backend holds ------------------------------------------------------

    @_check
    async def test_stored_expiry_of_writes(
        self, storage: SessionStorage, kit_timing: Timing, kit_stored_expiry: StoredExpiry | None
    ) -> None:
        """The backend holds no expiry for ttl=None and now + ttl for a ttl, long ones included."""
        lookup = _stored_expiry(kit_stored_expiry)
        ttls: list[float | None] = [None, 90.5, 3600.0, 86400.0, 30 * 86400.0]
        ids = {_new_id(self): ttl for ttl in ttls}
        for id, ttl in ids.items():
            sent = _wall()
            await storage.write(id, b"stored", ttl)
            await _expect_stored(lookup, id, ttl, sent, _wall(), kit_timing, f"after write(id, ttl={ttl})")
        # an overwrite sets the expiry anew, both ways
        for (id, old), new in zip(ids.items(), reversed(ttls), strict=True):
            sent = _wall()
            await storage.write(id, b"rewritten", new)
            await _expect_stored(
                lookup, id, new, sent, _wall(), kit_timing, f"after write(ttl={old}) then write(ttl={new})"
            )
        if isinstance(storage, satchel.CompareAndSet):
            for ttl in (None, 600.0):
                id, sent = _new_id(self), _wall()
                await storage.write_if(id, b"set", ttl, expected=None)
                what = f"after write_if(id, ttl={ttl}, expected=None)"
                await _expect_stored(lookup, id, ttl, sent, _wall(), kit_timing, what)
        await _expect_absent(lookup, _new_id(self), "an id never written")

    @_check
    async def test_stored_expiry_after_touch(
        self, storage: SessionStorage, kit_timing: Timing, kit_stored_expiry: StoredExpiry | None
    ) -> None:
        """touch moves the expiry the backend holds to now + ttl, or takes it away with None."""
        lookup = _stored_expiry(kit_stored_expiry)
        id = _new_id(self)
        await storage.write(id, b"rolling", 60.0)
        for ttl in (7200.0, None, 30.0, 86400.0, None):
            sent = _wall()
            await storage.touch(id, ttl)
            await _expect_stored(lookup, id, ttl, sent, _wall(), kit_timing, f"after touch(id, ttl={ttl})")
        await _expect(storage, {id: b"rolling"}, "after touches", roles={id: "the touched value"})
        absent = _new_id(self)
        await storage.touch(absent, 60.0)
        await _expect_absent(lookup, absent, "touch of an absent id")

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

    @_check
    async def test_value_over_max_value_size(self, storage: SessionStorage) -> None:
        """A value past the declared max_value_size is stored whole or refused with StorageError."""
        limit = satchel.capabilities_of(storage).max_value_size
        id, value = _new_id(self), b"\x5a" * (limit + 1)
        try:
            await storage.write(id, value, None)
        except satchel.StorageError:
            await _expect(storage, {id: None}, f"after a refused {limit + 1}-byte write", {id: "refused"})
        else:
            got = await storage.read(id)
            require_equal(
                got,
                value,
                f"a {limit + 1}-byte value (past the declared max_value_size={limit}) was accepted, "
                f"and reads back as {label(got)}: store it whole or raise satchel.StorageError",
            )
            await storage.invalidate(id)
        probe = _new_id(self)
        await storage.write(probe, b"still works", None)
        await _expect(storage, {probe: b"still works"}, "a write after the value past the limit")

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

    @_check
    async def test_failures_are_storage_errors(
        self, storage: SessionStorage, kit_outage: Outage | None
    ) -> None:
        """In an outage, calls raise StorageError in bounded time, naming no id; then the storage recovers."""
        outage = kit_outage
        if outage is None:
            pytest.skip(
                "no outage fixture, so what a call does while the backend is unavailable is not "
                "looked at (a test module with its own server can provide one)"
            )
        kept, written, dropped, compared = (_new_id(self) for _ in range(4))
        await storage.write(kept, b"kept through the outage", None)
        calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("read", lambda: storage.read(kept)),
            ("write", lambda: storage.write(written, b"during", 60.0)),
            ("touch", lambda: storage.touch(kept, None)),
            ("invalidate", lambda: storage.invalidate(dropped)),
        ]
        if isinstance(storage, satchel.CompareAndSet):
            cas = storage
            calls.append(("write_if", lambda: cas.write_if(compared, b"during", None, expected=None)))
        errors: dict[str, satchel.StorageError] = {}

        async def attempt(name: str, call: Callable[[], Awaitable[object]]) -> None:
            error = await _call_in_outage(name, call, self.outage_timeout)
            if error is not None:
                errors[name] = error

        # all at once, as requests arrive: each must give up within the bound on its own
        async with outage(), anyio.create_task_group() as tg:
            for name, call in calls:
                tg.start_soon(attempt, name, call)
        if not errors:
            pytest.fail(
                f"inside outage(), every call ({', '.join(name for name, _ in calls)}) succeeded: "
                "the outage fixture did not make the backend unavailable",
                pytrace=False,
            )
        ids = [kept, written, dropped, compared]
        for name, error in errors.items():
            leaked = _mentions(error, ids)
            if leaked is not None:
                pytest.fail(
                    f"during an outage, the StorageError of {name} quotes the session id it was "
                    f"called with ({type(error).__name__}: {str(error).replace(leaked, '<id>')[:300]}), "
                    "in its message or in an exception it chains: an id is a credential, and "
                    "messages end up in logs",
                    pytrace=False,
                )
        await _recovers(storage, kept, self.outage_timeout)

    @_check
    async def test_purge_removes_only_expired(
        self,
        storage: SessionStorage,
        other_namespace: SessionStorage | None,
        kit_timing: Timing,
        kit_stored_expiry: StoredExpiry | None,
    ) -> None:
        """purge deletes expired entries, keeps live ones (other namespaces' too), returns how many."""
        if not isinstance(storage, satchel.Purgeable):
            pytest.skip("the storage has no purge (satchel.Purgeable); the purge check does not apply")
        lookup = kit_stored_expiry
        expired = [_new_id(self) for _ in range(5)]
        live = {_new_id(self): (b"lives an hour", 3600.0), _new_id(self): (b"lives forever", None)}
        theirs = _new_id(self)
        for id in expired:
            await storage.write(id, b"expires", kit_timing.ttl)
        written = _now()
        for id, (data, ttl) in live.items():
            await storage.write(id, data, ttl)
        if other_namespace is not None:
            await other_namespace.write(theirs, b"another namespace's", None)
        await _sleep_until(written + kit_timing.ttl + kit_timing.tolerance)
        held = [id for id in expired if await _held(lookup, id)] if lookup is not None else []
        count = await storage.purge()
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            pytest.fail(f"purge() returned {count!r}: expected how many entries it deleted (an int >= 0)")
        if count < len(held):
            pytest.fail(
                f"purge() returned {count}, but the backend held {len(held)} expired entries of this "
                "namespace just before it",
                pytrace=False,
            )
        if lookup is not None:
            left = [id for id in expired if await _held(lookup, id)]
            if left:
                pytest.fail(
                    f"after purge(), the backend still holds {len(left)} of {len(expired)} expired entries",
                    pytrace=False,
                )
        roles = {id: f"a live entry with ttl={ttl}" for id, (_, ttl) in live.items()}
        await _expect(storage, {id: data for id, (data, _) in live.items()}, "after purge()", roles)
        if other_namespace is not None:
            await _expect(
                other_namespace,
                {theirs: b"another namespace's"},
                "after purge()",
                roles={theirs: "a live entry of another namespace"},
            )
        again = await storage.purge()
        if isinstance(again, bool) or not isinstance(again, int) or again < 0:
            pytest.fail(f"a second purge() returned {again!r}: expected an int >= 0")

    @_check
    async def test_use_after_aclose_opens_again(self, storage: SessionStorage) -> None:
        """aclose is not the end: the next call opens the storage again, and it works."""
        before = _new_id(self)
        await storage.write(before, b"before aclose", None)
        await storage.aclose()
        after = _new_id(self)
        await storage.write(after, b"after aclose", None)
        expected: dict[str, bytes | None] = {after: b"after aclose"}
        if satchel.capabilities_of(storage).persistent:
            expected[before] = b"before aclose"
        roles = {before: "written before aclose", after: "written after aclose"}
        await _expect(storage, expected, "calls after aclose", roles)
        await storage.touch(after, 600.0)
        await storage.invalidate(after)
        await _expect(storage, {after: None}, "invalidate after aclose", roles)
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

    # ---- the owner index ------------------------------------------------------------

    @_check
    async def test_owner_index_offers_write_if(self, storage: SessionStorage) -> None:
        """A storage with an owner index (satchel.OwnerIndex) also offers write_if (satchel.CompareAndSet)."""
        _owner_index(storage)
        assert isinstance(storage, satchel.CompareAndSet), (
            "the storage has an owner index (satchel.OwnerIndex) but no write_if: a storage that "
            "offers OwnerIndex also offers satchel.CompareAndSet (write_owned is write_if plus the link)"
        )

    @_check
    async def test_write_owned_lists_the_session(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """write_owned stores and links a session: list_owned gives its id, data and wall-clock expiry."""
        index, owner = _owner_index(storage), _new_owner(self)
        sessions = [
            (_new_id(self), bytes(range(256)), None),
            (_new_id(self), b"", 3600.0),
            (_new_id(self), os.urandom(1000), 120.0),
        ]
        calls: dict[str, tuple[float, float]] = {}
        for id, data, ttl in sessions:
            sent = _wall()
            ok = await index.write_owned(id, data, ttl, owner=owner, expected=None)
            calls[id] = (sent, _wall())
            assert ok is True, f"write_owned({id!r}, expected=None) of a new id returned {ok!r}, not True"
        await _expect(
            storage, {id: data for id, data, _ in sessions}, "read of sessions written by write_owned"
        )
        found = await _expect_owned(index, owner, {id: data for id, data, _ in sessions}, "after write_owned")
        for id, _, ttl in sessions:
            _require_expires(found[id], ttl, *calls[id], kit_timing, "after write_owned")
        first, old, _ = sessions[0]
        assert await index.write_owned(first, b"replaced", None, owner=owner, expected=old) is True, (
            "write_owned over the session's own value (expected=its value) returned False"
        )
        await _expect_owned(
            index,
            owner,
            {first: b"replaced", **{id: data for id, data, _ in sessions[1:]}},
            "after write_owned replaced one of the owner's sessions",
        )
        await _invalidate_owned(index, owner, len(sessions), "the owner's three sessions")

    @_check
    async def test_write_owned_expected(self, storage: SessionStorage) -> None:
        """write_owned writes only over the expected value (None: if absent); a refused one links nothing."""
        index, owner, other = _owner_index(storage), _new_owner(self), _new_owner(self)
        owned, plain, empty, gone = (_new_id(self) for _ in range(4))
        assert await index.write_owned(owned, b"v1", None, owner=owner, expected=None) is True
        await storage.write(plain, b"plain", None)
        await storage.write(empty, b"", None)
        await index.write_owned(gone, b"ended", None, owner=owner, expected=None)
        await storage.invalidate(gone)
        refused = [
            (owned, b"taken", None, "over a session another owner holds, expected=None"),
            (owned, b"taken", b"not v1", "over a session another owner holds, expected a wrong value"),
            (plain, b"taken", None, "over a plain session, expected=None"),
            (plain, b"taken", b"not plain", "over a plain session, expected a wrong value"),
            (empty, b"taken", None, "over an empty value, expected=None (an empty value is not absent)"),
            (gone, b"taken", b"ended", "after invalidate, expected the old value (deletion wins)"),
        ]
        for id, data, expected, how in refused:
            ok = await index.write_owned(id, data, None, owner=other, expected=expected)
            assert ok is False, f"write_owned {how} returned {ok!r}, not False"
        await _expect(
            storage,
            {owned: b"v1", plain: b"plain", empty: b"", gone: None},
            "after refused write_owned calls",
        )
        await _expect_owned(index, other, {}, "an owner whose every write_owned was refused")
        await _expect_owned(index, owner, {owned: b"v1"}, "the owner of a session others failed to take")
        await _invalidate_owned(index, other, 0, "an owner whose every write_owned was refused")
        assert await index.write_owned(owned, b"v2", None, owner=owner, expected=b"v1") is True, (
            "write_owned with the current value as expected returned False"
        )
        assert await index.write_owned(owned, b"v3", None, owner=owner, expected=b"v1") is False, (
            "write_owned succeeded against a value that had already been replaced"
        )
        assert await index.write_owned(plain, b"now owned", None, owner=other, expected=b"plain") is True, (
            "write_owned over a plain session, with its value as expected, returned False"
        )
        await _expect(
            storage, {owned: b"v2", plain: b"now owned"}, "after write_owned with the right expected"
        )
        await _expect_owned(index, owner, {owned: b"v2"}, "after write_owned over the owner's own session")
        await _expect_owned(index, other, {plain: b"now owned"}, "after write_owned over a plain session")
        await _invalidate_owned(index, owner, 1, "the owner of one session")
        await _invalidate_owned(index, other, 1, "the owner of one session")

    @_check
    async def test_owned_sessions_expire(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """Past its ttl an owned session is neither listed nor counted, and write_owned sees it as absent."""
        index = _owner_index(storage)

        async def attempt(ttl: float) -> bool:
            owner, brief, lasting = _new_owner(self), _new_id(self), _new_id(self)
            sent = _now()
            await index.write_owned(brief, b"brief", ttl, owner=owner, expected=None)
            written = _now()
            await index.write_owned(lasting, b"lasting", None, owner=owner, expected=None)
            found = await _owned(index, owner)
            if not _in_time(sent, ttl, kit_timing):
                await index.invalidate_owned(owner)
                return False
            require_equal(
                {id: entry.data for id, entry in found.items()},
                {brief: b"brief", lasting: b"lasting"},
                f"before its ttl={ttl}s, list_owned gives {sorted(found)}; expected {[brief, lasting]}",
            )
            await _sleep_until(written + ttl + kit_timing.tolerance)
            await _expect_owned(index, owner, {lasting: b"lasting"}, f"past a session's ttl={ttl}s")
            await _expect(storage, {brief: None, lasting: b"lasting"}, f"past a session's ttl={ttl}s")
            counted = await index.invalidate_owned(owner, keep=[lasting])
            require_equal(
                counted,
                0,
                f"past a session's ttl={ttl}s, invalidate_owned (keeping the other session) returned "
                f"{counted!r}: it counted the expired session",
            )
            assert await index.write_owned(brief, b"again", None, owner=owner, expected=b"brief") is False, (
                "write_owned matched a value whose ttl had passed"
            )
            assert await index.write_owned(brief, b"again", None, owner=owner, expected=None) is True, (
                "write_owned(expected=None) over an expired session returned False"
            )
            await _expect_owned(
                index, owner, {brief: b"again", lasting: b"lasting"}, "write_owned over an expired session"
            )
            await _invalidate_owned(index, owner, 2, "the owner of two sessions")
            return True

        await _timed(kit_timing, attempt)

    @_check
    async def test_touch_owned_extends_the_listing(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """touch_owned moves the session's and the listing's expiry to ttl from now; that ttl still ends."""
        index = _owner_index(storage)

        async def attempt(ttl: float) -> bool:
            owner, id = _new_owner(self), _new_id(self)
            sent = _now()
            await index.write_owned(id, b"rolling", ttl, owner=owner, expected=None)
            written, wall = _now(), _wall()  # the touch is sent now
            await index.touch_owned(id, 3 * ttl, owner=owner)
            touched, touched_wall = _now(), _wall()
            if not _in_time(sent, ttl, kit_timing):
                await index.invalidate_owned(owner)
                return False
            await _sleep_until(written + ttl + kit_timing.tolerance)
            found = await _owned(index, owner)
            got = await storage.read(id)
            if not _in_time(written, 3 * ttl, kit_timing):
                await index.invalidate_owned(owner)
                return False
            what = f"past the first ttl={ttl:g}s of a session touched with ttl={3 * ttl:g}s"
            require_equal(got, b"rolling", f"{what}, read gives {label(got)}")
            require_equal(sorted(found), [id], f"{what}, list_owned gives {sorted(found)}")
            _require_expires(found[id], 3 * ttl, wall, touched_wall, kit_timing, what)
            await _sleep_until(touched + 3 * ttl + kit_timing.tolerance)
            await _expect_owned(index, owner, {}, f"past the touched ttl={3 * ttl:g}s")
            await _expect(storage, {id: None}, f"past the touched ttl={3 * ttl:g}s")
            await _invalidate_owned(index, owner, 0, f"past the touched ttl={3 * ttl:g}s")
            return True

        await _timed(kit_timing, attempt)

    @_check
    async def test_touch_owned_sets_expiry(self, storage: SessionStorage, kit_timing: Timing) -> None:
        """touch_owned(id, None) drops the expiry, (id, ttl) sets one; absent or expired ids stay gone."""
        index, owner = _owner_index(storage), _new_owner(self)
        id, absent, expired = _new_id(self), _new_id(self), _new_id(self)
        await index.write_owned(expired, b"expires", kit_timing.ttl, owner=owner, expected=None)
        written = _now()
        await index.write_owned(id, b"session", 600.0, owner=owner, expected=None)
        await index.touch_owned(id, None, owner=owner)
        await _sleep_until(written + kit_timing.ttl + kit_timing.tolerance)
        found = await _expect_owned(index, owner, {id: b"session"}, "after touch_owned(id, None)")
        _require_expires(found[id], None, 0.0, 0.0, kit_timing, "after touch_owned(id, None)")
        sent = _wall()
        await index.touch_owned(id, 1200.0, owner=owner)
        found = await _expect_owned(index, owner, {id: b"session"}, "after touch_owned(id, 1200.0)")
        _require_expires(found[id], 1200.0, sent, _wall(), kit_timing, "after touch_owned(id, 1200.0)")
        await index.touch_owned(absent, 60.0, owner=owner)
        await index.touch_owned(expired, None, owner=owner)
        await _expect(storage, {absent: None, expired: None}, "touch_owned of an absent and an expired id")
        await _expect_owned(index, owner, {id: b"session"}, "touch_owned of an absent and an expired id")
        await _invalidate_owned(index, owner, 1, "the owner of one session")

    @_check
    async def test_invalidate_owned_keeps_and_counts(self, storage: SessionStorage) -> None:
        """invalidate_owned deletes the owner's sessions but those in keep, says how many; a repeat says 0."""
        index, owner, bystander = _owner_index(storage), _new_owner(self), _new_owner(self)
        doomed = {_new_id(self): os.urandom(24) for _ in range(6)}
        kept = {_new_id(self): b"kept %d" % n for n in range(2)}
        theirs = {_new_id(self): b"bystander's %d" % n for n in range(3)}
        plain = {_new_id(self): b"nobody's"}
        for n, (id, data) in enumerate({**doomed, **kept}.items()):
            await index.write_owned(id, data, None if n % 2 else 600.0, owner=owner, expected=None)
        for id, data in theirs.items():
            await index.write_owned(id, data, None, owner=bystander, expected=None)
        await _write_all(storage, plain.items())
        absent = _new_id(self)
        # keep may name ids that are not the owner's, or not there: they are left alone
        keep = {*kept, next(iter(theirs)), absent}
        await _invalidate_owned(index, owner, len(doomed), "the first call", keep=keep)
        await _expect(
            storage,
            {**dict.fromkeys(doomed), **kept, **theirs, **plain, absent: None},
            "after invalidate_owned",
        )
        await _expect_owned(index, owner, kept, "after invalidate_owned, the sessions in keep")
        await _expect_owned(index, bystander, theirs, "another owner's, after invalidate_owned")
        await _invalidate_owned(index, owner, 0, "a repeat with the same keep", keep=tuple(keep))
        await _invalidate_owned(index, owner, len(kept), "a call without keep")
        await _invalidate_owned(index, owner, 0, "a repeat")
        await _expect(
            storage, {**dict.fromkeys(kept), **theirs, **plain}, "after invalidate_owned without keep"
        )
        await _expect_owned(index, owner, {}, "after invalidate_owned without keep")
        await _invalidate_owned(index, _new_owner(self), 0, "an owner with no sessions")
        await _invalidate_owned(index, bystander, len(theirs), "another owner's")

    @_check
    async def test_invalidate_unlinks_an_owned_session(self, storage: SessionStorage) -> None:
        """After invalidate(id) an owned session is neither listed nor counted by invalidate_owned."""
        index, owner = _owner_index(storage), _new_owner(self)
        ended, alive = _new_id(self), _new_id(self)
        await index.write_owned(ended, b"signed out", None, owner=owner, expected=None)
        await index.write_owned(alive, b"signed in", 600.0, owner=owner, expected=None)
        await storage.invalidate(ended)
        await _expect_owned(index, owner, {alive: b"signed in"}, "after invalidate of one session")
        await _invalidate_owned(index, owner, 1, "after invalidate of one of two sessions")
        await _expect(storage, {ended: None, alive: None}, "after invalidate and invalidate_owned")

    @_check
    async def test_owners_never_see_each_other(self, storage: SessionStorage) -> None:
        """Owners that are prefixes of each other or differ only in case never see each other's sessions."""
        index = _owner_index(storage)
        base = secrets.token_hex(8)
        owners = _owners(
            self,
            f"ada-{base}",
            f"Ada-{base}",
            f"ADA-{base}",
            f"ada-{base}x",
            f"ada-{base}:1",
            f"ada-{base} ",
            f"ada-{base[:8]}",
            f"x-ada-{base}",
            f"\u00e9-{base}",
            f"\u00c9-{base}",
        )
        sessions = {owner: {_new_id(self): f"{owner!r} {n}".encode() for n in range(2)} for owner in owners}
        for owner, owned in sessions.items():
            for id, data in owned.items():
                await index.write_owned(id, data, None, owner=owner, expected=None)
        for owner, owned in sessions.items():
            await _expect_owned(index, owner, owned, "owners that look alike")
        first, *rest = owners
        await _invalidate_owned(index, first, 2, "one of owners that look alike")
        await _expect(storage, dict.fromkeys(sessions[first]), "the sessions of the owner invalidated")
        for owner in rest:
            await _expect_owned(index, owner, sessions[owner], f"after invalidate_owned({first!r})")
            await _invalidate_owned(index, owner, 2, "each of owners that look alike")

    @_check
    async def test_owner_names_with_any_characters(self, storage: SessionStorage) -> None:
        """Owners with pattern, quote, separator and non-ASCII characters, up to 256 characters, work."""
        index = _owner_index(storage)
        t = secrets.token_hex(6)
        odd = [
            t, f"{t}x", f"x{t}", f"{t}*", f"*{t}", f"{t}?", f"{t}[x]", f"{{{t}}}", f"{{{t}}}x",
            f"{t}%", f"%{t}", f"{t}_", f"_{t}", f"{t}:", f"{t}:x", f"${t}", f"{t}.x", f".{t}",
            f"{t}'", f'{t}"', f"{t}'); --", f"{t}\\", f"{t}/x", f"{t} x", f"{t}\tx", f"{t}\nx",
            f"{t}\u7528\u6237", f"{t}\U0001f600", f"{t}\u0301",
            (t + "\u00e9" * 256)[:256], (t + "\u00e9" * 256)[:255], (t + "\U0001f600" * 256)[:256],
        ]  # fmt: skip
        owners = _owners(self, *odd)
        sessions = {owner: _new_id(self) for owner in owners}
        for owner, id in sessions.items():
            ok = await index.write_owned(id, owner.encode(), None, owner=owner, expected=None)
            assert ok is True, f"write_owned of a new id for owner {_short(owner)} returned {ok!r}"
        for owner, id in sessions.items():
            await _expect_owned(index, owner, {id: owner.encode()}, "an owner with unusual characters")
        for owner in owners:
            await _invalidate_owned(index, owner, 1, "an owner with unusual characters")
        await _expect(storage, dict.fromkeys(sessions.values()), "after invalidate_owned of every owner")

    @_check
    async def test_owner_namespaces_are_isolated(
        self, storage: SessionStorage, other_namespace: SessionStorage | None
    ) -> None:
        """One owner in two namespaces: each namespace lists and invalidates only its own sessions."""
        index = _owner_index(storage)
        if other_namespace is None:
            pytest.skip(
                "no other_namespace fixture: provide one to check that owners are kept apart by namespace"
            )
        there = _owner_index(other_namespace)
        owner, shared, mine, theirs = _new_owner(self), _new_id(self), _new_id(self), _new_id(self)
        await index.write_owned(shared, b"here", None, owner=owner, expected=None)
        await index.write_owned(mine, b"mine", None, owner=owner, expected=None)
        assert await there.write_owned(shared, b"there", None, owner=owner, expected=None) is True, (
            "write_owned(expected=None) in the other namespace saw this namespace's session"
        )
        await there.write_owned(theirs, b"theirs", None, owner=owner, expected=None)
        await _expect_owned(index, owner, {shared: b"here", mine: b"mine"}, "this namespace")
        await _expect_owned(there, owner, {shared: b"there", theirs: b"theirs"}, "the other namespace")
        await _invalidate_owned(index, owner, 2, "this namespace")
        await _expect(
            other_namespace, {shared: b"there", theirs: b"theirs"}, "other after invalidate_owned here"
        )
        await _expect_owned(
            there, owner, {shared: b"there", theirs: b"theirs"}, "other after invalidate_owned here"
        )
        await _invalidate_owned(there, owner, 2, "the other namespace")

    @_check
    async def test_invalidate_owned_during_writes(self, storage: SessionStorage) -> None:
        """invalidate_owned amid write_owned calls: older sessions go; each is listed and read, or neither."""
        index, owner = _owner_index(storage), _new_owner(self)
        before = {_new_id(self): b"before %d" % n for n in range(16)}
        for id, data in before.items():
            await index.write_owned(id, data, None, owner=owner, expected=None)
        written: dict[str, bytes] = {}
        returned_before: set[str] = set()  # write_owned returned before invalidate_owned was sent
        sent_after: set[str] = set()  # write_owned sent after invalidate_owned returned
        started, finished, go = anyio.Event(), anyio.Event(), anyio.Event()
        counted: list[int] = []
        refused: list[object] = []

        async def writer(n: int) -> None:
            for k in range(16):
                id, data = _new_id(self), b"writer %d, session %d" % (n, k)
                after = finished.is_set()
                ok = await index.write_owned(id, data, None, owner=owner, expected=None)
                if ok is not True:
                    refused.append(ok)
                written[id] = data
                if not started.is_set():
                    returned_before.add(id)
                if after:
                    sent_after.add(id)
                if k == 3:
                    go.set()
                await anyio.lowlevel.checkpoint()

        async def invalidator() -> None:
            await go.wait()
            started.set()
            counted.append(await index.invalidate_owned(owner))
            finished.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(invalidator)
            for n in range(4):
                tg.start_soon(writer, n)
        assert not refused, f"write_owned(expected=None) of new ids returned {refused[0]!r}, not True"
        found = await _owned(index, owner)
        surely_gone = {**before, **{id: written[id] for id in returned_before}}
        await _expect(storage, dict.fromkeys(surely_gone), "sessions written before invalidate_owned started")
        listed = sorted(id for id in surely_gone if id in found)
        assert not listed, (
            f"invalidate_owned returned, yet list_owned still lists {len(listed)} sessions written before it"
        )
        await _expect(
            storage,
            {id: written[id] for id in sent_after},
            "sessions written after invalidate_owned returned",
        )
        wrong = []
        survivors = 0
        for id, data in written.items():
            got = await storage.read(id)
            entry = found.get(id)
            if got is None and entry is None:
                continue
            survivors += 1
            if got != data or entry is None or entry.data != data:
                shown = "not listed" if entry is None else f"listed with {label(entry.data)}"
                wrong.append(f"  {id!r}: read gives {label(got)}, {shown}; written {label(data)}")
        if wrong:
            shown = "\n".join(wrong[:8]) + ("\n  ..." if len(wrong) > 8 else "")
            pytest.fail(
                f"after invalidate_owned amid writes, {len(wrong)} sessions are readable but not "
                f"listed, or listed but not readable (or with other data)\n{shown}",
                pytrace=False,
            )
        gone = len(before) + len(written) - survivors
        require_equal(
            counted,
            [gone],
            f"invalidate_owned amid writes returned {counted}; {gone} sessions of the owner are gone",
        )
        await _invalidate_owned(index, owner, survivors, "after the writers")

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
        """On each event loop the storage declares: write, read, touch, invalidate, owners, concurrently."""
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
        if isinstance(storage, satchel.OwnerIndex):
            owner, owned = _new_owner(self), _new_id(self)
            assert await storage.write_owned(owned, b"owned", 60.0, owner=owner, expected=None) is True
            await storage.touch_owned(owned, None, owner=owner)
            await _expect_owned(storage, owner, {owned: b"owned"}, f"the owner index on {anyio_backend}")
            await _invalidate_owned(storage, owner, 1, f"the owner index on {anyio_backend}")

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
