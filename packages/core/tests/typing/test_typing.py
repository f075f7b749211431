"""The public types under ``mypy --strict``: the usage examples pass, the wrong usages fail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

HERE = Path(__file__).parent
ROOT = HERE.parents[3]  # the workspace root, whose pyproject.toml holds the mypy config
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.*?)(?:  \[(?P<code>[\w-]+)\])?$")
MARK = re.compile(r"#\s*E:\s*(?P<codes>[\w\-, ]+)$")


@pytest.fixture(scope="module")
def mypy_errors() -> dict[str, list[tuple[int, str, str]]]:
    """mypy --strict over both files in one run: file name -> [(line, code, message)]."""
    stdout, stderr, _ = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--strict",
            "--no-error-summary",
            "--show-absolute-path",
            str(HERE / "usage.py"),
            str(HERE / "wrong.py"),
        ]
    )
    assert not stderr, stderr
    errors: dict[str, list[tuple[int, str, str]]] = {"usage.py": [], "wrong.py": []}
    for line in stdout.splitlines():
        found = ERROR.match(line)
        if found is None:
            assert ": note: " in line, f"unexpected mypy output: {line}"
            continue
        name = Path(found["file"]).name
        errors.setdefault(name, []).append((int(found["line"]), found["code"] or "", found["message"]))
    return errors


def expected_errors(path: Path) -> set[tuple[int, str]]:
    marks = set()
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        found = MARK.search(text)
        if found is not None:
            marks |= {(number, code.strip()) for code in found["codes"].split(",")}
    return marks


def test_the_usage_examples_pass_mypy_strict(mypy_errors: dict[str, list[tuple[int, str, str]]]) -> None:
    assert mypy_errors["usage.py"] == []


def test_the_wrong_usages_fail_mypy_strict_where_marked(
    mypy_errors: dict[str, list[tuple[int, str, str]]],
) -> None:
    wanted = expected_errors(HERE / "wrong.py")
    assert len(wanted) >= 20, "the wrong usages lost their markers"
    got = {(line, code) for line, code, _ in mypy_errors["wrong.py"]}
    assert got - wanted == set(), f"errors on lines not marked: {sorted(got - wanted)}"
    assert wanted - got == set(), f"wrong usages mypy accepted: {sorted(wanted - got)}"


def test_a_session_read_may_be_none(mypy_errors: dict[str, list[tuple[int, str, str]]]) -> None:
    source = (HERE / "wrong.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, start=1) if "login: Login = await s.get(Login)" in text)
    messages = [m for n, _, m in mypy_errors["wrong.py"] if n == line]
    assert messages == [
        'Incompatible types in assignment (expression has type "Login | None", variable has type "Login")'
    ]
