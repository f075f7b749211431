"""Every python block of the README, the docs and the package READMEs runs as pasted.

Each fenced ```python / ```py block is one of three things:

- run here: a page's blocks run top to bottom in one namespace, in a fresh interpreter
  whose working directory is an empty folder, as a reader pasting them one after the other;
- run by a page-specific test that also checks what the example does (``PAGE_TESTS``);
- marked as a fragment with ``<!-- fragment -->`` on the line before its fence, and not run.

Keys come from the environment, as the pages tell readers to keep them: the examples read
``os.environ["SESSION_KEY"]`` and the like, and ``EXAMPLE_ENV`` below sets them to fresh keys.
CONTRIBUTING.md ("Docs examples") says the same for contributors.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAGMENT = "<!-- fragment -->"
# what a reader exports before pasting the examples: fresh keys, as `satchel keygen` prints them
EXAMPLE_ENV = {
    name: secrets.token_urlsafe(32) for name in ("SESSION_KEY", "SATCHEL_CART_KEY", "SATCHEL_CART_KEY_NEXT")
}
TIMEOUT = 60
OPENING = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository
    line: int  # of the opening fence, 1-based
    info: str  # the fence's info string: 'python title="x.py"'
    code: str  # dedented to the fence
    fragment: bool

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass(frozen=True)
class PageTest:
    """A test file that runs the blocks of a page (those ``runs`` accepts) and checks what they do."""

    test_file: str
    runs: Callable[[Block], bool] = lambda block: True


# pages whose examples a test of their own runs (and checks more than "it ran"); keys are globs
PAGE_TESTS: dict[str, PageTest] = {
    "README.md": PageTest("tests/test_readme.py"),
    "docs/quickstart.md": PageTest("tests/test_docs_quickstart.py"),
    "docs/security.md": PageTest("tests/test_docs_security.py", runs=lambda block: "APP_ENV" in block.code),
    "docs/signing-out-everywhere.md": PageTest("tests/test_docs_signing_out.py"),
    "docs/outside-a-request.md": PageTest("tests/test_docs_outside_a_request.py"),
    "docs/request-session.md": PageTest("tests/test_docs_request_session.py"),
    "docs/migrating.md": PageTest("tests/test_docs_migrating.py"),
    "docs/frameworks/*.md": PageTest("tests/test_docs_frameworks.py"),
    # each block titled with a file name is a file of the plugin, installed and checked by the kit
    "docs/writing-a-storage-plugin.md": PageTest(
        "tests/conformance/test_plugin_from_docs.py", runs=lambda block: "title=" in block.info
    ),
    "packages/*/README.md": PageTest("tests/test_packaging.py"),
}


def pages() -> list[str]:
    found = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("packages/*/README.md")]
    return sorted(str(path.relative_to(ROOT)) for path in found)


def blocks_of(page: str) -> list[Block]:
    lines = (ROOT / page).read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = OPENING.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        end = i + 1
        while end < len(lines) and not (
            lines[end].startswith(indent)
            and lines[end].strip().startswith(fence)
            and not lines[end].strip(fence[0]).strip()
        ):
            end += 1
        if info.split(" ")[0] in ("python", "py"):
            body = [
                line[len(indent) :] if line.startswith(indent) else line.lstrip()
                for line in lines[i + 1 : end]
            ]
            before = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
            found.append(Block(page, i + 1, info, "\n".join(body) + "\n", before == FRAGMENT))
        i = end + 1
    return found


def page_test(page: str) -> PageTest | None:
    return next((test for pattern, test in PAGE_TESTS.items() if Path(page).match(pattern)), None)


def run_here(page: str) -> list[Block]:
    test = page_test(page)
    return [b for b in blocks_of(page) if not b.fragment and not (test and test.runs(b))]


PAGES_TO_RUN = [page for page in pages() if run_here(page)]

# runs in a fresh interpreter: the blocks keep their page's line numbers, so a traceback
# points at the line of the page that failed. The namespace is a module of its own, as a pasted
# file would be (frameworks such as Litestar look a handler's module up).
RUNNER = """
import json, sys, types
module = sys.modules["docs_example"] = types.ModuleType("docs_example")
for page, line, code in json.load(sys.stdin):
    exec(compile("\\n" * line + code, page, "exec"), module.__dict__)
"""


@pytest.mark.parametrize("page", PAGES_TO_RUN)
def test_the_python_blocks_of_the_page_run_as_pasted(page: str, tmp_path: Path) -> None:
    blocks = run_here(page)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([[b.page, b.line, b.code] for b in blocks]),
        cwd=tmp_path,  # relative sqlite paths land here
        env={**_inherited_env(), **EXAMPLE_ENV},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode:
        pytest.fail(
            f"{page}: its python blocks (lines {', '.join(str(b.line) for b in blocks)}) do not run as "
            f"pasted, top to bottom in one namespace (the traceback names the page's line):\n"
            f"{done.stderr[-3000:]}\nFix the example so that a reader can paste it; or mark a block that "
            f"cannot run alone with {FRAGMENT} on the line before its fence; or run it in a test of the "
            f"page's own, registered in PAGE_TESTS of tests/test_docs_examples.py (CONTRIBUTING.md, "
            f"'Docs examples').",
            pytrace=False,
        )


def _inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SATCHEL_TEST_"))}


TEST_MODULES = [
    b for page in PAGES_TO_RUN for b in run_here(page) if re.search(r"^(async )?def test_", b.code, re.M)
]


@pytest.mark.parametrize("block", TEST_MODULES, ids=[b.where for b in TEST_MODULES])
def test_a_block_that_is_a_test_module_passes_under_pytest(block: Block, tmp_path: Path) -> None:
    (tmp_path / "test_example.py").write_text(block.code)
    done = subprocess.run(
        # only the anyio plugin the examples use: loading every installed plugin takes longer
        # than the tests themselves
        [sys.executable, "-m", "pytest", "-q", "-p", "anyio.pytest_plugin", "test_example.py"],
        cwd=tmp_path,
        env={**_inherited_env(), **EXAMPLE_ENV, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode:
        pytest.fail(
            f"{block.where}: the test module fails under pytest:\n{done.stdout[-3000:]}", pytrace=False
        )


def test_every_python_block_is_run_or_marked_a_fragment() -> None:
    # every block falls in one of the three cases by construction; this pins the page tests
    # the registry relies on, so a block is never counted as run by a test that does not exist
    problems = []
    for page in pages():
        test = page_test(page)
        if test is None or not [b for b in blocks_of(page) if not b.fragment and test.runs(b)]:
            continue
        path = ROOT / test.test_file
        if not path.exists():
            problems.append(
                f"{page}: its examples are said to be run by {test.test_file}, which does not exist"
            )
        elif Path(page).name not in path.read_text():
            problems.append(
                f"{page}: {test.test_file} does not mention the page; is it the test that runs it?"
            )
    assert not problems, "\n".join(problems)


def test_a_fragment_marker_marks_a_python_block() -> None:
    stray = []
    for page in pages():
        lines = (ROOT / page).read_text().splitlines()
        marked = {b.line for b in blocks_of(page) if b.fragment}
        for number, line in enumerate(lines, start=1):
            if line.strip() != FRAGMENT:
                continue
            following = next((n for n in range(number + 1, len(lines) + 1) if lines[n - 1].strip()), None)
            if following not in marked:
                stray.append(f"{page}:{number}")
    assert not stray, f"{FRAGMENT} must sit right before a ```python fence: {stray}"


def test_the_pages_have_python_blocks_to_find() -> None:
    # the finder itself: a fence it failed to parse would hide every block after it
    everywhere = [b for page in pages() for b in blocks_of(page)]
    assert len(everywhere) >= 40
    assert any(b.page == "docs/encryption.md" and b.code.startswith("Encrypt(") for b in everywhere)
