"""Regressions found in review, no server run (the storage is opened, never used)."""

from __future__ import annotations

import pytest
import satchel
from pymongo import ReadPreference
from satchel_mongo import MongoStorage


@pytest.mark.anyio
@pytest.mark.parametrize("query", ["w=0", "w=0&journal=false"])
async def test_no_server_an_unacknowledged_write_concern_is_refused(query: str) -> None:
    """Defect: with ?w=0 the driver reports no write errors and no results, so write,
    invalidate and touch succeed silently whatever happens on the server, write_if
    (expected=None) always returns True (the DuplicateKeyError that means "lost" is never
    reported: CAS stops being atomic) and write_if(expected=b"..") / purge raise on
    UpdateResult.matched_count / deleted_count. DESIGN: "never a silent success".
    The storage should refuse it at open (ConfigError) or force w=1 on its collection."""
    with pytest.raises(satchel.ConfigError, match="unacknowledged"):
        MongoStorage.from_url(f"mongodb://localhost:1/app?{query}", create_index=False)


@pytest.mark.anyio
async def test_no_server_reads_go_to_the_primary_whatever_the_url_says() -> None:
    """Defect (design-level): a URL with readPreference=secondaryPreferred (common for the
    app's other collections) makes session reads go to secondaries, so a read right after
    invalidate (logout) or regenerate can still return the old session, and a read after
    write can miss it. Session reads should be pinned to the primary on this collection."""
    storage = MongoStorage.from_url(
        "mongodb://localhost:1/app?readPreference=secondaryPreferred", create_index=False
    )
    try:
        assert storage._collection.read_preference == ReadPreference.PRIMARY, (
            f"session reads use {storage._collection.read_preference!r}"
        )
    finally:
        await storage.aclose()
