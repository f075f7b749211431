"""`satchel sessions URL --owner` and `satchel revoke URL --owner`, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import msgspec
import pytest
import satchel
from satchel._cli import main
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Login(msgspec.Struct):
    user: str


def app(url: str) -> satchel.SessionMiddleware:
    sessions = satchel.Sessions(satchel.cookie(Login, "SID", storage=url, owner=lambda login: login.user))

    async def sign_in(request: Request) -> JSONResponse:
        s = satchel.sessions_of(request)
        s.set(Login(user=request.query_params["user"]), attributes={"device": request.headers["user-agent"]})
        return JSONResponse("ok")

    async def whoami(request: Request) -> JSONResponse:
        found = await satchel.sessions_of(request).get(Login)
        return JSONResponse(None if found is None else found.user)

    return satchel.SessionMiddleware(
        Starlette(routes=[Route("/in", sign_in), Route("/me", whoami)]), sessions
    )


def visit(url: str, *requests: tuple[str, str, dict[str, str]]) -> list[object]:
    """Run each (path, user agent, cookie jar) request through a fresh app on its own loop,
    as the CLI runs on its own; the jars keep the cookies the responses set."""

    async def run() -> list[object]:
        shop = app(url)
        answers = []
        try:
            for path, agent, jar in requests:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(shop),
                    base_url="https://testserver",
                    headers={"user-agent": agent},
                    cookies=jar,
                ) as client:
                    answers.append((await client.get(path)).json())
                    jar.update(dict(client.cookies))
        finally:
            await shop.sessions.aclose()
        return answers

    return anyio.run(run)


def test_an_operator_lists_and_revokes_a_users_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    phone: dict[str, str] = {}
    laptop: dict[str, str] = {}
    other: dict[str, str] = {}
    visit(
        url,
        ("/in?user=ada", "phone", phone),
        ("/in?user=ada", "laptop", laptop),
        ("/in?user=grace", "x", other),
    )

    assert main(["sessions", url, "--owner", "ada"]) == 0
    listing = capsys.readouterr().out
    assert "2 live session(s) of 'ada'" in listing
    assert "device: phone" in listing
    assert "device: laptop" in listing
    for jar in (phone, laptop, other):  # the listing names sessions by handle, never by ID
        assert jar["SID"].partition(".")[0] not in listing
    handle = next(line.split()[0] for line in listing.splitlines() if "  SID  " in line)

    assert main(["revoke", url, "--owner", "grace", "--handle", handle]) == 0  # not grace's
    assert "ended 0 session(s)" in capsys.readouterr().out
    assert main(["revoke", url, "--owner", "ada", "--handle", handle]) == 0
    assert "ended 1 session(s) of 'ada'" in capsys.readouterr().out
    assert visit(url, ("/me", "phone", phone), ("/me", "laptop", laptop)).count(None) == 1

    assert main(["revoke", url, "--owner", "ada"]) == 0
    assert "ended 1 session(s) of 'ada'" in capsys.readouterr().out
    assert visit(url, ("/me", "phone", phone), ("/me", "laptop", laptop), ("/me", "x", other)) == [
        None,
        None,
        "grace",
    ]
    assert main(["revoke", url, "--owner", "ada"]) == 0  # safe to repeat
    assert "ended 0 session(s)" in capsys.readouterr().out


def test_an_unknown_storage_exits_2_naming_what_is_installed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["revoke", "nosuch://x", "--owner", "ada"]) == 2
    assert "sqlite" in capsys.readouterr().err


@pytest.mark.parametrize("handle", ["-starts-with-a-dash", "--double", "plain"])
def test_a_handle_or_owner_that_starts_with_a_dash_is_taken_as_a_value(handle: str) -> None:
    # a handle is base64url: about one in 32 starts with "-", and argparse would read it
    # as an option ("expected one argument") unless the command glues it to its flag
    from satchel._cli import _glue_values

    assert _glue_values(["revoke", "memory://", "--owner", "-ada", "--handle", handle]) == [
        "revoke",
        "memory://",
        "--owner=-ada",
        f"--handle={handle}",
    ]


def test_revoking_a_handle_that_starts_with_a_dash_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    (tmp_path / "sessions.db").touch()  # revoke refuses a store that is not there
    assert main(["revoke", url, "--owner", "-ada", "--handle", "-" + "A" * 42]) == 0
    assert "ended 0 session(s)" in capsys.readouterr().out
