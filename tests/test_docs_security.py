"""The example of docs/security.md that says how to develop on plain http runs as pasted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "security.md"


@pytest.mark.parametrize(("env", "secure"), [("development", False), ("production", None)])
def test_the_plain_http_development_example_runs_as_pasted(
    env: str, secure: bool | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [block] = [b for b in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S) if "APP_ENV" in b]
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.chdir(tmp_path)  # its relative sqlite path is created lazily, here if at all
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["login"].attributes.secure is secure
