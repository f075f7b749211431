"""The framework integrations under ``mypy --strict``: the usage passes, the wrong usages
fail where marked (the same rules as ``test_typing.py``)."""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

HERE = Path(__file__).parent
ROOT = HERE.parents[3]
ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*?(?:  \[(?P<code>[\w-]+)\])?$")
MARK = re.compile(r"#\s*E:\s*(?P<codes>[\w\-, ]+)$")


def test_usage_passes_and_wrong_usages_fail_where_marked() -> None:
    files = [HERE / "integrations_usage.py", HERE / "integrations_wrong.py"]
    stdout, stderr, _ = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--strict", "--no-error-summary", *map(str, files)]
    )
    assert not stderr, stderr
    got: dict[str, set[tuple[int, str]]] = {"integrations_usage.py": set(), "integrations_wrong.py": set()}
    for line in stdout.splitlines():
        found = ERROR.match(line)
        if found is not None:
            got[Path(found["file"]).name].add((int(found["line"]), found["code"] or ""))
    assert got["integrations_usage.py"] == set(), stdout
    wanted = set()
    for number, text in enumerate(files[1].read_text().splitlines(), start=1):
        mark = MARK.search(text)
        if mark is not None:
            wanted |= {(number, code.strip()) for code in mark["codes"].split(",")}
    assert len(wanted) >= 8, "the wrong usages lost their markers"
    assert got["integrations_wrong.py"] == wanted, stdout
