"""Storage URLs in output: `redact_url`, what satchel and its plugins print instead of a URL."""

from __future__ import annotations

import re

__all__ = ["redact_url"]

MASK = "***"

# A query option whose name holds one of these (case-insensitive) has its value masked.
_SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "key", "credential", "sas", "sig")
# MongoDB's KEY:value,KEY:value option, whose values can hold e.g. AWS_SESSION_TOKEN.
_PROPERTIES = "authmechanismproperties"
# Patterns as text, compiled (and cached by `re`) on the first URL redacted: compiling
# _HOST takes about 1 ms, which `import satchel` would pay for a rare path.
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-_]*"
# One host of an authority: a name (or a percent-encoded socket path) or an [IPv6] literal,
# then an optional numeric port.
_HOST = r"(\[[^\]]*\]|[A-Za-z0-9._~%!$&'()*+;=-]*)(:[0-9]*)?"


def redact_url(url: str) -> str:
    """``url`` safe to print or log: the password and secret-looking query values masked.

    The password of the userinfo becomes ``***``; the user name is kept, as it names an
    account and helps find a wrong one (no built-in storage reads a secret from it: put a
    token in the password's place, ``redis://:TOKEN@host``). A query option is masked
    when its name (case-insensitive, percent-decoded) contains ``password``, ``passwd``,
    ``pwd``, ``secret``, ``token``, ``key``, ``credential``, ``sas`` or ``sig``, or is
    ``auth`` or ends with it (``authSource`` and ``authMechanism`` are kept, they hold
    no secret), and so are the pieces without ``=`` that follow it (an unescaped ``&``
    or ``;`` in its value); in MongoDB's ``authMechanismProperties``, the first such
    property and the rest after it (``SERVICE_NAME:mongodb,AWS_SESSION_TOKEN:***``).
    Everything else is kept as written: scheme, hosts, ports, path, the other options.

    A URL whose user name or password holds an unescaped ``/``, ``?`` or ``#`` (so that
    an ``@`` turns up after the hosts) is masked from ``://`` to its last ``@``; text
    without ``://`` loses everything before its last ``@``. Percent-encoded passwords
    are masked like any other. It never raises: what it cannot read at all comes back
    as ``***``. Plugins use it in their ``repr`` and messages, e.g.
    ``ConfigError(f"cannot open {redact_url(url)!r}: ...")``.

    Examples:
        >>> redact_url("redis://default:hunter2@cache.internal:6379/0?namespace=shop")
        'redis://default:***@cache.internal:6379/0?namespace=shop'
        >>> redact_url("mongodb://app:s3cret@db1,db2/app?replicaSet=rs0&authSource=admin")
        'mongodb://app:***@db1,db2/app?replicaSet=rs0&authSource=admin'
        >>> redact_url("unix:///run/redis.sock?db=0&password=hunter2")
        'unix:///run/redis.sock?db=0&password=***'
        >>> redact_url("sqlite:///sessions.db")
        'sqlite:///sessions.db'
    """
    try:
        return _redact(str(url))
    except Exception:  # never a reason to fail the message being built
        return _fallback(url)


def _redact(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep or not re.fullmatch(_SCHEME, scheme):
        # not scheme://...: whatever comes before an '@' may be a user name and password
        _, at, tail = text.rpartition("@")
        return f"{MASK}@{_redact_tail(tail)}" if at else _redact_tail(text)
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, after = rest[:end], rest[end:]
    if authority and _misplaced_at(authority, after):
        # the userinfo runs past the authority: everything up to the last '@' may be in it
        userinfo, _, tail = rest.rpartition("@")
        return f"{scheme}://{_redact_userinfo(userinfo)}@{_redact_tail(tail)}"
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        return f"{scheme}://{_redact_userinfo(userinfo)}@{hosts}{_redact_tail(after)}"
    return f"{scheme}://{authority}{_redact_tail(after)}"


def _misplaced_at(authority: str, after: str) -> bool:
    """Whether an '@' after the authority shows that a user name or password held an
    unescaped '/', '?' or '#': one in the path or the fragment, one in a query option's
    name, or any at all when what stands as the authority is not a list of hosts."""
    path, _, query = after.partition("?")
    if "@" in path or "@" in query.partition("#")[2]:
        return True
    if "@" not in query:
        return False
    if "@" not in authority and not all(re.fullmatch(_HOST, host) for host in authority.split(",")):
        return True
    return any("@" in item.partition("=")[0] for item in re.split("[&;]", query))


def _redact_userinfo(userinfo: str) -> str:
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{MASK}" if colon else user


def _redact_tail(after: str) -> str:
    """The path and query: the path as written, secret-looking query values masked."""
    path, question, query = after.partition("?")
    return f"{path}?{_redact_query(query)}" if question else path


def _redact_query(query: str) -> str:
    from urllib.parse import unquote_plus  # here: `import satchel` stays light

    parts = re.split("([&;])", query)
    shown: list[str] = []
    masking = False  # whether the option before was masked: a piece without '=' continues it
    for i in range(0, len(parts), 2):
        separator = parts[i - 1] if i else ""
        name, equals, value = parts[i].partition("=")
        if not equals:
            if not (masking and parts[i]):
                shown += [separator, parts[i]]
            continue
        decoded = unquote_plus(name)
        masking = _is_secret(decoded)
        if masking:
            shown += [separator, f"{name}={MASK}"]
        elif decoded.lower() == _PROPERTIES:
            shown += [separator, f"{name}={_redact_properties(unquote_plus(value))}"]
        else:
            shown += [separator, parts[i]]
    return "".join(shown)


def _redact_properties(value: str) -> str:
    """``KEY:value,KEY:value`` up to the first secret one, whose value and everything after
    it is masked (a token holding an unescaped ',' or ':' would be read as more pairs)."""
    shown = []
    for pair in value.split(","):
        key, colon, _ = pair.partition(":")
        if colon and _is_secret(key):
            shown.append(f"{key}:{MASK}")
            break
        shown.append(pair)
    return ",".join(shown)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered.endswith("auth") or any(word in lowered for word in _SECRET_WORDS)


def _fallback(url: object) -> str:
    """What is left when `_redact` failed: the scheme and what follows the last '@',
    without its query; ``***`` when even that fails."""
    try:
        scheme, sep, rest = str(url).partition("://")
        if not (sep and re.fullmatch(_SCHEME, scheme)):
            return MASK
        path, question, _ = rest.rpartition("@")[2].partition("?")
        return f"{scheme}://{MASK}@{path}{'?' + MASK if question else ''}"
    except Exception:
        return MASK
