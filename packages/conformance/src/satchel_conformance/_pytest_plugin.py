"""The kit's pytest plugin (``pytest11`` entry point ``satchel_conformance``).

Loaded into every pytest run where satchel-conformance is installed, so it imports
nothing heavy (not satchel, not hypothesis) and changes nothing by itself. It:

- adds the ``--satchel-storage-url``, ``--satchel-ttl`` and ``--satchel-tolerance`` options;
- exposes the server fixtures of `satchel_conformance.servers.fixtures`;
- leaves the URL-mode module out of collection unless a storage URL was given;
- fails each check of a contract class that a class decorator, a module's or package's
  ``pytestmark`` or a hook marked skip, skipif or xfail (a mark in the class body is
  refused when the class is defined);
- closes a run that ran contract checks with a "satchel conformance" summary: per class
  the tally, then each check skipped (with why), expected to fail (with why) or failed
  (with what), and with ``-v`` or in a URL run the passed ones too.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_URL_MODULE = _HERE / "test_url_storage.py"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("satchel-conformance", "satchel conformance kit")
    group.addoption(
        "--satchel-storage-url",
        metavar="URL",
        default=None,
        help="run the storage conformance checks against the storage this URL opens "
        "(through the installed satchel plugins)",
    )
    group.addoption(
        "--satchel-ttl",
        metavar="SECONDS",
        type=float,
        default=None,
        help="the short TTL the TTL checks write with (default 0.25; raise it for a remote server)",
    )
    group.addoption(
        "--satchel-tolerance",
        metavar="SECONDS",
        type=float,
        default=None,
        help="how far an expiry may drift from its TTL (default 0.1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    from .servers import fixtures

    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "satchel_conformance.servers.fixtures")
    url = config.getoption("satchel_storage_url")
    if url is None and config.getoption("pyargs", False) and "satchel_conformance" in config.args:
        raise pytest.UsageError(
            "pytest --pyargs satchel_conformance needs --satchel-storage-url=URL "
            "(or run: satchel conformance URL)"
        )
    config.pluginmanager.register(_Summary(url), "satchel_conformance.summary")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path == _URL_MODULE and config.getoption("satchel_storage_url") is None:
        return True
    return None


@pytest.hookimpl(wrapper=True)  # a wrapper, so it runs before skip marks are evaluated
def pytest_runtest_setup(item: pytest.Item) -> object:
    base = sys.modules.get("satchel_conformance._base")
    cls = getattr(item, "cls", None)
    if base is not None and cls is not None and issubclass(cls, base.Contract):
        try:
            base.refuse_dropping_marks(cls)
        except TypeError as exc:
            pytest.fail(str(exc), pytrace=False)
        _refuse_outer_marks(item)
    return (yield)


def _refuse_outer_marks(item: pytest.Item) -> None:
    """Fail a standard check that a module's or package's ``pytestmark`` (or a hook that
    adds marks to items) would skip: it would show as "skipped" while the run passes."""
    for node in item.listchain():
        if node is not item and not isinstance(node, (pytest.Module, pytest.Package)):
            continue
        names = [mark.name for mark in node.own_markers]
        # the kit's own strict xfail marks sit on the check itself; skips never do
        dropping = [n for n in names if n in ("skip", "skipif") or (n == "xfail" and node is not item)]
        if dropping:
            where = "the check" if node is item else f"{type(node).__name__.lower()} {node.name}"
            pytest.fail(
                f"{where} carries pytest.mark.{dropping[0]}, which would drop a standard "
                "conformance check while the run passes. Skip a whole module with "
                "pytest.importorskip or a fixture that calls pytest.skip when its server is "
                "missing; mark a check that does not hold by overriding it with "
                "@pytest.mark.xfail(reason='...').",
                pytrace=False,
            )


@dataclass
class _Check:
    cls: str
    name: str
    about: str
    outcome: str = "not run"
    note: str = ""


def _reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail).removeprefix("reason: ")
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: why")
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0].removeprefix("Failed: ")  # pytest.fail's own prefix
    return str(longrepr).strip().splitlines()[-1] if longrepr else ""


@dataclass(eq=False)  # registered as a pytest plugin, so it must stay hashable
class _Summary:
    url: str | None
    checks: dict[str, _Check] = field(default_factory=dict)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        base = sys.modules.get("satchel_conformance._base")
        if base is None:  # no contract class was imported: nothing to report
            return
        for item in session.items:
            cls = getattr(item, "cls", None)
            if cls is None or not issubclass(cls, base.Contract):
                continue
            original = getattr(item, "originalname", item.name)
            self.checks[item.nodeid] = _Check(
                cls=item.parent.nodeid if item.parent else cls.__qualname__,
                name=item.name,
                about=base.describe(cls, original),
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        check = self.checks.get(report.nodeid)
        if check is None:
            return
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "XPASSED"
        elif report.when == "call" or report.outcome != "passed":
            outcome = {"passed": "passed", "skipped": "skipped", "failed": "FAILED"}[report.outcome]
            if report.when != "call" and report.failed:
                outcome = "ERROR"
        else:
            return
        if check.outcome in ("FAILED", "ERROR"):
            return  # a teardown after a failure does not change the verdict
        check.outcome = outcome
        check.note = "" if outcome == "passed" else _reason(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if all(check.outcome == "not run" for check in self.checks.values()):
            return  # --collect-only, or stopped before the first check
        write = terminalreporter.write_line
        terminalreporter.section("satchel conformance")
        shown = self.url
        if self.url is not None:
            from satchel import redact_url  # only now: this module imports nothing heavy

            shown = redact_url(self.url)
            write(f"storage URL: {shown}")
        classes: dict[str, list[_Check]] = {}
        for check in self.checks.values():
            classes.setdefault(check.cls, []).append(check)
        # a URL run, or -v, lists every check; otherwise the ones that did not pass
        every = self.url is not None or terminalreporter.config.get_verbosity() > 0
        colours = {"passed": "green", "skipped": "yellow", "xfailed": "yellow"}
        for cls, checks in classes.items():
            counts: dict[str, int] = {}
            for check in checks:
                counts[check.outcome] = counts.get(check.outcome, 0) + 1
            tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            write(f"{cls}: {len(checks)} checks: {tally}", bold=True)
            for check in checks:
                if check.outcome == "passed" and not every:
                    continue
                colour = colours.get(check.outcome, "red")
                write(f"  {check.outcome:<8} {check.name}: {check.about}", **{colour: True})
                if check.note:
                    # the storage's own message: if it quotes the URL whole, the redacted one
                    note = check.note.replace(self.url, str(shown)) if self.url else check.note
                    write(f"           {note}")
