"""A plugin written from the docs alone installs, shows up, and passes the kit with one command.

The code blocks of docs/writing-a-storage-plugin.md (each titled with its file name) are
written to a fresh folder, installed into a throwaway virtual environment next to the local satchel packages
(offline: the locked dependencies come from the uv cache), and used as a user would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "writing-a-storage-plugin.md"
UV = ROOT / ".tools" / "uv" / "bin" / "uv"
BLOCK = re.compile(r'^```\w+ title="(?P<path>[^"]+)"\n(?P<code>.*?)^```$', re.S | re.M)

pytestmark = pytest.mark.plugin_from_docs


def _files() -> dict[str, str]:
    return {m["path"]: m["code"] for m in BLOCK.finditer(PAGE.read_text())}


def test_the_page_gives_every_file_of_the_plugin() -> None:
    assert set(_files()) == {
        "pyproject.toml",
        "src/satchel_files/_plugin.py",
        "src/satchel_files/__init__.py",
        "src/satchel_files/_storage.py",
        "tests/test_file_storage.py",
    }


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.skipif(not UV.exists(), reason=f"needs the project's uv at {UV} (make sync)")
def test_plugin_from_the_docs_installs_and_passes_the_kit(tmp_path: Path) -> None:
    plugin = tmp_path / "satchel-files"
    for path, code in _files().items():
        (plugin / path).parent.mkdir(parents=True, exist_ok=True)
        (plugin / path).write_text(code)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "PYTEST_", "UV_", "PYTHONPATH"))
    }
    env |= {
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_OFFLINE": "1",
        "UV_NO_PROGRESS": "1",
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"),
    }
    venv = tmp_path / "venv"
    python = shutil.which("python3") or sys.executable
    # the local satchel and satchel-conformance, with the locked versions of their
    # dependencies, from the uv cache; then the plugin from its folder, as a user would
    _run(
        [str(UV), "sync", "-q", "--frozen", "--no-dev", "--package", "satchel-conformance",
         "--python", python],
        ROOT,
        env,
    )  # fmt: skip
    _run(
        [str(UV), "pip", "install", "-q", "--no-deps", "--python", str(venv / "bin" / "python"),
         str(plugin)],
        tmp_path,
        env,
    )  # fmt: skip

    # loading the hook, as satchel does to resolve any URL, does not import the storage
    light = "import sys, satchel_files._plugin; print('satchel_files._storage' in sys.modules)"
    assert _run([str(venv / "bin" / "python"), "-c", light], tmp_path, env).stdout.strip() == "False"

    listed = _run([str(venv / "bin" / "satchel"), "plugins"], tmp_path, env).stdout
    assert "satchel-files 0.1.0" in listed
    assert "schemes: files" in listed

    data = tmp_path / "sessions"
    kit = _run(
        [str(venv / "bin" / "satchel"), "conformance", f"files://{data}", "--satchel-ttl=0.15"],
        tmp_path,
        env,
    )
    assert "passed   test_data_survives_reopen" in kit.stdout
    assert "passed   test_namespaces_are_isolated" in kit.stdout
    assert "the storage has no write_if (satchel.CompareAndSet)" in kit.stdout
    assert "the storage has no owner index (satchel.OwnerIndex)" in kit.stdout
    for check in ("test_stored_expiry_of_writes", "test_purge_removes_only_expired"):
        assert f"passed   {check}" in kit.stdout  # through satchel_stored_expiry and purge
    # the page's example report is this run's tally (trio is not installed here, as it says)
    tally = re.search(r"TestStorageURL: \d+ checks: .*", PAGE.read_text())
    assert tally is not None
    assert tally[0] in kit.stdout, re.findall(r"TestStorageURL: .*", kit.stdout)

    tests = _run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
         "-k", "test_round_trip or test_ids_sharing_a_prefix"],
        plugin,
        env,
    )  # fmt: skip
    assert "2 passed" in tests.stdout
