"""The data classes written out for a cheaper ``import satchel`` (OwnedEntry,
StorageCapabilities, PluginInfo) behave as the dataclasses they replaced: built by position
or keyword, equal and hashed by value, shown by ``repr``, frozen where they were, and
copied and pickled whole. SessionInfo stays a dataclass: frameworks turn it into JSON."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import msgspec
import pytest
import satchel


def test_an_owned_entry_is_equal_and_hashed_by_value() -> None:
    entry = satchel.OwnedEntry("a", b"one", 60.0)
    assert entry == satchel.OwnedEntry(id="a", data=b"one", expires=60.0)
    assert hash(entry) == hash(satchel.OwnedEntry("a", b"one", 60.0))
    assert entry != satchel.OwnedEntry("a", b"one", None)
    fields: object = ("a", b"one", 60.0)
    assert entry != fields  # not a tuple
    assert {entry, satchel.OwnedEntry("a", b"one", 60.0)} == {entry}
    assert repr(entry) == "OwnedEntry(id='a', data=b'one', expires=60.0)"


@pytest.mark.parametrize(
    "record",
    [satchel.OwnedEntry("a", b"one", None), satchel.StorageCapabilities()],
    ids=lambda r: type(r).__name__,
)
def test_a_frozen_record_refuses_assignment_and_deletion(record: object) -> None:
    field = type(record).__match_args__[0]  # type: ignore[attr-defined]
    before = getattr(record, field)
    with pytest.raises(AttributeError, match="frozen"):
        setattr(record, field, "changed")
    with pytest.raises(AttributeError, match="frozen"):
        delattr(record, field)
    with pytest.raises(AttributeError):
        record.other = 1  # type: ignore[attr-defined]  # no __dict__ to put it in
    assert getattr(record, field) == before


def test_storage_capabilities_default_to_the_strictest_reading() -> None:
    strictest = satchel.StorageCapabilities()
    assert (strictest.persistent, strictest.max_value_size, strictest.event_loops) == (
        True,
        16 * 1024 * 1024,
        frozenset({"asyncio", "trio"}),
    )
    assert satchel.capabilities_of(object()) == strictest
    declared = satchel.StorageCapabilities(persistent=False, event_loops=frozenset({"asyncio"}))
    assert declared == satchel.StorageCapabilities(False, 16 * 1024 * 1024, frozenset({"asyncio"}))
    assert declared != strictest
    assert repr(declared) == (
        "StorageCapabilities(persistent=False, max_value_size=16777216, event_loops=frozenset({'asyncio'}))"
    )


def test_a_plugin_info_is_mutable_compared_by_value_and_unhashable() -> None:
    info = satchel.PluginInfo("satchel-toy", "1.0")
    other = satchel.PluginInfo("satchel-toy", "1.0")
    assert info == other
    info.schemes.append("toy")
    assert other.schemes == [], "the default lists are not shared"
    assert info != other
    info.error = "boom"
    assert info == satchel.PluginInfo("satchel-toy", "1.0", ["toy"], [], [], [], "boom")
    assert repr(info) == (
        "PluginInfo(distribution='satchel-toy', version='1.0', schemes=['toy'], serializers=[], "
        "transformers=[], commands=[], error='boom')"
    )
    with pytest.raises(TypeError):
        hash(info)


@pytest.mark.parametrize(
    "record",
    [
        satchel.OwnedEntry("a", b"\x00\xff", None),
        satchel.StorageCapabilities(persistent=False, max_value_size=4096),
        satchel.PluginInfo("satchel-toy", "1.0", schemes=["toy"], error="boom"),
    ],
    ids=lambda r: type(r).__name__,
)
def test_a_record_survives_copy_and_pickle(record: object) -> None:
    for twin in (copy.copy(record), copy.deepcopy(record), pickle.loads(pickle.dumps(record))):  # noqa: S301 - its own bytes
        assert twin == record
        assert type(twin) is type(record)


def test_records_take_part_in_match_by_position() -> None:
    match satchel.OwnedEntry("a", b"one", None):
        case satchel.OwnedEntry(id, data, None):
            assert (id, data) == ("a", b"one")
        case _:
            pytest.fail("OwnedEntry did not match by position")


def test_a_session_info_is_still_a_frozen_dataclass_that_encodes_to_json() -> None:
    info = satchel.SessionInfo("h", 1.0, 2.0, None, {"device": "phone"}, current=True)
    assert dataclasses.is_dataclass(info)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.current = False  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(info)) == {
        "handle": "h",
        "created": 1.0,
        "last_used": 2.0,
        "expires": None,
        "attributes": {"device": "phone"},
        "current": True,
    }
