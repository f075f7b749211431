"""The documents, filters and updates MongoStorage sends, checked without a server.

Not a server run: these tests look at what would be sent (plain dicts), and say so in
their names. What the server does with it is checked in ``test_mongo_server.py``, which
runs whenever a MongoDB is reachable.
"""

from __future__ import annotations

import hashlib
import traceback
from datetime import datetime, timedelta, timezone

import pytest
from bson import SON
from satchel import ConfigError, OwnedEntry
from satchel_mongo import _documents as doc

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


# --- URLs ---------------------------------------------------------------------------


def test_no_server_url_database_and_collection_from_the_path() -> None:
    parsed = doc.parse_url("mongodb://db1:27017,db2:27017/app.web_sessions?replicaSet=rs0")
    assert parsed.database == "app"
    assert parsed.collection == "web_sessions"
    assert parsed.client_url == "mongodb://db1:27017,db2:27017/app.web_sessions?replicaSet=rs0"


def test_no_server_url_without_a_path_leaves_the_defaults_to_the_storage() -> None:
    parsed = doc.parse_url("mongodb://localhost")
    assert (parsed.database, parsed.collection, parsed.namespace) == (None, None, None)
    assert parsed.client_url == "mongodb://localhost/"


def test_no_server_url_own_options_are_taken_out_of_what_pymongo_sees() -> None:
    parsed = doc.parse_url(
        "mongodb+srv://u:p%40ss@cluster0.example.net/app"
        "?retryWrites=true&namespace=shop&collection=carts&readPreferenceTags=dc:ny,rack:1"
    )
    assert parsed.namespace == "shop"
    assert parsed.collection == "carts"
    assert parsed.database == "app"
    # everything else is passed on exactly as written, scheme and credentials included
    assert parsed.client_url == (
        "mongodb+srv://u:p%40ss@cluster0.example.net/app?retryWrites=true&readPreferenceTags=dc:ny,rack:1"
    )
    assert parsed.query_keys == {"retrywrites", "readpreferencetags"}


def test_no_server_url_query_collection_wins_over_the_path_collection() -> None:
    assert doc.parse_url("mongodb://h/app.a?collection=b").collection == "b"


def test_no_server_url_with_only_own_options_has_no_query_left() -> None:
    parsed = doc.parse_url("mongodb://h/?namespace=a%20b")
    assert parsed.client_url == "mongodb://h/"
    assert parsed.namespace == "a b"


def test_no_server_url_empty_namespace_means_none() -> None:
    assert doc.parse_url("mongodb://h/?namespace=").namespace is None


def test_no_server_url_semicolon_separated_options_are_kept() -> None:
    parsed = doc.parse_url("mongodb://h/db?w=majority;namespace=x;appname=shop")
    assert parsed.client_url == "mongodb://h/db?w=majority;appname=shop"
    assert parsed.namespace == "x"


@pytest.mark.parametrize("url", ["redis://localhost/0", "mongodb:/localhost", "localhost:27017", "mongo://h"])
def test_no_server_url_other_schemes_are_refused_without_leaking_a_password(url: str) -> None:
    with pytest.raises(ConfigError, match="not a MongoDB URL"):
        doc.parse_url(url)
    with pytest.raises(ConfigError) as info:
        doc.parse_url("postgres://admin:hunter2@db/x")
    assert "hunter2" not in str(info.value)


# --- client options -----------------------------------------------------------------


def test_no_server_client_options_bound_every_timeout_by_default() -> None:
    options = doc.client_options(frozenset(), {})
    assert options["serverSelectionTimeoutMS"] == 5_000
    assert options["connectTimeoutMS"] == 5_000
    assert options["socketTimeoutMS"] == 10_000


def test_no_server_client_options_from_the_url_are_not_overridden_by_defaults() -> None:
    # PyMongo lets keyword options override the URL: a default must not be passed at all
    options = doc.client_options(frozenset({"sockettimeoutms", "serverselectiontimeoutms"}), {})
    assert "socketTimeoutMS" not in options
    assert "serverSelectionTimeoutMS" not in options
    assert options["connectTimeoutMS"] == 5_000


def test_no_server_client_options_given_by_the_caller_win_whatever_their_case() -> None:
    options = doc.client_options(frozenset(), {"sockettimeoutms": 50, "tls": True})
    assert options["sockettimeoutms"] == 50
    assert "socketTimeoutMS" not in options
    assert options["tls"] is True


# --- driver version -----------------------------------------------------------------


@pytest.mark.parametrize("version", [(4, 13, 0), (4, 20, 1), (5, 0, 0, ".dev0")])
def test_no_server_driver_version_with_async_client_is_accepted(
    version: tuple[int | str, ...],
) -> None:
    doc.check_driver(version, ".".join(map(str, version)))


@pytest.mark.parametrize("version", [(4, 12, 1), (4, 9), (3, 13, 0)])
def test_no_server_driver_version_before_4_13_is_refused_with_the_fix(
    version: tuple[int | str, ...],
) -> None:
    with pytest.raises(ConfigError, match=r"pymongo>=4\.13"):
        doc.check_driver(version, ".".join(map(str, version)))


# --- document IDs and namespaces ----------------------------------------------------


def test_no_server_document_id_is_the_session_id_without_a_namespace() -> None:
    assert doc.document_id(None, "abc") == "abc"


def test_no_server_document_ids_of_two_namespaces_never_coincide() -> None:
    pairs = [(None, "a:b"), ("a", "b"), ("a:b", ""), ("a", "b:"), ("", "x")]
    ids = [doc.document_id(doc.check_namespace(ns), id) for ns, id in pairs]
    # a prefix scheme ("ns:id") would map the first three to one document
    assert len({repr(i) for i in ids}) == len(ids)


def test_no_server_namespace_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="namespace"):
        doc.check_namespace(3)  # type: ignore[arg-type]


# --- expiry ---------------------------------------------------------------------------


def test_no_server_expiry_is_now_plus_ttl_and_none_means_never() -> None:
    assert doc.expiry(NOW, 90) == NOW + timedelta(seconds=90)
    assert doc.expiry(NOW, 0.25) == NOW + timedelta(milliseconds=250)
    assert doc.expiry(NOW, None) is None


def test_no_server_expiry_beyond_the_calendar_is_clamped_not_an_error() -> None:
    assert doc.expiry(NOW, 1e15) == datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert doc.expiry(NOW, -1e15) == datetime(1970, 1, 1, tzinfo=timezone.utc)


def test_no_server_expiry_negative_ttl_is_already_past() -> None:
    expires = doc.expiry(NOW, -1)
    assert expires is not None
    assert expires < NOW


# --- the session document -------------------------------------------------------------


def test_no_server_session_document_holds_bytes_digest_and_expiry_date() -> None:
    document = doc.session_document("id1", b"\x00\xff data", NOW)
    assert document == {
        "_id": "id1",
        "data": b"\x00\xff data",
        "digest": hashlib.sha256(b"\x00\xff data").digest(),
        "expires": NOW,
    }
    assert type(document["data"]) is bytes  # PyMongo stores bytes as BSON binary


def test_no_server_session_document_without_ttl_has_no_expiry_field() -> None:
    # the TTL index ignores documents without the field: such a session never expires
    assert "expires" not in doc.session_document("id1", b"x", None)


# --- filters and updates --------------------------------------------------------------


def test_no_server_read_filter_refuses_expired_and_accepts_never_expiring() -> None:
    assert doc.live_filter("id1", NOW) == {
        "_id": "id1",
        "$or": [{"expires": None}, {"expires": {"$gt": NOW}}],
    }


def test_no_server_write_if_filter_matches_digest_of_expected_not_the_value() -> None:
    big = b"v" * 1_000_000
    query = doc.swap_filter({"ns": "n", "id": "id1"}, big, NOW)
    assert query["_id"] == {"ns": "n", "id": "id1"}
    assert query["digest"] == hashlib.sha256(big).digest()
    assert query["$or"] == [{"expires": None}, {"expires": {"$gt": NOW}}]
    # the value itself is not sent twice: the filter stays small whatever the session size
    assert len(repr(query)) < 500


def test_no_server_write_if_absent_filter_only_matches_an_expired_document() -> None:
    # with upsert=True: no document -> insert; expired one -> replaced; live one -> no match,
    # and the insert collides on _id (DuplicateKeyError, reported as "lost")
    assert doc.claim_filter("id1", NOW) == {"_id": "id1", "expires": {"$lte": NOW}}


def test_no_server_touch_update_sets_only_the_expiry() -> None:
    assert doc.touch_update(NOW) == {"$set": {"expires": NOW}}
    assert doc.touch_update(None) == {"$unset": {"expires": ""}}


def test_no_server_purge_filter_covers_every_namespace() -> None:
    # a purge covers the whole store, as satchel.Purgeable says: expired is expired, whoever's
    assert doc.purge_filter(NOW) == {"expires": {"$lte": NOW}}


def test_no_server_ttl_index_expires_each_document_at_its_own_date() -> None:
    keys, options = doc.ttl_index()
    assert keys == [("expires", 1)]
    assert options == {"name": "satchel_expires", "expireAfterSeconds": 0}


def test_no_server_data_of_reads_bytes_and_refuses_foreign_documents() -> None:
    assert doc.data_of({"data": b"abc"}) == b"abc"
    assert doc.data_of(None) is None
    assert doc.data_of({"data": "not bytes"}) is None
    assert doc.data_of({}) is None


def test_no_server_a_hand_made_ttl_index_on_expires_serves_whatever_its_name() -> None:
    keys, _ = doc.ttl_index()
    by_hand = {"_id_": {"key": [("_id", 1)]}, "expires_1": {"key": keys, "expireAfterSeconds": 0}}
    assert doc.serves_as_ttl_index(by_hand)
    later = {"expires_1": {"key": keys, "expireAfterSeconds": 3600}}
    partial = {"x": {"key": keys, "expireAfterSeconds": 0, "partialFilterExpression": {"a": 1}}}
    plain = {"expires_1": {"key": keys}}
    assert not any(doc.serves_as_ttl_index(indexes) for indexes in (later, partial, plain, {}))


# --- the owner index ------------------------------------------------------------------

ODD_OWNERS = ["$", ".", "$where", "a.b", "user@example.com", "Ådå 用户 😀", "\x00", " ", "o" * 256]


@pytest.mark.parametrize("owner", ODD_OWNERS)
def test_no_server_any_string_of_1_to_256_characters_is_an_owner(owner: str) -> None:
    assert doc.check_owner(owner) == owner


@pytest.mark.parametrize(
    ("owner", "says"),
    [
        ("", "1 to 256 characters long, not 0"),
        ("o" * 257, "not 257"),
        (None, "not NoneType"),  # would match every unowned session
        (7, "not int"),
        ("secret-owner\udc80", "lone surrogate"),  # BSON strings are UTF-8
    ],
)
def test_no_server_other_owners_are_refused_without_quoting_them(owner: object, says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        doc.check_owner(owner)
    # nor in what a log prints, chained errors included
    assert "secret-owner" not in "".join(traceback.format_exception(info.value))


def test_no_server_owned_session_document_carries_its_owner() -> None:
    document = doc.session_document({"ns": "n", "id": "id1"}, b"x", NOW, "ada")
    assert document["owner"] == "ada"
    # a plain write replaces the whole document with one that has no owner: the link goes
    assert "owner" not in doc.session_document({"ns": "n", "id": "id1"}, b"x", NOW)


def test_no_server_owned_filter_is_the_owner_in_this_namespace_and_live() -> None:
    live = [{"expires": None}, {"expires": {"$gt": NOW}}]
    assert doc.owned_filter("shop", "ada", NOW) == {"owner": "ada", "_id.ns": "shop", "$or": live}
    # without a namespace: only plain-string IDs, never another namespace's sessions
    assert doc.owned_filter(None, "ada", NOW) == {"owner": "ada", "_id": {"$type": "string"}, "$or": live}


def test_no_server_revoke_filter_keeps_the_given_ids_in_one_id_condition() -> None:
    in_shop = doc.revoke_filter("shop", "ada", ["k1", "k2"], NOW)
    assert in_shop == {
        **doc.owned_filter("shop", "ada", NOW),
        "_id": {"$nin": [{"ns": "shop", "id": "k1"}, {"ns": "shop", "id": "k2"}]},
    }
    # the $type test that keeps out other namespaces is not overwritten by the $nin
    assert doc.revoke_filter(None, "ada", {"k1"}, NOW)["_id"] == {"$type": "string", "$nin": ["k1"]}
    assert doc.revoke_filter("shop", "ada", (), NOW) == doc.owned_filter("shop", "ada", NOW)


def test_no_server_owner_index_is_partial_on_owner_and_keyed_by_namespace() -> None:
    keys, options = doc.owner_index()
    assert keys == [("owner", 1), ("_id.ns", 1)]
    assert options == {"name": "satchel_owner", "partialFilterExpression": {"owner": {"$exists": True}}}


def test_no_server_an_owner_index_made_by_hand_serves_whatever_its_name() -> None:
    keys, options = doc.owner_index()
    partial = options["partialFilterExpression"]
    assert doc.owner_index_name({"_id_": {"key": [("_id", 1)]}}) is None
    assert doc.owner_index_name({"owner_1__id.ns_1": {"key": keys}}) == "owner_1__id.ns_1"
    # index_information gives nested options as SON, and a shell writes numbers as doubles
    son = {"by_hand": {"key": [("owner", 1.0), ("_id.ns", 1.0)], "partialFilterExpression": SON(partial)}}
    assert doc.owner_index_name(son) == "by_hand"
    # satchel's own is preferred when there are two
    both = {"a": {"key": keys}, "satchel_owner": {"key": keys, "partialFilterExpression": partial}}
    assert doc.owner_index_name(both) == "satchel_owner"


@pytest.mark.parametrize(
    "spec",
    [
        {"key": [("owner", 1)]},  # other keys
        {"key": [("owner", 1), ("_id.ns", 1)], "unique": True},  # an owner's second session would be refused
        {"key": [("owner", 1), ("_id.ns", 1)], "partialFilterExpression": {"expires": {"$exists": True}}},
    ],
    ids=["other-keys", "unique", "other-partial-filter"],
)
def test_no_server_an_owner_index_that_would_miss_or_refuse_sessions_does_not_serve(
    spec: dict[str, object],
) -> None:
    assert doc.owner_index_name({"x": spec}) is None


def test_no_server_describe_index_shows_keys_and_the_options_that_decide() -> None:
    spec = {"key": [("owner", 1), ("_id.ns", 1)], "unique": True, "partialFilterExpression": SON(a=SON(b=1))}
    assert (
        doc.describe_index(spec)
        == "{owner: 1, _id.ns: 1}, unique=True, partialFilterExpression={'a': {'b': 1}}"
    )


def test_no_server_owned_entry_gives_the_id_data_and_expiry_in_unix_seconds() -> None:
    naive = NOW.replace(tzinfo=None)  # what a client that is not tz_aware returns
    entry = doc.owned_entry({"_id": {"ns": "shop", "id": "id1"}, "data": b"x", "expires": naive})
    assert entry == OwnedEntry("id1", b"x", NOW.timestamp())
    aware = doc.owned_entry({"_id": "id2", "data": b"y", "expires": NOW})
    assert aware == OwnedEntry("id2", b"y", NOW.timestamp())
    assert doc.owned_entry({"_id": "id3", "data": b"z"}) == OwnedEntry("id3", b"z", None)


def test_no_server_owned_entry_refuses_what_is_not_a_session() -> None:
    assert doc.owned_entry({"_id": "id1", "data": "text"}) is None
    assert doc.owned_entry({"_id": 5, "data": b"x"}) is None
    assert doc.owned_entry({"_id": {"ns": "shop"}, "data": b"x"}) is None
    assert doc.owned_entry(None) is None
