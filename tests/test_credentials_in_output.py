"""A storage URL's password never reaches output: not the CLI's, not the kit's report, not a
storage's repr, not an error's message or its chained causes, not a log line.

One known password goes into URLs of every built-in scheme, and every path that prints or
logs one is searched for it: `satchel conformance URL` (passing, refused at the first read,
and failing mid-run), `satchel purge / sessions / revoke` with the right and a wrong
password, the errors of `satchel.open_storage` for malformed URLs, unknown options and
unreachable servers, and everything logged at DEBUG meanwhile. `satchel.redact_url` itself
is checked on each URL shape the built-ins accept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import hypothesis.strategies as st
import pytest
import satchel
from hypothesis import given
from satchel import redact_url
from satchel_conformance.servers._common import free_port, running, which

PASSWORD = "hunter2-s3cret"
WRONG = "n0t-the-pa55word"
SECRETS = (PASSWORD, WRONG)
BIN = Path(sys.executable).parent

# the satchel command with every log record, of every logger, at DEBUG on stderr
_SATCHEL_LOGGING_DEBUG = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr); "
    "from satchel._cli import main; sys.exit(main(sys.argv[1:]))"
)


def _leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _exception_text(exc: BaseException) -> str:
    """Everything an exception can print: the whole report (chained causes and contexts
    included), and each message in the chain, as str and repr."""
    parts = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), *map(str, current.args)]
        todo += [current.__cause__, current.__context__]
    return "\n".join(parts)


# --- redact_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:secret@host", "redis://user:***@host"),
        ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://default:secret@cache.internal:6380/1?ssl_cert_reqs=none", "rediss://default:***@cache.internal:6380/1?ssl_cert_reqs=none"),
        ("redis://:p%40ss%2Fw0rd@host/0", "redis://:***@host/0"),
        ("unix:///run/redis.sock?db=0&password=secret", "unix:///run/redis.sock?db=0&password=***"),
        ("unix://user:secret@/run/redis.sock?db=0", "unix://user:***@/run/redis.sock?db=0"),
        ("redis+sentinel://:secret@h1,h2:26380/mymaster/0?namespace=shop", "redis+sentinel://:***@h1,h2:26380/mymaster/0?namespace=shop"),
        ("redis+cluster://:secret@h1:7000,h2:7000", "redis+cluster://:***@h1:7000,h2:7000"),
        ("redis://[::1]:6379/0?token=abc", "redis://[::1]:6379/0?token=***"),
        ("mongodb://u:secret@h1,h2/db?replicaSet=rs", "mongodb://u:***@h1,h2/db?replicaSet=rs"),
        ("mongodb://u:secret@h/db?authSource=admin&authMechanism=SCRAM-SHA-256", "mongodb://u:***@h/db?authSource=admin&authMechanism=SCRAM-SHA-256"),
        ("mongodb+srv://u:secret@cluster0.example.net/app.sessions?retryWrites=true", "mongodb+srv://u:***@cluster0.example.net/app.sessions?retryWrites=true"),
        ("mongodb://h/db?tlsCertificateKeyFilePassword=secret;w=majority", "mongodb://h/db?tlsCertificateKeyFilePassword=***;w=majority"),
        ("mongodb://h/?authMechanismProperties=SERVICE_NAME:mongodb,AWS_SESSION_TOKEN:secret", "mongodb://h/?authMechanismProperties=SERVICE_NAME:mongodb,AWS_SESSION_TOKEN:***"),
        ("mongodb://x509user@h/?authMechanism=MONGODB-X509", "mongodb://x509user@h/?authMechanism=MONGODB-X509"),
        ("mongodb://%2Ftmp%2Fmongodb-27017.sock/db", "mongodb://%2Ftmp%2Fmongodb-27017.sock/db"),
        ("sqlite:///sessions.db", "sqlite:///sessions.db"),
        ("sqlite:////var/lib/app/me@work.db?namespace=shop", "sqlite:////var/lib/app/me@work.db?namespace=shop"),
        ("sqlite://:memory:", "sqlite://:memory:"),
        ("memory://", "memory://"),
        # password-like option names, any case, percent-encoded too; auth only as a whole word's end
        ("x://h?PASSWORD=a&passwd=b&pwd=c&client_secret=d&api_key=e", "x://h?PASSWORD=***&passwd=***&pwd=***&client_secret=***&api_key=***"),
        ("x://h?Credentials=f&sas=g&sig=h&auth=i&basicAuth=j", "x://h?Credentials=***&sas=***&sig=***&auth=***&basicAuth=***"),
        ("x://h?pass%77ord=a&authSource=admin&authMechanism=PLAIN&appname=me@shop", "x://h?pass%77ord=***&authSource=admin&authMechanism=PLAIN&appname=me@shop"),
        # a value with an unescaped separator stays masked whole
        ("x://h?password=a;b&w=1", "x://h?password=***&w=1"),
        ("x://h?password=a&b&c&w=1&token", "x://h?password=***&w=1&token"),
        # a password with an unescaped '/', '?' or '#' puts an '@' after the hosts
        ("redis://:pa/ss@host/0", "redis://:***@host/0"),
        ("redis://user:1234/x@host", "redis://user:***@host"),
        ("redis://:pa?ss@host:6379", "redis://:***@host:6379"),
        ("redis://:pa#ss@host", "redis://:***@host"),
        ("mongodb://u:p@ss@h/db", "mongodb://u:***@h/db"),
        # not scheme://...: whatever is before the last '@' may be credentials
        ("admin:secret@db.internal/app", "***@db.internal/app"),
        ("admin:secret@db://x", "***@db://x"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)  # fmt: skip
def test_redact_url_shapes(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(shown) == shown  # redacting again changes nothing


_TEMPLATES = [
    "redis://:{pw}@127.0.0.1:6379/0",
    "redis://app:{pw}@127.0.0.1:6379/0?namespace=shop",
    "rediss://default:{pw}@cache.example.net:6380",
    "unix:///run/redis.sock?db=0&password={pw}",
    "unix://app:{pw}@/run/redis.sock",
    "redis+sentinel://:{pw}@10.0.0.1:26379,10.0.0.2:26379/mymaster/0",
    "redis+cluster://app:{pw}@10.0.0.1:7000,10.0.0.2:7000",
    "mongodb://app:{pw}@db1,db2,db3/app?replicaSet=rs0&authSource=admin",
    "mongodb+srv://app:{pw}@cluster0.example.net/app.sessions",
    "mongodb://db1/app?tlsCertificateKeyFilePassword={pw}",
    "mongodb://db1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:{pw}",
]


@given(
    template=st.sampled_from(_TEMPLATES),
    password=st.text(st.characters(codec="utf-8"), min_size=8, max_size=24),
)
def test_redact_url_masks_any_percent_encoded_password(template: str, password: str) -> None:
    # what is shown does not depend on the password at all
    shown = redact_url(template.format(pw=quote(password, safe="")))
    assert shown == redact_url(template.format(pw="x"))
    assert "***" in shown


@given(st.text())
def test_redact_url_never_raises(text: str) -> None:
    assert isinstance(redact_url(text), str)


def test_redact_url_takes_what_is_not_a_string() -> None:
    class Odd:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert redact_url(Odd()) == "***"  # type: ignore[arg-type]
    assert redact_url(b"redis://:x@h") == "***@h'"  # type: ignore[arg-type]


# --- a Redis server that requires the password -------------------------------------------


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis-requirepass")
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--requirepass", PASSWORD,
    ]  # fmt: skip
    with running(argv, port=port, cwd=workdir):
        yield port


def _url(port: int, password: str = PASSWORD) -> str:
    return f"redis://:{password}@127.0.0.1:{port}/0?timeout=2"


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=240, env=env)
    assert not _leaked(done.stdout + done.stderr), (done.stdout[-3000:], done.stderr[-3000:])
    return done


_KIT_LOGGING = ["-o", "log_cli=true", "--log-cli-level=DEBUG"]


def test_the_kit_report_shows_the_redacted_url(redis_port: int, tmp_path: Path) -> None:
    done = _run(
        [str(BIN / "satchel"), "conformance", _url(redis_port), "-k", "round_trip", *_KIT_LOGGING],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"storage URL: redis://:***@127.0.0.1:{redis_port}/0?timeout=2" in done.stdout
    assert "passed   test_round_trip" in done.stdout


def test_the_kit_refused_at_the_first_read_keeps_the_wrong_password(redis_port: int, tmp_path: Path) -> None:
    done = _run(
        [str(BIN / "satchel"), "conformance", _url(redis_port, WRONG), "-k", "round_trip"], cwd=tmp_path
    )
    assert done.returncode == 2
    assert "a first read failed, so no check can run" in done.stderr
    assert done.stdout == ""


def test_the_kit_failing_mid_run_keeps_the_password(redis_port: int, tmp_path: Path) -> None:
    # the probe passes; then the server's password changes, so every check fails in its
    # fixtures, and pytest prints their tracebacks, arguments and the captured logs
    (tmp_path / "change_password.py").write_text(
        "import redis\n"
        f"def _set(old, new):\n"
        f"    client = redis.Redis(port={redis_port}, password=old)\n"
        "    client.config_set('requirepass', new)\n"
        "    client.close()\n"
        f"def pytest_sessionstart(session):\n    _set({PASSWORD!r}, {WRONG!r})\n"
        f"def pytest_unconfigure(config):\n    _set({WRONG!r}, {PASSWORD!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = _run(
        [str(BIN / "satchel"), "conformance", _url(redis_port), "-p", "change_password",
         "-k", "round_trip", "--tb=long", "--log-level=DEBUG"],
        cwd=tmp_path,
        env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "FAILED   test_round_trip" in done.stdout
    assert "'url': 'redis://:***@" in done.stdout  # the fixture's arguments, as pytest shows them


@pytest.mark.parametrize("command", [["purge"], ["sessions", "--owner", "ada"], ["revoke", "--owner", "ada"]])
@pytest.mark.parametrize("password", [PASSWORD, WRONG])
def test_the_cli_with_the_right_or_a_wrong_password(
    redis_port: int, tmp_path: Path, command: list[str], password: str
) -> None:
    name, *rest = command
    done = _run(
        [sys.executable, "-c", _SATCHEL_LOGGING_DEBUG, name, _url(redis_port, password), *rest], tmp_path
    )
    if name == "purge":  # Redis expires keys itself: nothing is sent
        assert done.returncode == 0
        assert "expires entries by itself" in done.stdout
    elif password == PASSWORD:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 2
        assert "invalid username-password pair" in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "redis://:{pw}@127.0.0.1:{closed}/0?timeout=1",
        "redis+cluster://:{pw}@127.0.0.1:{closed}?timeout=1",
        "mongodb://app:{pw}@127.0.0.1:{closed}/app?serverSelectionTimeoutMS=200",
        "sqlite://admin:{pw}@db.internal/sessions.db",
        "nosuch://:{pw}@127.0.0.1",
        "admin:{pw}@127.0.0.1",
    ],
)
@pytest.mark.parametrize("command", [["purge"], ["sessions", "--owner", "ada"], ["revoke", "--owner", "ada"]])
def test_the_cli_against_what_does_not_answer_or_is_malformed(
    tmp_path: Path, url: str, command: list[str]
) -> None:
    name, *rest = command
    target = url.format(pw=PASSWORD, closed=free_port())
    done = _run([sys.executable, "-c", _SATCHEL_LOGGING_DEBUG, name, target, *rest], tmp_path)
    if name == "purge" and target.startswith("redis"):
        assert done.returncode == 0
    else:
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.rstrip().splitlines()[-1].startswith("satchel: ")


# --- open_storage: reprs, errors and their causes, logs, warnings --------------------


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """Every record of every logger at DEBUG, and every warning, while the test runs."""
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def text() -> str:
            # the formatted records carry the tracebacks of exc_info too
            return "\n".join([caplog.text, *(str(w.message) for w in caught)])

        yield text


def _open_and_read(url: str, **options: object) -> str:
    """What opening ``url``, its repr, a first read and closing put into messages."""
    shown: list[str] = []

    async def run() -> None:
        try:
            storage = satchel.open_storage(url, **options)
        except Exception as exc:
            shown.append(_exception_text(exc))
            return
        shown.append(repr(storage))
        try:
            await storage.read(satchel.token_id())
        except Exception as exc:
            shown.append(_exception_text(exc))
        finally:
            try:
                await storage.aclose()
            except Exception as exc:
                shown.append(_exception_text(exc))
        shown.append(repr(storage))

    asyncio.run(run())
    return "\n".join(shown)


_BROKEN = [
    # malformed
    "redis://:{pw}@127.0.0.1:notaport/0",
    "redis://:{pw}@127.0.0.1/notadb",
    "redis://:{pw}/{pw}@127.0.0.1/0",
    "redis://:{pw}?{pw}@127.0.0.1:6379",
    "rediss://:{pw}#{pw}@127.0.0.1",
    "redis+sentinel://:{pw}@127.0.0.1:{closed}",
    "redis+sentinel://:{pw}/{pw}@127.0.0.1:{closed}/mymaster",
    "redis+cluster://:{pw}@127.0.0.1:x",
    "redis+cluster://:{pw}@127.0.0.1:{closed}/5",
    "redis+cluster://:{pw}?{pw}@127.0.0.1:{closed}",
    "mongodb://app:{pw}:x@127.0.0.1/app",
    "mongodb://app:{pw}/{pw}@127.0.0.1/app",
    "mongodb://app:{pw}@127.0.0.1:notaport/app",
    "mongodb+srv://app:{pw}@cluster0.example.net:27017/app",
    "mongodb://app@127.0.0.1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:{pw}",
    "sqlite://admin:{pw}@db.internal/sessions.db",
    "sqlite:///sessions.db?password={pw}",
    "sqlite:///sessions.db?password={pw}&&",
    "nosuch://:{pw}@127.0.0.1",
    "admin:{pw}@127.0.0.1/db",
    "admin:{pw}@127.0.0.1://x",
    # unknown options
    "redis://:{pw}@127.0.0.1:{closed}/0?no_such_option=1",
    "redis+cluster://:{pw}@127.0.0.1:{closed}?ssl_keyfile=x",
    "mongodb://app:{pw}@127.0.0.1:{closed}/app?noSuchOption=1&serverSelectionTimeoutMS=200",
    # unreachable
    "redis://:{pw}@127.0.0.1:{closed}/0?timeout=1",
    "redis://app:{pw}@127.0.0.1:{closed}/0?timeout=1&client_name=shop",
    "unix:///nonexistent/redis.sock?password={pw}&timeout=1",
    "redis+sentinel://:{pw}@127.0.0.1:{closed}/mymaster/0?timeout=1",
    "redis+cluster://:{pw}@127.0.0.1:{closed}?timeout=1",
    "mongodb://app:{pw}@127.0.0.1:{closed}/app?serverSelectionTimeoutMS=200",
    "mongodb://app:{pw}@127.0.0.1:{closed},127.0.0.2:{closed}/app?replicaSet=rs&serverSelectionTimeoutMS=200",
    "mongodb://127.0.0.1:{closed}/app?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:{pw}&serverSelectionTimeoutMS=200",
]


@pytest.mark.parametrize("url", _BROKEN)
def test_open_storage_keeps_the_password_out_of_reprs_errors_and_logs(
    url: str, everything_logged: Callable[[], str]
) -> None:
    shown = _open_and_read(url.format(pw=PASSWORD, closed=free_port()))
    assert shown
    assert not _leaked(shown), shown
    assert not _leaked(everything_logged()), everything_logged()


@pytest.mark.parametrize(
    "url",
    [
        "redis://:{pw}@127.0.0.1:{closed}/0",
        "redis+sentinel://:{pw}@127.0.0.1:{closed}/mymaster/0",
        "redis+cluster://:{pw}@127.0.0.1:{closed}",
        "mongodb://app:{pw}@127.0.0.1:{closed}/app",
    ],
)
def test_an_unknown_keyword_option_keeps_the_password(url: str, everything_logged: Callable[[], str]) -> None:
    shown = _open_and_read(url.format(pw=PASSWORD, closed=free_port()), no_such_option=1)
    assert "no_such_option" in shown or "nosuchoption" in shown.lower(), shown
    assert not _leaked(shown + everything_logged()), shown


def test_a_wrong_password_on_a_live_server(redis_port: int, everything_logged: Callable[[], str]) -> None:
    shown = _open_and_read(_url(redis_port, WRONG))
    assert "invalid username-password pair" in shown
    assert not _leaked(shown + everything_logged()), shown


def test_reprs_of_storages_opened_from_urls_with_a_password(redis_port: int) -> None:
    from satchel_mongo import MongoStorage
    from satchel_redis import RedisClusterStorage, RedisStorage

    closed = free_port()

    async def run() -> list[str]:
        storages = [
            (RedisStorage, _url(redis_port)),
            (RedisStorage, f"redis+sentinel://:{PASSWORD}@127.0.0.1:{closed}/mymaster/0"),
            (RedisClusterStorage, f"redis+cluster://:{PASSWORD}@127.0.0.1:{closed}"),
            (MongoStorage, f"mongodb://app:{PASSWORD}@127.0.0.1:{closed}/app?serverSelectionTimeoutMS=200"),
        ]
        shown = []
        for cls, url in storages:
            storage = satchel.open_storage(url, namespace="shop")
            assert isinstance(storage, cls)
            shown += [repr(storage), str(storage)]
            await storage.aclose()
            shown += [repr(storage), str(storage)]
        return shown

    shown = asyncio.run(run())
    assert all("shop" in text for text in shown), shown
    assert not _leaked("\n".join(shown)), shown
