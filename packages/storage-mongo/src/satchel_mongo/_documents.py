"""What ``MongoStorage`` sends to the server, as plain data: no driver, no I/O.

One document per session::

    {"_id": <key>, "data": <binary>, "digest": <sha256 of data>, "expires": <date>,
     "owner": <string>}

``_id`` is the session ID itself, or ``{"ns": namespace, "id": id}`` in a namespace: a
string never equals a sub-document, and two sub-documents are equal only when both
parts are, so no namespace can reach another's IDs whatever characters either holds.
``expires`` is absent for a session without expiry; a TTL index on it lets the server
delete expired documents, and every filter below also refuses them, because the TTL
monitor only runs about once a minute. ``digest`` lets compare-and-set match the
current value without sending it back to the server a second time (which would halve
the largest value a compare-and-set could carry).

Everything here is a pure function, so it is checked without a server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_plus

from satchel import ConfigError, OwnedEntry, check_owner, redact_url  # check_owner: one check, the core's

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_COLLECTION",
    "DEFAULT_CLIENT_OPTIONS",
    "MIN_DRIVER",
    "MAX_VALUE_SIZE",
    "TTL_INDEX_NAME",
    "OWNER_INDEX_NAME",
    "MongoURL",
    "parse_url",
    "client_options",
    "check_driver",
    "check_namespace",
    "check_owner",
    "document_id",
    "expiry",
    "digest",
    "session_document",
    "live_filter",
    "swap_filter",
    "claim_filter",
    "touch_update",
    "purge_filter",
    "owned_filter",
    "revoke_filter",
    "ttl_index",
    "owner_index",
    "INDEX_CONFLICT_CODES",
    "serves_as_ttl_index",
    "owner_index_name",
    "describe_index",
    "data_of",
    "owned_entry",
]

DEFAULT_DATABASE = "satchel"
DEFAULT_COLLECTION = "sessions"
# Bounded by default so an outage raises within seconds instead of PyMongo's 30 s
# server selection and unbounded socket reads. The URL or the options may set others.
DEFAULT_CLIENT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 5_000,
    "connectTimeoutMS": 5_000,
    "socketTimeoutMS": 10_000,
    "appname": "satchel",
}
MIN_DRIVER = (4, 13)
# A BSON document is at most 16 MiB; keep room for the ID, the digest and the field names.
MAX_VALUE_SIZE = 16 * 1024 * 1024 - 64 * 1024
TTL_INDEX_NAME = "satchel_expires"
OWNER_INDEX_NAME = "satchel_owner"

_OWN_QUERY_KEYS = frozenset({"namespace", "collection"})
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


@dataclass(frozen=True)
class MongoURL:
    """A ``mongodb://`` or ``mongodb+srv://`` URL split into what PyMongo and satchel read.

    ``client_url`` is the URL without satchel's own query options, for PyMongo;
    ``query_keys`` are the (lower-cased) options left in it.
    """

    client_url: str
    database: str | None
    collection: str | None
    namespace: str | None
    query_keys: frozenset[str]


def parse_url(url: str) -> MongoURL:
    """Split ``url`` the way PyMongo does, taking out ``namespace`` and ``collection``.

    The database comes from the path (``/mydb``), and the collection from the path too
    (``/mydb.sessions``, PyMongo's ``db.collection`` form) or from ``?collection=``.
    Every other query option is left as written, for PyMongo.

    Examples:
        >>> parse_url("mongodb://db1,db2/app?replicaSet=rs0&namespace=shop").namespace
        'shop'
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("mongodb", "mongodb+srv"):
        raise ConfigError(
            f"{redact_url(url)!r} is not a MongoDB URL; write mongodb://host[:port]/[database] "
            "or mongodb+srv://cluster.example.net/[database]"
        )
    hosts_and_path, _, query = rest.partition("?")
    hosts, _, path = hosts_and_path.partition("/")
    if "@" in path:
        # a password with an unescaped '/' would end up in the database name, and so in
        # the storage's repr and in every message that names its collection
        raise ConfigError(
            f"{redact_url(url)!r} has an '@' after its hosts; percent-encode any '/' or '@' "
            "in the user name, the password and the database name, e.g. with "
            "urllib.parse.quote(password, safe='')"
        )
    database, collection = _split_path(unquote_plus(path))

    separator = ";" if ";" in query and "&" not in query else "&"
    kept: list[str] = []
    own: dict[str, str] = {}
    for item in query.split(separator):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key.lower() in _OWN_QUERY_KEYS:
            own[key.lower()] = unquote_plus(value)
        else:
            kept.append(item)

    client_url = f"{scheme}://{hosts}/{path}"
    if kept:
        client_url += "?" + separator.join(kept)
    return MongoURL(
        client_url=client_url,
        database=database,
        collection=own.get("collection") or collection,
        namespace=own.get("namespace") or None,
        query_keys=frozenset(item.partition("=")[0].lower() for item in kept),
    )


def _split_path(path: str) -> tuple[str | None, str | None]:
    database, dot, collection = path.partition(".")
    return database or None, (collection or None) if dot else None


def client_options(query_keys: frozenset[str], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``AsyncMongoClient``, plus satchel's defaults that neither sets.

    PyMongo lets keyword options override the URL's, so a default is added only when
    the URL does not set that option either (option names are case-insensitive).
    """
    given = query_keys | {key.lower() for key in options}
    merged = {k: v for k, v in DEFAULT_CLIENT_OPTIONS.items() if k.lower() not in given}
    merged.update(options)
    return merged


def check_driver(version: tuple[int | str, ...], text: str) -> None:
    """Refuse a PyMongo older than 4.13, the first with a stable ``AsyncMongoClient``."""
    numbers = tuple(part for part in version[:2] if isinstance(part, int))
    if numbers < MIN_DRIVER:
        raise ConfigError(
            f"satchel-mongo needs pymongo >= {'.'.join(map(str, MIN_DRIVER))} (its "
            f"AsyncMongoClient); pymongo {text} is installed: pip install -U 'pymongo>=4.13'"
        )


def check_namespace(namespace: str | None) -> str | None:
    """``namespace``, with the empty string read as no namespace."""
    if namespace is not None and not isinstance(namespace, str):
        raise ConfigError(f"namespace must be a string, not {type(namespace).__name__}")
    return namespace or None


def document_id(namespace: str | None, id: str) -> str | dict[str, str]:
    """The ``_id`` of session ``id``: the ID itself, or ``{"ns", "id"}`` in a namespace."""
    return id if namespace is None else {"ns": namespace, "id": id}


def expiry(now: datetime, ttl: float | None) -> datetime | None:
    """When a session written at ``now`` with ``ttl`` seconds expires (``None``: never).

    A TTL beyond the calendar's end is clamped to it rather than overflowing.
    """
    if ttl is None:
        return None
    try:
        return now + timedelta(seconds=ttl)
    except OverflowError:
        return _LATEST if ttl > 0 else datetime(1970, 1, 1, tzinfo=timezone.utc)


def digest(data: bytes) -> bytes:
    """The SHA-256 of ``data``, stored beside it for compare-and-set."""
    return hashlib.sha256(data).digest()


def session_document(
    key: str | dict[str, str], data: bytes, expires: datetime | None, owner: str | None = None
) -> dict[str, Any]:
    """The whole document for one session (``bytes`` are stored as BSON binary).

    It carries ``owner`` only when one is given: a write replaces the whole document, so
    a plain write leaves the session unowned, dropping the link an earlier one made.
    """
    document: dict[str, Any] = {"_id": key, "data": bytes(data), "digest": digest(data)}
    if expires is not None:
        document["expires"] = expires
    if owner is not None:
        document["owner"] = owner
    return document


def _not_expired(now: datetime) -> dict[str, Any]:
    # ``None`` matches a missing field: a session written without a TTL.
    return {"$or": [{"expires": None}, {"expires": {"$gt": now}}]}


def live_filter(key: str | dict[str, str], now: datetime) -> dict[str, Any]:
    """Matches session ``key`` only while it has not expired (read, touch)."""
    return {"_id": key, **_not_expired(now)}


def swap_filter(key: str | dict[str, str], expected: bytes, now: datetime) -> dict[str, Any]:
    """Matches session ``key`` only if it is live and holds ``expected`` (compare-and-set).

    A session deleted in between matches nothing, and nothing is upserted: deletion wins.
    """
    return {"_id": key, "digest": digest(expected), **_not_expired(now)}


def claim_filter(key: str | dict[str, str], now: datetime) -> dict[str, Any]:
    """For compare-and-set with ``expected=None``, used with ``upsert=True``.

    It matches an expired document the TTL monitor has not removed yet (replaced), and
    nothing when the ID is absent (the upsert inserts it). A live document does not
    match, so the upsert collides with it on ``_id``: ``DuplicateKeyError`` means "lost".
    """
    return {"_id": key, "expires": {"$lte": now}}


def touch_update(expires: datetime | None) -> dict[str, Any]:
    """The update that moves a session's expiry and leaves its data alone."""
    if expires is None:
        return {"$unset": {"expires": ""}}
    return {"$set": {"expires": expires}}


def _scope(namespace: str | None) -> dict[str, Any]:
    # outside any namespace an _id is a string; inside one, a sub-document with its "ns"
    return {"_id": {"$type": "string"}} if namespace is None else {"_id.ns": namespace}


def purge_filter(now: datetime) -> dict[str, Any]:
    """Matches the expired sessions of every namespace (``satchel purge``: the whole store).

    The TTL index on ``expires`` serves it alone.
    """
    return {"expires": {"$lte": now}}


def owned_filter(namespace: str | None, owner: str, now: datetime) -> dict[str, Any]:
    """Matches the live sessions of ``namespace`` linked to ``owner`` (``list_owned``).

    The equality on ``owner`` is also what lets the server use the partial owner index.
    """
    return {"owner": owner, **_scope(namespace), **_not_expired(now)}


def revoke_filter(namespace: str | None, owner: str, keep: Iterable[str], now: datetime) -> dict[str, Any]:
    """`owned_filter` less the sessions in ``keep`` (``invalidate_owned``).

    Expired documents do not match, so the count ``delete_many`` reports is of live
    sessions only; the TTL monitor removes the expired ones.
    """
    query = owned_filter(namespace, owner, now)
    kept = [document_id(namespace, id) for id in keep]
    if kept:
        # one "_id" condition: in no namespace it already holds the $type test
        query["_id"] = {**query.get("_id", {}), "$nin": kept}
    return query


def ttl_index() -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Keys and options of the TTL index: expire each document at its ``expires`` date."""
    return [("expires", 1)], {"name": TTL_INDEX_NAME, "expireAfterSeconds": 0}


def owner_index() -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Keys and options of the owner index: an owner's sessions within a namespace.

    Partial, so an unowned session costs nothing in it. Its keys never change while a
    session keeps its owner (a touch moves ``expires``, not these), which is why the
    owner's lookups and deletes are pinned to it: a scan of an index whose keys a
    concurrent touch moves could pass over a session it should have deleted.
    """
    return [("owner", 1), ("_id.ns", 1)], {
        "name": OWNER_INDEX_NAME,
        "partialFilterExpression": {"owner": {"$exists": True}},
    }


# IndexOptionsConflict (the same keys under another name, or with other options under
# another name) and IndexKeySpecsConflict (the same name with other keys or options)
INDEX_CONFLICT_CODES = frozenset({85, 86})


def serves_as_ttl_index(indexes: Mapping[str, Any]) -> bool:
    """Whether one of ``indexes`` (as ``index_information`` gives them) expires every
    document at its ``expires`` date, as `ttl_index` does, whatever its name."""
    keys, options = ttl_index()
    for spec in indexes.values():
        if (
            spec.get("key") == keys
            and spec.get("expireAfterSeconds") == options["expireAfterSeconds"]
            and "partialFilterExpression" not in spec  # would leave some documents undeleted
        ):
            return True
    return False


def owner_index_name(indexes: Mapping[str, Any]) -> str | None:
    """The name of one of ``indexes`` (as ``index_information`` gives them) that serves
    as `owner_index`, whatever its name; ``None`` when none does.

    It must have the same keys and hold every owned session (no partial filter, or
    exactly satchel's); a unique one would refuse an owner's second session.
    """
    keys, options = owner_index()
    found = []
    for name, spec in indexes.items():
        partial = spec.get("partialFilterExpression")
        if (
            spec.get("key") == keys
            and not spec.get("unique")
            and (partial is None or _plain(partial) == options["partialFilterExpression"])
        ):
            found.append(name)
    # satchel's own first, so a run that created it keeps using it
    return min(found, key=lambda name: (name != OWNER_INDEX_NAME, name), default=None)


def describe_index(spec: Mapping[str, Any]) -> str:
    """An index as ``index_information`` gives it, for a message: its keys and the
    options that decide whether it serves as the owner index."""
    keys = ", ".join(f"{field}: {direction}" for field, direction in spec.get("key", []))
    options = "".join(
        f", {option}={_plain(spec[option])}"
        for option in ("unique", "partialFilterExpression")
        if option in spec
    )
    return f"{{{keys}}}{options}"


def _plain(value: Any) -> Any:
    # index_information gives nested options as SON; compare them as plain dicts
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def data_of(document: Any) -> bytes | None:
    """The session bytes in a document the server returned, ``None`` if it holds none."""
    if document is None:
        return None
    data = document.get("data")
    return bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else None


def owned_entry(document: Any) -> OwnedEntry | None:
    """The `OwnedEntry` for a document ``list_owned`` found; ``None`` if it is not a session.

    BSON dates come back naive (UTC) unless the client is ``tz_aware``; either way
    ``expires`` becomes Unix seconds.
    """
    data = data_of(document)
    key = document.get("_id") if document is not None else None
    id = key.get("id") if isinstance(key, Mapping) else key
    if data is None or not isinstance(id, str):
        return None
    expires = document.get("expires")
    if not isinstance(expires, datetime):
        return OwnedEntry(id, data, None)
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    return OwnedEntry(id, data, expires.timestamp())
