"""Random exchanges answered alike by the common configuration's fused path
(satchel/_lane.py) and by the generic steps alone.

Each seed draws apps (cookie or header, max_age, max_lifetime, rolling, json, a fallback
key, a second mapping, private) and a few requests to each: what the handler does before
and after its response starts, the status, how many times it starts, http or websocket, and
a value under the old key, a forged one or a repeated one sent along. The same draws run
through an app built with the fused path and one built without it
(``satchel._mapping.LANES = False``), then through `Sessions.detached`: the response starts,
the exceptions, what the "satchel" logger says and what each request ends up knowing of
each session must be the same.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import satchel
import satchel._mapping
from core_helpers import KEY, OTHER_KEY, Clock
from satchel._lane import Lane
from satchel._sessions import Header, RequestSessions
from satchel._state import State

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000.0
SEEDS = range(6)
APPS = 60  # apps drawn per seed, each sent 1 to 7 requests


class Cart(msgspec.Struct):
    items: list[str] = []
    total: int = 0


class Other(msgspec.Struct):
    n: int = 0


# -- what a handler does ------------------------------------------------------------------

Log = list[Any]
Op = Callable[[RequestSessions, Log], Awaitable[None]]


async def get(s: RequestSessions, log: Log) -> None:
    log.append(("get", repr(await s.get(Cart))))


async def set_(s: RequestSessions, log: Log) -> None:
    s.set(Cart(items=["a", "b"], total=3))


async def set_with_key(s: RequestSessions, log: Log) -> None:
    s.set(Cart(items=["n"]), key=Cart)


async def set_what_does_not_read_back(s: RequestSessions, log: Log) -> None:
    numbers: Any = [1]  # encodes, but is no list[str]
    s.set(Cart(items=numbers))


async def set_what_does_not_encode(s: RequestSessions, log: Log) -> None:
    objects: Any = [object()]
    s.set(Cart(items=objects))


async def set_too_large(s: RequestSessions, log: Log) -> None:
    s.set(Cart(items=["x" * 5000]))


async def set_with_attributes(s: RequestSessions, log: Log) -> None:
    s.set(Cart(), attributes={})


async def set_another_type(s: RequestSessions, log: Log) -> None:
    s.set(Other(), key=Cart)


def change_in_place(change: Callable[[Cart], None]) -> Op:
    async def op(s: RequestSessions, log: Log) -> None:
        cart = await s.get(Cart)
        if cart is not None:
            change(cart)

    return op


def append(item: Any) -> Callable[[Cart], None]:
    return lambda cart: cart.items.append(item)


def pop(cart: Cart) -> None:
    if cart.items:
        cart.items.pop()


async def clear(s: RequestSessions, log: Log) -> None:
    s.clear(Cart)


async def regenerate(s: RequestSessions, log: Log) -> None:
    s.regenerate(Cart)


async def get_or_set(s: RequestSessions, log: Log) -> None:
    log.append(("get_or_set", repr(await s.get_or_set(Cart, lambda: Cart(items=["g"])))))


async def handle(s: RequestSessions, log: Log) -> None:
    log.append(("handle", await s.handle(Cart)))


async def save(s: RequestSessions, log: Log) -> None:
    await s.save()


async def set_the_other_mapping(s: RequestSessions, log: Log) -> None:
    s.set(Other(n=1))  # refused where the app has no such mapping


OPS: dict[str, Op] = {
    "get": get,
    "set": set_,
    "set with key": set_with_key,
    "set what does not read back": set_what_does_not_read_back,
    "set what does not encode": set_what_does_not_encode,
    "set too large": set_too_large,
    "set with attributes": set_with_attributes,
    "set another type": set_another_type,
    "change in place": change_in_place(append("m")),
    "change in place to what does not read back": change_in_place(append(7)),
    "change in place to too large": change_in_place(append("y" * 5000)),
    "change in place back": change_in_place(pop),
    "clear": clear,
    "regenerate": regenerate,
    "get_or_set": get_or_set,
    "handle": handle,
    "save": save,
    "set the other mapping": set_the_other_mapping,
}


async def run(s: RequestSessions, ops: tuple[str, ...], log: Log) -> None:
    for op in ops:
        try:
            await OPS[op](s, log)
        except Exception as exc:
            log.append((op, type(exc).__name__, str(exc)))


# what a request ends up knowing of a session
FIELDS = (
    "phase",
    "value",
    "data",
    "refused",
    "dirty",
    "regen",
    "reissue",
    "failed",
    "created",
    "expires",
    "sealed",
)


def knowledge(s: RequestSessions) -> dict[str, tuple[str, ...]]:
    return {m.name: tuple(repr(getattr(st, f)) for f in FIELDS) for m, st in (s._states or {}).items()}


# -- the draws ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One app's sessions: a `Cart` mapping, maybe an `Other` cookie beside it."""

    transport: str  # "cookie" or "header"
    max_age: float | None
    max_lifetime: float | None
    rolling: bool
    json: bool
    fallback: bool  # OTHER_KEY, the key before a rotation, still read
    second: bool
    private: bool


@dataclass(frozen=True)
class Step:
    """One request."""

    at: float  # seconds after the first
    ops: tuple[str, ...]  # before the response starts
    after: tuple[str, ...]  # after each start
    status: int
    starts: int  # times the app starts its response
    scope: str  # "http" or "websocket"
    test_client: bool  # plain http from an in-process test client: no Secure by default
    sent_along: str  # a value besides the client's own: see `Client.carts`


def draw_config(r: random.Random) -> Config:
    return Config(
        transport=r.choice(["cookie", "header"]),
        max_age=r.choice([None, 600.0, 3600.0]),
        max_lifetime=r.choice([None, 1000.0, 86400.0]),
        rolling=r.choice([True, False]),
        json=r.choice([True, False]),
        fallback=r.choice([True, False]),
        second=r.random() < 0.2,
        private=r.choice([True, False]),
    )


def draw_steps(r: random.Random) -> list[Step]:
    steps, at = [], 0.0
    names = sorted(OPS)
    for _ in range(r.randint(1, 7)):
        at += r.choice([0, 1, 299, 301, 400, 1000, 1900, 4000, 90000])
        steps.append(
            Step(
                at=at,
                # most requests of an app only read its session
                ops=("get",) if r.random() < 0.3 else tuple(r.choices(names, k=r.randint(0, 4))),
                after=tuple(r.choices(names, k=r.randint(0, 1))) if r.random() < 0.2 else (),
                status=r.choice([200, 200, 200, 302, 500]),
                starts=r.choice([1, 1, 1, 2, 0]),
                scope=r.choice(["http"] * 5 + ["websocket"]),
                test_client=r.random() < 0.2,
                sent_along=r.choice(["", "", "", "old", "forged", "repeated", "old after"]),
            )
        )
    return steps


def draws(seed: int) -> list[tuple[Config, list[Step]]]:
    r = random.Random(seed)
    return [(draw_config(r), draw_steps(r)) for _ in range(APPS)]


# -- the apps -----------------------------------------------------------------------------


def cart_mapping(config: Config, sign: satchel.Sign) -> satchel.Mapping[Cart]:
    options: dict[str, Any] = {"max_age": config.max_age, "max_lifetime": config.max_lifetime}
    if config.json:
        options["serializer"] = "json"
    if config.transport == "cookie":
        return satchel.cookie(Cart, "CART", transformers=[sign], rolling=config.rolling, **options)
    return satchel.header(Cart, "X-Cart", transformers=[sign], rolling=config.rolling, **options)


def count_fused(m: satchel.Mapping[Any], taken: Counter[str]) -> None:
    """Count what the fused path of ``m`` itself answered: reads, sets, response starts."""
    assert m._lane is not None, "the common configuration has a fused path"
    lane: Lane = m._lane

    def read(rs: RequestSessions, st: State) -> None:
        taken["read"] += 1
        lane.read(rs, st)

    def set_(rs: RequestSessions, st: State, value: Any) -> bool:
        done = lane.set(rs, st, value)
        taken["set"] += done
        return done

    def commit(rs: RequestSessions, st: State, status: int) -> list[Header] | None:
        headers = lane.commit(rs, st, status)
        if headers is not None:
            sends = any(key in (b"set-cookie", b"x-cart") for key, _ in headers)
            taken["start that sends" if sends else "start that keeps"] += 1
        return headers

    m._lane = Lane(read, lane.open, set_, commit)


def build(fused: bool, config: Config, clock: Clock, taken: Counter[str]) -> satchel.Sessions:
    satchel._mapping.LANES = fused
    try:
        sign = satchel.Sign(KEY, fallback_keys=[OTHER_KEY]) if config.fallback else satchel.Sign(KEY)
        cart = cart_mapping(config, sign)
        mappings: list[satchel.Mapping[Any]] = [cart]
        if config.second:
            mappings.append(satchel.cookie(Other, "OTH", transformers=[satchel.Sign(KEY)]))
    finally:
        satchel._mapping.LANES = True
    if fused:
        count_fused(cart, taken)
    else:
        assert cart._lane is None
    return satchel.Sessions(*mappings, clock=clock, private=config.private)


def old_value(config: Config, now: float) -> str:
    """A cart signed under OTHER_KEY, as before the key was rotated."""
    m = cart_mapping(config, satchel.Sign(OTHER_KEY))
    return m._seal_stateless(m.serializer.encode(Cart(items=["old"])), now, now)[0]


class Client:
    """What a browser (or, for a header mapping, a script) keeps and sends back."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cookies: dict[str, str] = {}
        self.cart: str | None = None  # the header mapping's value

    def carts(self, step: Step, now: float) -> list[str]:
        """The cart values the request sends: the client's own, and the step's extra."""
        own = self.cookies.get("CART") if self.config.transport == "cookie" else self.cart
        sent = [] if own is None else [own]
        if step.sent_along == "old":  # first: the fused path reads only the first one
            sent.insert(0, old_value(self.config, now - 5))
        elif step.sent_along == "forged":
            sent.insert(0, "AAAA" * 30)
        elif step.sent_along == "repeated" and own is not None:
            sent.append(own)
        elif step.sent_along == "old after":
            sent.append(old_value(self.config, now - 5))
        return sent

    def pairs(self, step: Step, now: float) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The request's cookies and its headers."""
        cookies = [(n, v) for n, v in self.cookies.items() if n != "CART"]
        if self.config.transport == "cookie":
            return [("CART", v) for v in self.carts(step, now)] + cookies, []
        return cookies, [("x-cart", v) for v in self.carts(step, now)]

    def keep(self, headers: list[tuple[str, str]]) -> None:
        for key, value in headers:
            if key.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                text = rest.split(";", 1)[0]
                if text:
                    self.cookies[name] = text
                else:
                    self.cookies.pop(name, None)
            elif key.lower() == "x-cart":
                self.cart = value or None


def timed(steps: list[Step], clock: Clock, client: Client) -> Iterator[tuple[Step, Any, Any]]:
    """Each step, the clock moved to it, with the cookies and headers its client sends."""
    for step in steps:
        clock.now = NOW + step.at
        cookies, headers = client.pairs(step, clock.now)
        yield step, cookies, headers


def where(step: Step) -> tuple[str, tuple[str, int]]:
    """The request's scheme and the scope's server."""
    return ("http", ("testserver", 80)) if step.test_client else ("https", ("10.0.0.1", 443))


@contextmanager
def satchel_log() -> Iterator[list[tuple[str, str]]]:
    """What the "satchel" logger says meanwhile, every level."""
    records: list[tuple[str, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((record.levelname, record.getMessage()))

    logger, handler = logging.getLogger("satchel"), Keep()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def through_app(fused: bool, config: Config, steps: list[Step], taken: Counter[str]) -> list[Any]:
    """Each step's response starts, exceptions and session knowledge, and the log."""
    clock = Clock(NOW)
    known: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        step: Step = scope["step"]
        s = satchel.sessions_of(scope)
        log: Log = []
        await run(s, step.ops, log)
        if scope["type"] == "websocket":
            for _ in range(step.starts):
                await send({"type": "websocket.accept", "headers": [(b"x-app", b"1")]})
            await run(s, step.after, log)
        else:
            for _ in range(step.starts):
                headers = [(b"x-app", b"1"), (b"cache-control", b"public, max-age=60")]
                await send({"type": "http.response.start", "status": step.status, "headers": headers})
                await run(s, step.after, log)
            await send({"type": "http.response.body", "body": b""})
        known.append((log, knowledge(s)))

    app_with_sessions = satchel.SessionMiddleware(app, build(fused, config, clock, taken))
    client = Client(config)
    seen: list[Any] = []
    with satchel_log() as records:
        for step, cookies, headers in timed(steps, clock, client):
            raw = [(n.encode(), v.encode()) for n, v in headers]
            if cookies:
                raw.append((b"cookie", "; ".join(f"{n}={v}" for n, v in cookies).encode()))
            scheme, server = where(step)
            scope = {
                "type": step.scope,
                "scheme": scheme if step.scope == "http" else scheme.replace("http", "ws"),
                "path": "/",
                "headers": raw,
                "server": server,
                "step": step,
            }
            starts: list[Any] = []

            async def send(message: Any, starts: list[Any] = starts) -> None:
                starts.append((message["type"], message.get("status"), list(message.get("headers") or [])))

            async def receive(step: Step = step) -> Any:
                return {"type": "http.request" if step.scope == "http" else "websocket.connect"}

            try:
                await app_with_sessions(scope, receive, send)
            except Exception as exc:
                seen.append(("raised", type(exc).__name__, str(exc)))
            seen.append(starts)
            client.keep([(k.decode(), v.decode()) for _, _, hs in starts for k, v in hs])
    return [seen, known, records]


class Failed(Exception):
    """What a block raises to stand for a failed job: nothing is written."""


async def through_detached(fused: bool, config: Config, steps: list[Step], taken: Counter[str]) -> list[Any]:
    """`Sessions.detached` given each step's cookies and headers; a 500 raises in the block."""
    clock = Clock(NOW)
    sessions = build(fused, config, clock, taken)
    client = Client(config)
    seen: list[Any] = []
    with satchel_log() as records:
        for step, cookies, headers in timed(steps, clock, client):
            log: Log = []
            try:
                scheme, server = where(step)
                async with sessions.detached(
                    cookies=cookies, headers=headers, scheme=scheme, server=server
                ) as s:
                    await run(s, step.ops, log)
                    if step.status == 500:
                        raise Failed
            except Exception as exc:
                log.append(("raised", type(exc).__name__, str(exc)))
            seen.append((log, s.headers, knowledge(s)))
            client.keep(s.headers)
    return [seen, records]


# -- the tests ----------------------------------------------------------------------------


def assert_the_draws_cover_everything(drawn: list[tuple[Config, list[Step]]]) -> None:
    """Each seed's draws take in every setting, handler action and kind of request."""
    configs = [c for c, _ in drawn]
    steps = [s for _, ss in drawn for s in ss]
    assert {c.transport for c in configs} == {"cookie", "header"}
    assert {c.max_age for c in configs} == {None, 600.0, 3600.0}
    assert {c.max_lifetime for c in configs} == {None, 1000.0, 86400.0}
    for flag in ("rolling", "json", "fallback", "second", "private"):
        assert {getattr(c, flag) for c in configs} == {True, False}, flag
    assert {op for s in steps for op in s.ops} == set(OPS)
    assert {s.status for s in steps} == {200, 302, 500}
    assert {s.starts for s in steps} == {0, 1, 2}
    assert {s.scope for s in steps} == {"http", "websocket"}
    assert {s.test_client for s in steps} == {True, False}
    assert {s.sent_along for s in steps} == {"", "old", "forged", "repeated", "old after"}
    assert any(s.after for s in steps)


def sessions_sent(seen: list[Any]) -> int:
    return sum(
        k in (b"set-cookie", b"x-cart") and bool(v)
        for starts in seen
        if isinstance(starts, list)
        for _, _, hs in starts
        for k, v in hs
    )


def carts_read(known: list[Any]) -> int:
    return sum(entry[0] == "get" and entry[1] != "None" for log, _ in known for entry in log)


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_exchanges_through_an_app_are_answered_alike_by_both_paths(seed: int) -> None:
    drawn = draws(seed)
    assert_the_draws_cover_everything(drawn)
    taken: Counter[str] = Counter()
    sent = read = 0
    for number, (config, steps) in enumerate(drawn):
        fused = await through_app(True, config, steps, taken)
        generic = await through_app(False, config, steps, Counter())
        assert fused == generic, f"seed {seed}, app {number}: {config}"
        sent += sessions_sent(fused[0])
        read += carts_read(fused[1])
    # the fused path answered reads, sets and whole responses; values went out and came back
    assert min(taken[k] for k in ("read", "set", "start that sends", "start that keeps")) > 0, taken
    assert sent > 0
    assert read > 0


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_detached_sessions_are_answered_alike_by_both_paths(seed: int) -> None:
    drawn = draws(seed)
    taken: Counter[str] = Counter()
    sent = read = 0
    for number, (config, steps) in enumerate(drawn):
        fused = await through_detached(True, config, steps, taken)
        generic = await through_detached(False, config, steps, Counter())
        assert fused == generic, f"seed {seed}, app {number}: {config}"
        sent += sum(k in ("set-cookie", "x-cart") and bool(v) for _, hs, _ in fused[0] for k, v in hs)
        read += carts_read([(log, None) for log, _, _ in fused[0]])
    assert taken["read"] > 0
    assert taken["set"] > 0
    assert sent > 0
    assert read > 0
