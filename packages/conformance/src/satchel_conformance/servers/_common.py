"""Shared parts of the server finders: free ports, starting a binary, waiting for it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "Unavailable",
    "free_port",
    "wait_until",
    "wait_for_port",
    "running",
    "docker_answers",
    "which",
    "paused",
]


class Unavailable(Exception):
    """No server could be found or started; the message says which of the three to provide."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, check: Callable[[], bool], *, timeout: float = 15.0) -> None:
    """Return once ``check()`` is true; raise ``Unavailable`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise Unavailable(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)


def wait_for_port(
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout: float = 15.0,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Return once ``host:port`` accepts connections; raise ``Unavailable`` after ``timeout``,
    or as soon as ``proc`` (the server meant to answer) has exited."""

    def answers() -> bool:
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"the server exited with code {proc.returncode} before {host}:{port} answered")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(f"{host}:{port} answering", answers, timeout=timeout)


def which(binary: str) -> str | None:
    """The path of ``binary`` on PATH (or in /usr/sbin, /usr/bin), else ``None``."""
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/usr/local/bin")


@contextlib.contextmanager
def running(
    argv: Sequence[str], *, port: int, cwd: Path, timeout: float = 15.0, name: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in ``cwd``, wait until ``port`` answers, stop it on exit.

    ``name`` is what a failure to start calls the server (default: the program run).
    """
    log_path = cwd / f"server-{port}.log"
    with open(log_path, "wb") as log:
        # argv names a server binary found on PATH by the finders, never user input
        proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            try:
                wait_for_port(port, timeout=timeout, proc=proc)
            except Unavailable as exc:
                raise Unavailable(
                    f"{name or argv[0]} did not start on port {port} ({exc}): "
                    + log_path.read_text(errors="replace")[-2000:]
                ) from exc
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def docker_answers() -> bool:
    """Whether a Docker engine answers (testcontainers needs one)."""
    if os.environ.get("DOCKER_HOST"):
        return True
    return Path("/var/run/docker.sock").exists()


def paused(pid: int) -> Callable[[], contextlib.AbstractAsyncContextManager[None]]:
    """An outage for the kit's ``outage`` fixture: the server process ``pid`` stopped
    (SIGSTOP) inside the block and continued (SIGCONT) after it, so calls to it wait for
    their timeouts and then fail, and the same storage must recover. Pause only a server
    your test run started."""

    @contextlib.asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    return outage
