"""The docs' count of the kit's checks is the kit's own: counted here, from the class."""

from __future__ import annotations

import re
from pathlib import Path

from satchel_conformance import StorageContract

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("conformance.md", "writing-a-storage-plugin.md")


def _reported() -> int:
    # every standard check is one test, but the event-loop check runs once per loop
    return len(StorageContract._standard_checks) + 1


def test_every_check_count_in_the_docs_is_the_kit_s() -> None:
    counts = {
        page: re.findall(r"(\d+) checks\b", (DOCS / page).read_text().replace("\n", " ")) for page in PAGES
    }
    assert all(counts.values()), counts
    wrong = {page: found for page, found in counts.items() if set(found) != {str(_reported())}}
    assert not wrong, f"the kit reports {_reported()} checks; the docs say {wrong}"


def test_the_docs_list_every_check_once() -> None:
    page = (DOCS / "conformance.md").read_text()
    listed = re.findall(r"^\| `(test_\w+)", page, re.M)
    assert sorted(listed) == sorted(StorageContract._standard_checks), sorted(
        set(StorageContract._standard_checks) ^ set(listed)
    )
