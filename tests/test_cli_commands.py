"""Commands that plugins add to ``satchel`` (the ``satchel_add_commands`` hook), ``--version``,
``conformance --help``, and commands that refuse to create a storage's missing local data.

Plugins here are real distributions: a ``.dist-info`` with its entry point and a module,
on ``PYTHONPATH`` of a fresh ``satchel`` process, next to the plugins installed in the env.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "packages" / "core" / "src" / "satchel"
SATCHEL = [sys.executable, "-c", "import sys; from satchel._cli import main; sys.exit(main(sys.argv[1:]))"]

HELLO_HOOK = """
import satchel

@satchel.hookimpl
def satchel_add_commands(commands):
    commands.add("hello", "hello_cmd:run", help="say hello to every argument")
"""
HELLO_CMD = """
import sys
print("hello_cmd imported", file=sys.stderr)

def run(argv):
    print("hello " + " ".join(argv))
    return 3
"""
BROKEN_HOOK = """
import satchel

@satchel.hookimpl
def satchel_register(registry):
    registry.storage("brokenstore", "nowhere:Nothing")

@satchel.hookimpl
def satchel_add_commands(commands):
    commands.add("first", "nowhere:first", help="never listed: the hook fails after it")
    raise RuntimeError("the command table is corrupt")
"""


def _dist(root: Path, name: str, module: str, code: str) -> None:
    (root / f"{module}.py").write_text(code)
    info = root / f"{name.replace('-', '_')}-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[satchel]\n{module} = {module}\n")


def _satchel(
    *args: str, path: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="250")  # help lines unwrapped
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return subprocess.run([*SATCHEL, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    _dist(root, "satchel-hello", "hello_hook", HELLO_HOOK)
    (root / "hello_cmd.py").write_text(HELLO_CMD)
    _dist(root, "satchel-broken", "broken_hook", BROKEN_HOOK)
    return root


def test_a_plugin_command_runs_with_its_arguments_untouched(plugins: Path) -> None:
    done = _satchel("hello", "--help", "-x", "ada", path=plugins)
    assert done.stdout == "hello --help -x ada\n"
    assert done.returncode == 3  # the command's own exit status


def test_help_lists_plugin_commands_without_importing_them_and_names_the_broken_plugin(
    plugins: Path,
) -> None:
    done = _satchel("--help", path=plugins)
    assert done.returncode == 0, done.stderr
    assert "say hello to every argument [satchel-hello]" in done.stdout
    assert "run the conformance kit against a storage URL [satchel-conformance]" in done.stdout
    assert "hello_cmd imported" not in done.stderr  # only the hook module was imported
    assert "satchel-broken 1.2 failed to load" in done.stdout
    assert "RuntimeError: the command table is corrupt" in done.stdout
    assert "first" not in done.stdout.split("options:")[0]  # all of a plugin's commands, or none


def test_a_broken_command_hook_breaks_no_other_command(plugins: Path) -> None:
    assert _satchel("hello", path=plugins).stdout == "hello \n"
    assert _satchel("keygen", path=plugins).returncode == 0
    listed = _satchel("plugins", path=plugins)
    assert listed.returncode == 1
    assert "satchel-broken 1.2\n  failed to load: adding its commands: RuntimeError" in listed.stdout
    assert "  schemes: brokenstore" in listed.stdout  # what it did register is still shown
    assert "satchel-hello 1.2\n  commands: hello" in listed.stdout
    typo = _satchel("helo", path=plugins)
    assert typo.returncode == 2
    assert "satchel: satchel-broken 1.2 failed to load" in typo.stderr
    assert "invalid choice: 'helo'" in typo.stderr


def test_a_command_module_that_cannot_be_imported_is_named(tmp_path: Path) -> None:
    _dist(tmp_path, "satchel-gone", "gone_hook", HELLO_HOOK.replace("hello_cmd:run", "gone_cmd:run"))
    done = _satchel("hello", path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("satchel hello: satchel-gone registered 'gone_cmd:run', which cannot")
    assert "reinstall or upgrade satchel-gone" in done.stderr


@pytest.mark.parametrize(
    ("name", "why"),
    [("purge", "which is satchel's own"), ("Hello", "lower-case word"), ("-x", "lower-case word")],
)
def test_a_command_name_that_is_taken_or_malformed_is_refused(tmp_path: Path, name: str, why: str) -> None:
    _dist(tmp_path, "satchel-odd", "odd_hook", HELLO_HOOK.replace('"hello"', repr(name)))
    listed = _satchel("plugins", path=tmp_path)
    assert listed.returncode == 1
    assert "satchel-odd 1.2\n  failed to load: adding its commands: PluginError" in listed.stdout
    assert why in listed.stdout


def test_two_plugins_adding_one_command_name_both_of_them(tmp_path: Path) -> None:
    _dist(tmp_path, "satchel-hello", "hello_hook", HELLO_HOOK)
    _dist(tmp_path, "satchel-twin", "twin_hook", HELLO_HOOK)
    listed = _satchel("plugins", path=tmp_path).stdout
    assert "is added by both satchel-hello and satchel-twin; uninstall one of them" in listed or (
        "is added by both satchel-twin and satchel-hello; uninstall one of them" in listed
    )


def test_version_names_the_core_and_every_plugin_distribution(plugins: Path) -> None:
    import importlib.metadata

    done = _satchel("--version", path=plugins)
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == f"satchel {importlib.metadata.version('satchel')}"
    for dist in ("satchel-conformance", "satchel-sqlite", "satchel-hello", "satchel-broken"):
        assert any(line.startswith(f"{dist} ") for line in lines), lines


def test_conformance_help_lists_the_kits_own_options_and_passes_the_rest_to_pytest() -> None:
    from satchel_conformance import _pytest_plugin

    done = _satchel("conformance", "--help")
    assert done.returncode == 0
    assert "--satchel-ttl=SECONDS" in done.stdout
    assert "--satchel-tolerance=SECONDS" in done.stdout
    assert "every other argument is passed to pytest" in done.stdout
    # every option the kit's pytest plugin declares is listed (the URL is the argument itself)
    declared = [
        line.split('"')[1]
        for line in Path(_pytest_plugin.__file__).read_text().splitlines()
        if line.strip().startswith('"--satchel-')
    ]
    assert "--satchel-ttl" in declared
    assert [o for o in declared if o != "--satchel-storage-url" and o not in done.stdout] == []


def test_the_core_names_no_plugin_of_its_own() -> None:
    """The kit's command comes through the hook; the core's code does not know the kit."""
    hits = [p.name for p in CORE.rglob("*.py") if "conformance" in p.read_text()]
    assert hits == []


def test_conformance_refuses_to_create_a_relative_local_store(tmp_path: Path) -> None:
    done = _satchel("conformance", "sqlite:///data/kit.db", cwd=tmp_path)
    assert done.returncode == 2
    assert "relative to the working directory" in done.stderr
    assert repr(str(tmp_path / "data" / "kit.db")) in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize("command", ["sessions", "revoke"])
def test_owner_commands_refuse_a_local_store_that_is_not_there(tmp_path: Path, command: str) -> None:
    done = _satchel(command, f"sqlite:///{tmp_path}/nowhere.db", "--owner", "ada", cwd=tmp_path)
    assert done.returncode == 2
    assert f"nothing is stored at {str(tmp_path / 'nowhere.db')!r}" in done.stderr
    assert "this command creates nothing" in done.stderr
    relative = _satchel(command, "sqlite:///nowhere.db", "--owner", "ada", cwd=tmp_path)
    assert "'nowhere.db' is relative, so it follows the working directory" in relative.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_mongodb_says_so_first_and_briefly(tmp_path: Path) -> None:
    pytest.importorskip("satchel_mongo")
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        done = _satchel("conformance", f"mongodb://127.0.0.1:{port}/db?serverSelectionTimeoutMS=300")
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "MongoDB is unreachable" in line[:120]
    assert "Connection refused" in line[:200]
    assert "Topology Description" not in line
    assert len(line) < 400, line
