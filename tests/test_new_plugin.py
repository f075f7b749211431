"""``satchel new-plugin NAME`` writes a package that passes the conformance kit as written.

Two ways, as a plugin author would check it: the generated test module under pytest
(``PYTHONPATH`` at its ``src``), and the whole route: wheels of satchel, satchel-conformance
and the generated package installed into a fresh virtual environment (their locked
dependencies from uv's cache, or PyPI when the cache lacks them), then ``satchel
conformance NAME:///...`` there.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from satchel._cli import main
from satchel._template import render

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "uv" / "bin" / "uv"


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    return done


def test_new_plugin_writes_the_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "files", "--dir", str(tmp_path / "pkg")]) == 0
    written = sorted(p.relative_to(tmp_path / "pkg").as_posix() for p in (tmp_path / "pkg").rglob("*"))
    assert [p for p in written if "." in p.rsplit("/", 1)[-1]] == [
        "README.md",
        "pyproject.toml",
        "src/satchel_files/__init__.py",
        "src/satchel_files/_plugin.py",
        "src/satchel_files/_storage.py",
        "src/satchel_files/py.typed",
        "tests/test_files_storage.py",
    ]
    pyproject = (tmp_path / "pkg" / "pyproject.toml").read_text()
    assert 'name = "satchel-files"' in pyproject
    assert '[project.entry-points.satchel]\nfiles = "satchel_files._plugin"' in pyproject
    assert "{{" not in "".join(render("files").values())  # every placeholder replaced
    assert "README.md says how to test it" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["Files", "my_store", "my-store", "x", "9lives", "a" * 33, "../up"])
def test_new_plugin_refuses_a_name_that_cannot_be_a_scheme_and_a_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert main(["new-plugin", name, "--dir", str(tmp_path / "pkg")]) == 2
    assert "cannot name a plugin: give 2-32 lower-case letters and digits" in capsys.readouterr().err
    assert not (tmp_path / "pkg").exists()


def test_new_plugin_refuses_an_existing_directory_or_a_taken_scheme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mine.txt").write_text("keep")
    assert main(["new-plugin", "files", "--dir", str(tmp_path / "pkg")]) == 2
    assert f"{str(tmp_path / 'pkg')!r} already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "pkg").iterdir()] == ["mine.txt"]
    assert main(["new-plugin", "memory", "--dir", str(tmp_path / "other")]) == 2
    assert "the storage scheme 'memory' is already provided" in capsys.readouterr().err


def test_a_failed_write_leaves_nothing_and_a_rerun_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_text, calls = Path.write_text, []

    def fail_after_the_first(self: Path, *args: Any, **kwargs: Any) -> int:
        calls.append(self)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", fail_after_the_first)
    assert main(["new-plugin", "files", "--dir", str(tmp_path / "pkg")]) == 2
    assert "nothing was written" in capsys.readouterr().err
    assert len(calls) == 2  # it failed midway, one file already written
    assert list(tmp_path.iterdir()) == []  # neither the package nor its staging directory
    monkeypatch.undo()
    assert main(["new-plugin", "files", "--dir", str(tmp_path / "pkg")]) == 0
    assert (tmp_path / "pkg" / "src" / "satchel_files" / "_storage.py").is_file()


@pytest.fixture(scope="module")
def files_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated storage class, imported from a package written to a temporary directory."""
    pkg = tmp_path_factory.mktemp("generated") / "satchel-files"
    assert main(["new-plugin", "files", "--dir", str(pkg)]) == 0
    sys.path.insert(0, str(pkg / "src"))
    try:
        yield importlib.import_module("satchel_files._storage").FilesStorage
    finally:
        sys.path.remove(str(pkg / "src"))
        for module in [m for m in sys.modules if m == "satchel_files" or m.startswith("satchel_files.")]:
            del sys.modules[module]


def _expired(data: bytes) -> bytes:
    return struct.pack(">d", time.time() - 60) + data


def test_purge_of_the_generated_storage_leaves_other_files_alone(files_storage: Any, tmp_path: Path) -> None:
    root = tmp_path / "app"
    storage = files_storage(root, namespace="kit")
    asyncio.run(storage.write("gone", b"expired", -1.0))
    asyncio.run(storage.write("kept", b"live", None))
    mine = root / "kit"
    # data of the application next to the sessions: a sibling directory, and a linked one
    # that looks like a namespace; none of it may be read as an expiry, deleted or locked
    sibling = root / "scripts"
    sibling.mkdir()
    theirs = {
        "deploy.sh": b"#!/bin/sh\necho deploy\n",
        "notes.md": b"# notes\n\nsome text\n",
        "data.gz": b"\x1f\x8b\x08\x00" + b"\x00" * 16,
        "0" * 64: _expired(b"named like a session"),
    }
    for name, data in theirs.items():
        (sibling / name).write_bytes(data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".lock").write_bytes(b"")
    (elsewhere / ("1" * 64)).write_bytes(_expired(b"behind a link"))
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    # in its own namespace: a file not named as its sessions are, a link named as one,
    # a temporary file a crashed write left long ago and one a write may be filling now
    (mine / "notes.md").write_bytes(_expired(b"not a session"))
    target = tmp_path / "target"
    target.write_bytes(_expired(b"a link's target"))
    (mine / ("2" * 64)).symlink_to(target)
    stale, fresh = mine / ".tmp-crashed1", mine / ".tmp-writing1"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    assert asyncio.run(storage.purge()) == 1
    assert asyncio.run(storage.read("gone")) is None
    assert asyncio.run(storage.read("kept")) == b"live"
    assert {p.name: p.read_bytes() for p in sibling.iterdir()} == theirs  # no .lock either
    assert sorted(p.name for p in elsewhere.iterdir()) == [".lock", "1" * 64]
    assert (mine / "notes.md").exists()
    assert (mine / ("2" * 64)).is_symlink()
    assert target.exists()
    assert not stale.exists()
    assert fresh.exists()


def test_the_generated_package_passes_its_kit_tests_and_the_linters(tmp_path: Path) -> None:
    pkg = tmp_path / "satchel-files"
    assert main(["new-plugin", "files", "--dir", str(pkg)]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(pkg / "src")
    done = _run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests"], pkg, env)
    assert "FAILED" not in done.stdout
    assert "ERROR" not in done.stdout
    for check in (
        "test_failures_are_storage_errors",  # the outage fixture
        "test_stored_expiry_of_writes",  # the storage's satchel_stored_expiry
        "test_purge_removes_only_expired",
        "test_write_if_one_winner",
        "test_data_survives_reopen",
        "test_write_reaches_the_backend",
    ):
        assert f"passed   {check}" in done.stdout, done.stdout[-3000:]
    assert "passed   test_the_hook_module_does_not_import_the_storage" not in done.stdout  # not a kit check
    assert "test_the_hook_module_does_not_import_the_storage PASSED" in done.stdout
    # the template is checked as the project's own code is
    rules = "E,F,W,I,B,UP,SIM,RUF,ASYNC,PT,C4,RET,PIE"  # the project's, less its own exceptions
    _run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--line-length=110", f"--select={rules}", "."],
        pkg,
    )
    _run([sys.executable, "-m", "ruff", "format", "--isolated", "--line-length=110", "--check", "."], pkg)
    _run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(pkg / "src")], pkg)


def _uv() -> str:
    found = str(UV) if UV.exists() else shutil.which("uv")
    assert found, f"needs uv at {UV} (make sync) or on PATH"
    return found


def test_a_generated_plugin_installed_from_wheels_passes_satchel_conformance(tmp_path: Path) -> None:
    uv = _uv()
    python = shutil.which("python3") or sys.executable
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTEST_", "UV_", "PYTHONPATH"))
    }
    env |= {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    venv, wheels = tmp_path / "venv", tmp_path / "wheels"
    for package in ("core", "conformance"):
        _run(
            [
                uv,
                "build",
                "-q",
                "--offline",
                "--wheel",
                "--out-dir",
                str(wheels),
                str(ROOT / "packages" / package),
            ],
            ROOT,
            env,
        )
    # the locked third-party dependencies only, from uv's cache (PyPI when it lacks them)
    sync = [
        uv,
        "sync",
        "-q",
        "--frozen",
        "--no-dev",
        "--no-install-workspace",
        "--package",
        "satchel-conformance",
        "--python",
        python,
    ]
    venv_env = env | {"UV_PROJECT_ENVIRONMENT": str(venv)}
    offline = subprocess.run([*sync, "--offline"], cwd=ROOT, env=venv_env, capture_output=True, timeout=240)
    if offline.returncode != 0:
        _run(sync, ROOT, venv_env)
    bin = venv / "bin"

    def install(found: Iterable[Path]) -> None:
        into = str(bin / "python")
        _run([uv, "pip", "install", "-q", "--no-deps", "--python", into, *map(str, found)], tmp_path, env)

    install(wheels.glob("*.whl"))

    # the installed satchel writes the package (its templates are in the wheel)
    _run([str(bin / "satchel"), "new-plugin", "files"], tmp_path, env)
    _run(
        [uv, "build", "-q", "--offline", "--wheel", "--out-dir", str(tmp_path / "plugin"), "satchel-files"],
        tmp_path,
        env,
    )
    install((tmp_path / "plugin").glob("*.whl"))

    listed = _run([str(bin / "satchel"), "plugins"], tmp_path, env).stdout
    assert "satchel-files 0.1.0\n  schemes: files" in listed
    assert "satchel-conformance 0.1.0\n  commands: conformance" in listed
    kit = _run([str(bin / "satchel"), "conformance", f"files://{tmp_path}/check"], tmp_path, env).stdout
    assert "storage URL: files://" in kit
    for check in ("test_data_survives_reopen", "test_write_if_one_winner", "test_purge_removes_only_expired"):
        assert f"passed   {check}" in kit, kit[-3000:]
    assert " failed" not in kit.splitlines()[-1]
