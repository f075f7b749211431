"""Regressions from a review of the kit: each test states a defect it would catch again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest
import satchel
from satchel_conformance import StorageContract, Timing


class SlowReads:
    """A correct storage (MemoryStorage) whose reads arrive late, as on a loaded machine or a
    remote server: the read sees the data as of when it runs, 0.45 s after it was sent."""

    def __init__(self) -> None:
        self.inner = satchel.MemoryStorage()
        self.capabilities = satchel.capabilities_of(self.inner)

    async def read(self, id: str) -> bytes | None:
        await anyio.sleep(0.45)
        return await self.inner.read(id)

    async def write(self, id: str, data: bytes, ttl: float | None) -> None:
        await self.inner.write(id, data, ttl)

    async def invalidate(self, id: str) -> None:
        await self.inner.invalidate(id)

    async def touch(self, id: str, ttl: float | None) -> None:
        await self.inner.touch(id, ttl)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.anyio
async def test_ttl_expires_tolerates_slow_reads_by_retrying() -> None:
    """Control: test_ttl_expires sees the slow read and retries with a longer ttl: it passes."""
    kit = StorageContract()
    await kit.test_ttl_expires(storage=SlowReads(), kit_timing=Timing(ttl=0.25, tolerance=0.1))


@pytest.mark.anyio
async def test_touch_check_does_not_fail_a_correct_storage_with_slow_reads() -> None:
    """Defect: test_touch_extends_and_keeps_data does not look at how long its middle read
    took, so a correct storage fails it (instead of the check retrying with a longer ttl,
    as test_ttl_expires does). On a loaded 2-core machine this is a flaky failure."""
    kit = StorageContract()
    await kit.test_touch_extends_and_keeps_data(
        storage=SlowReads(), kit_timing=Timing(ttl=0.25, tolerance=0.1)
    )


NEVER_EXPIRES_MODULE = '''
import math
import pytest
import satchel
from satchel_conformance import StorageContract


class NeverExpires(satchel.MemoryStorage):
    """Broken: ignores every ttl."""

    async def write(self, id, data, ttl):
        await super().write(id, data, None)

    async def touch(self, id, ttl):
        pass


class TestNeverExpires(StorageContract):
    @pytest.fixture
    async def storage(self):
        s = NeverExpires()
        yield s
        await s.aclose()

{override}
'''


def _run_third_party(
    tmp_path: Path, override: str, *extra: str, module: str = NEVER_EXPIRES_MODULE
) -> subprocess.CompletedProcess[str]:
    # a backend author's repo: its own pytest.ini, pytest's defaults (xfail_strict = false)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_backend.py").write_text(
        module.format(override=textwrap.indent(textwrap.dedent(override), "    "))
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_backend.py", *extra],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )


_TTL_CHECKS = [
    "test_ttl_expires",
    "test_overwrite_replaces_ttl",
    "test_ttl_none_never_expires",
    "test_touch_extends_and_keeps_data",
    "test_touch_sets_expiry_from_now",
    "test_touch_does_not_revive_expired",
    "test_write_if_sees_expired_as_absent",
    "test_state_machine",
]
_TTL_SELECTION = "ttl or touch or expired or state_machine"
_EMPTY_XFAIL_OVERRIDES = "".join(
    f"""
@pytest.mark.xfail(reason="our TTLs are checked elsewhere")
async def {name}(self, storage):
    pass
"""
    for name in _TTL_CHECKS
)


def test_xfail_override_with_an_empty_body_does_not_let_a_broken_storage_pass(tmp_path: Path) -> None:
    """Defect: the guard accepted any override that carries xfail(reason=...), whatever its
    body. With pytest's default xfail_strict=false (every third-party repo that did not set
    it), an override whose body is `pass` XPASSed, the run exited 0, and the check itself
    never ran. Now the kit's own check runs in the override's place: for a storage that
    never expires, each TTL check runs and fails, reported as xfailed with the reason given
    (the design's way to record a check that does not hold), never as a pass."""
    # not the state machine: its random sequences may, rarely, miss the bug in one run
    done = _run_third_party(tmp_path, _EMPTY_XFAIL_OVERRIDES, "-k", "ttl or touch or expired")
    assert f"{len(_TTL_CHECKS) - 1} xfailed" in done.stdout, done.stdout[-2500:]
    assert "xpassed" not in done.stdout.lower(), (
        "an xfail-marked no-op override ran in place of the kit's check:\n" + done.stdout[-2500:]
    )


def test_xfail_override_of_a_check_that_holds_fails_the_run(tmp_path: Path) -> None:
    """The same empty xfail overrides over a storage that does expire: the kit's checks pass,
    so each XPASS is strict and the run fails, even where xfail_strict is pytest's default."""
    module = NEVER_EXPIRES_MODULE.replace("s = NeverExpires()", "s = satchel.MemoryStorage()")
    done = _run_third_party(tmp_path, _EMPTY_XFAIL_OVERRIDES, "-k", _TTL_SELECTION, module=module)
    assert done.returncode != 0, (
        "xfail-marked no-op overrides of checks the storage passes let the run pass:\n" + done.stdout[-2500:]
    )
    assert "XPASS(strict)" in done.stdout, done.stdout[-2500:]


def test_a_class_level_skip_cannot_drop_every_check(tmp_path: Path) -> None:
    """Defect: the guard only looks at overridden test_* attributes; a class-level
    `pytestmark = pytest.mark.skip(...)` (or skipif) drops every standard check, with exit 0."""
    override = """
    pytestmark = [pytest.mark.anyio, pytest.mark.skip(reason="flaky on CI")]
    """
    done = _run_third_party(tmp_path, override)
    assert done.returncode != 0, (
        "every standard check was skipped and the run passed:\n" + done.stdout[-2000:]
    )


class _Persistent(satchel.MemoryStorage):
    capabilities = satchel.StorageCapabilities(persistent=True)


@pytest.mark.anyio
async def test_overriding_a_helper_cannot_skip_a_check_in_the_storage_s_name() -> None:
    """Defect: helpers the checks trust (`capabilities`, `_expect`, `new_id`, ...) can be
    overridden without xfail. Overriding `capabilities` skips the persistence check with the
    reason "the storage declares persistent=False" although the storage declares True."""

    class Lenient(StorageContract):
        @staticmethod
        def capabilities(storage: object) -> satchel.StorageCapabilities:
            return satchel.StorageCapabilities(persistent=False)

    storage = _Persistent()

    async def reopen() -> satchel.SessionStorage:
        return _Persistent()  # forgets everything: would fail the check

    try:
        await Lenient().test_data_survives_reopen(
            storage=storage, reopen=reopen, kit_timing=Timing(ttl=0.25, tolerance=0.1)
        )
    except pytest.skip.Exception as skip:
        pytest.fail(f"the persistence check was skipped with the reason {skip.msg!r}, a false claim")
    except AssertionError:
        return  # correct: the check ran and caught the storage that forgets
    except pytest.fail.Exception:
        return


def test_a_skip_put_on_by_a_class_decorator_fails_every_check(tmp_path: Path) -> None:
    """A decorator marks the class after it is defined, past the class-definition guard:
    the kit's plugin fails each check instead of letting them all skip."""
    module = NEVER_EXPIRES_MODULE.replace(
        "class TestNeverExpires(", '@pytest.mark.skip(reason="flaky on CI")\nclass TestNeverExpires('
    )
    done = _run_third_party(tmp_path, "", "-k", "round_trip or absent", module=module)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "class-level pytest.mark.skip" in done.stdout, done.stdout[-2000:]
    assert "skipped" not in done.stdout.splitlines()[-1], done.stdout[-2000:]
