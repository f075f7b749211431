"""Owners: every session of one user, listed and ended together ("sign out everywhere").

A server-side mapping made with ``owner=`` links each session to the string its value
maps to, in a storage that keeps an owner index (`satchel.OwnerIndex`). A listed session
is named by its *handle*: the key it is stored under, a digest of its ID. A handle can
be shown in a page or a log: it ends a session (with its owner's name) but never opens one.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._codec import unpack_record
from ._server import end_key
from ._storage_calls import storage_errors

if TYPE_CHECKING:
    from ._mapping import Mapping

__all__ = [
    "SessionInfo",
    "MAX_OWNER",
    "MAX_ATTRIBUTES",
    "check_attributes",
    "check_owner",
    "list_owned",
    "revoke_owner",
    "revoke_session",
]

MAX_OWNER = 256
"""The longest owner string, in characters."""
MAX_ATTRIBUTES = 16
"""How many attributes a session may record; names up to 64 characters, values up to 512."""


@dataclass(frozen=True)
class SessionInfo:
    """One live session of an owner, as an account page shows it.

    Attributes:
        handle: names the session for `Sessions.revoke_session`; not a credential.
        created: when the session began (sign-in), Unix seconds.
        last_used: when a request last wrote or extended it, Unix seconds (to within
            half the idle timeout, the rolling granularity).
        expires: when it ends unless used again, Unix seconds; ``None``: never.
        attributes: what the app recorded with ``set(..., attributes=...)``.
        current: whether it is the session of the request that asked.

    Added in version 0.2.
    """

    handle: str
    created: float
    last_used: float
    expires: float | None
    attributes: MappingABC[str, str] = field(default_factory=dict)
    current: bool = False


def check_owner(owner: object) -> str:
    """``owner`` if an owner index can hold it: a string of 1 to 256 characters that is valid
    Unicode; else ``ValueError``.

    The message gives the owner's type or length, never the owner itself (often an e-mail
    address or a user name, which has no place in an error log). Storages that keep an
    owner index check what they are given with it too.

    Added in version 0.2.
    """
    if not isinstance(owner, str):
        # not only a type check: None would match, or store, every unowned session
        raise ValueError(f"an owner must be a non-empty string, not {type(owner).__name__}")
    if not 0 < len(owner) <= MAX_OWNER:
        raise ValueError(f"an owner must be 1 to {MAX_OWNER} characters long, not {len(owner)}")
    try:
        owner.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "an owner must be valid Unicode text: it holds a lone surrogate, which no storage "
            "can keep as text"
        ) from None  # the encoding error holds the owner itself
    return owner


def check_attributes(attributes: object, where: str) -> dict[str, str]:
    if not isinstance(attributes, MappingABC):
        raise TypeError(f"{where}: attributes must be a dict of str to str, got {type(attributes).__name__}")
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValueError(f"{where}: {len(attributes)} attributes; at most {MAX_ATTRIBUTES} are kept")
    for name, value in attributes.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"{where}: attributes must map str to str, got {name!r}: {value!r}")
        if not name or len(name) > 64 or len(value) > 512:
            raise ValueError(
                f"{where}: attribute {name[:64]!r} is too long or empty; names take 1-64 "
                "characters, values up to 512 (cut a user-agent string before recording it)"
            )
    return dict(attributes)


async def list_owned(
    m: Mapping[Any], owner: str, now: float, current: str | None = None
) -> list[SessionInfo]:
    owners = m._require_owners()
    with storage_errors(m, "list_owned"):
        entries = await owners.list_owned(check_owner(owner))
    found = []
    for entry in entries:
        record = unpack_record(entry.data)
        if record is None or record.name != m.name or record.owner != owner:
            continue  # a tombstone, another mapping's session, or a link left behind
        used = record.used or record.created
        if m.rolling and m.max_age is not None and entry.expires is not None:
            used = max(used, entry.expires - m.max_age)  # a touch moved the expiry, not the record
        found.append(
            SessionInfo(
                handle=entry.id,
                created=record.created,
                last_used=min(used, now),
                expires=entry.expires,
                attributes=record.attributes,
                current=entry.id == current,
            )
        )
    found.sort(key=lambda info: info.last_used, reverse=True)
    return found


async def revoke_owner(m: Mapping[Any], owner: str, keep: str | None = None) -> int:
    owners = m._require_owners()
    with storage_errors(m, "invalidate_owned"):
        return await owners.invalidate_owned(check_owner(owner), keep=() if keep is None else (keep,))


async def revoke_session(m: Mapping[Any], owner: str, handle: str) -> bool:
    m._require_owners()
    check_owner(owner)
    if not isinstance(handle, str) or not m._is_handle(handle):
        return False
    with storage_errors(m, "read"):
        raw = await m.store.read(handle)
    record = unpack_record(raw) if raw is not None else None
    if record is None or record.name != m.name or record.owner != owner:
        return False  # not a session of this owner: a handle never ends someone else's
    return await end_key(m, handle, raw)
