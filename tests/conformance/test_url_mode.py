"""``satchel conformance URL`` and ``pytest --pyargs satchel_conformance``, as a user runs them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from satchel_conformance.servers._common import free_port

BIN = Path(sys.executable).parent
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=240)


def test_satchel_conformance_memory_passes_and_lists_what_it_checked(tmp_path: Path) -> None:
    done = _run(str(BIN / "satchel"), "conformance", "memory://", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = done.stdout
    assert "storage URL: memory://" in out
    for check in ("test_round_trip", "test_ttl_expires", "test_write_if_one_winner", "test_state_machine"):
        assert f"passed   {check}:" in out
    # every skip is named, with its reason
    assert "skipped  test_data_survives_reopen" in out
    assert "the storage declares persistent=False" in out
    assert "no raw_read fixture" in out
    # nothing was left behind in the folder it ran from
    assert list(tmp_path.iterdir()) == []
    # the docs count the checks a run reports, and list each one
    page = (DOCS / "conformance.md").read_text()
    ran = re.search(r"TestStorageURL: (\d+) checks", out)
    assert ran is not None, out[-3000:]
    assert re.findall(r"TestStorageURL: (\d+) checks", page) == [ran[1]], (
        "docs/conformance.md's example report"
    )
    assert f"A run reports {ran[1]} checks" in page, "docs/conformance.md counts the checks"
    checks = set(re.findall(r"^  \w+ +(test_\w+)", out, re.M))
    assert len(checks) == int(ran[1]) - 1, sorted(checks)  # the event-loop check runs twice
    undocumented = sorted(name for name in checks if f"| `{name}" not in page)
    assert not undocumented, f"checks missing from the tables of docs/conformance.md: {undocumented}"


def test_an_unknown_scheme_fails_once_with_the_plugin_error(tmp_path: Path) -> None:
    done = _run(str(BIN / "satchel"), "conformance", "nosuch://x", cwd=tmp_path)
    assert done.returncode == 2
    # one line that says what is wrong, not a traceback per check
    assert done.stderr.splitlines() == [
        "satchel conformance: no plugin provides the storage scheme 'nosuch' (installed: "
        + done.stderr.split("(installed: ", 1)[1].rstrip("\n")
    ]
    assert done.stdout == ""


def test_a_storage_that_does_not_answer_fails_once_and_keeps_its_password(tmp_path: Path) -> None:
    # a port nothing listens on: every check would fail the same way
    url = f"redis://:hunter2-password@127.0.0.1:{free_port()}/0?timeout=2"
    done = _run(str(BIN / "satchel"), "conformance", url, cwd=tmp_path)
    assert done.returncode == 2
    assert "a first read failed, so no check can run" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert "hunter2" not in done.stderr + done.stdout


def test_pytest_pyargs_with_a_storage_url(tmp_path: Path) -> None:
    done = _run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs",
        "satchel_conformance", "--satchel-storage-url=memory://",
        "-k", "test_round_trip or test_absent_id_reads_none",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout


def test_pyargs_without_a_url_says_what_is_missing(tmp_path: Path) -> None:
    done = _run(
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "satchel_conformance",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--satchel-storage-url=URL" in done.stderr


def test_conformance_usage() -> None:
    from satchel_conformance._cli import run

    assert run([]) == 2
    assert run(["--help"]) == 0
    assert run(["not-a-url"]) == 2


def test_the_pytest_plugin_is_import_light() -> None:
    code = (
        "import sys, satchel_conformance._pytest_plugin, satchel_conformance.servers.fixtures\n"
        "heavy = {'satchel', 'hypothesis', 'anyio', 'trio', 'satchel_conformance._storage'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_server_fixtures_reach_every_run(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = _run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--fixtures", cwd=tmp_path)
    for name in (
        "satchel_redis_url",
        "satchel_redis_cluster_url",
        "satchel_redis_sentinel_url",
        "satchel_mongodb_url",
    ):
        assert name in done.stdout
