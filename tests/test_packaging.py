"""What an installer sees: every wheel and sdist carries the licence and says where the
project lives, plugins ask for a core version, and every package page shows how to start."""

from __future__ import annotations

import email
import email.message
import re
import secrets
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))
UV = shutil.which("uv") or str(ROOT / ".tools" / "uv" / "bin" / "uv")
LICENSE = (ROOT / "LICENSE").read_text()
DOCS = "https://satchel-sessions.github.io/satchel/"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(UV).exists():
        pytest.skip(f"needs uv to build the packages ({UV}; make sync installs it)")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [UV, "build", "--all-packages", "--quiet", "--out-dir", str(out)], cwd=ROOT, check=True, timeout=300
    )
    return out


def wheels(dist: Path) -> list[Path]:
    found = sorted(dist.glob("*.whl"))
    assert len(found) == len(PACKAGES)
    return found


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


def test_the_licence_is_mit_and_every_package_has_the_same_copy() -> None:
    assert LICENSE.startswith("MIT License\n\nCopyright (c) 2026 the satchel authors\n")
    for package in PACKAGES:
        assert (package / "LICENSE").read_text() == LICENSE, f"{package.name}/LICENSE differs from LICENSE"


def test_every_wheel_carries_the_licence(dist: Path) -> None:
    for wheel in wheels(dist):
        with zipfile.ZipFile(wheel) as archive:
            [name] = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
            assert archive.read(name).decode() == LICENSE, wheel.name


def test_every_sdist_carries_the_licence(dist: Path) -> None:
    sdists = sorted(dist.glob("*.tar.gz"))
    assert len(sdists) == len(PACKAGES)
    for sdist in sdists:
        top = sdist.name.removesuffix(".tar.gz")
        with tarfile.open(sdist) as archive:
            member = archive.getmember(f"{top}/LICENSE")
            assert member.isfile(), f"{sdist.name}: LICENSE is not a regular file"
            extracted = archive.extractfile(member)
            assert extracted is not None
            assert extracted.read().decode() == LICENSE, sdist.name


def test_every_wheel_names_its_licence_urls_and_classifiers(dist: Path) -> None:
    for wheel in wheels(dist):
        meta = metadata(wheel)
        assert meta["License-Expression"] == "MIT", wheel.name
        assert meta["License-File"] == "LICENSE", wheel.name
        urls = dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or [])
        assert set(urls) == {"Homepage", "Documentation", "Source", "Issues"}, wheel.name
        assert urls["Documentation"].startswith(DOCS), wheel.name
        classifiers = meta.get_all("Classifier") or []
        assert "Typing :: Typed" in classifiers, wheel.name
        assert "Topic :: Internet :: WWW/HTTP :: Session" in classifiers, wheel.name
        assert meta["Keywords"], wheel.name
        # the package page on the index is the README, and says where the docs are
        assert DOCS in meta.get_payload(), wheel.name


def test_every_plugin_asks_for_a_released_core(dist: Path) -> None:
    core_version = metadata(next(w for w in wheels(dist) if w.name.startswith("satchel-"))).get("Version")
    assert core_version == "0.1.0"
    for wheel in wheels(dist):
        meta = metadata(wheel)
        if meta["Name"] == "satchel":
            continue
        requires = [r for r in meta.get_all("Requires-Dist") or [] if re.match(r"satchel\b(?![-_])", r)]
        assert requires == ["satchel>=0.1"], f"{meta['Name']} requires {requires}"


def readme_blocks(package: Path) -> list[str]:
    return [
        str(b) for b in re.findall(r"```python\n(.*?)```", (package / "README.md").read_text(), flags=re.S)
    ]


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_every_package_readme_says_what_how_and_where(package: Path) -> None:
    text = (package / "README.md").read_text()
    assert text.startswith("# satchel"), "the page starts with the package's name"
    assert "## Install" in text
    assert f"pip install ./packages/core ./packages/{package.name}" in text or package.name == "core"
    assert "## Example" in text
    assert readme_blocks(package)
    assert DOCS in text
    assert "## Licence\n\nMIT" in text


@pytest.mark.parametrize("package", [p for p in PACKAGES if p.name != "conformance"], ids=lambda p: p.name)
def test_every_package_readme_example_runs_as_pasted(
    package: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the conformance kit's block is a fragment around the reader's own backend, and says so
    monkeypatch.setenv("SESSION_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv("CART_KEY", secrets.token_urlsafe(32))
    monkeypatch.chdir(tmp_path)
    [block] = readme_blocks(package)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(block, str(package / "README.md"), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["sessions"] is not None


@pytest.mark.anyio
async def test_the_core_readme_example_counts_visits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_KEY", secrets.token_urlsafe(32))
    [block] = readme_blocks(ROOT / "packages" / "core")
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(block, "packages/core/README.md", "exec"), namespace)  # noqa: S102 - our own README
    transport = httpx.ASGITransport(namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert [(await client.get("/")).text for _ in range(2)] == ["visit number 1", "visit number 2"]


def test_the_readme_app_does_not_take_the_demos_port() -> None:
    readme = (ROOT / "README.md").read_text()
    [run] = re.findall(r"uvicorn\.run\(.*\)", readme)
    assert "port=8001" in run
    assert "PORT ?= 8000" in (ROOT / "Makefile").read_text()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
