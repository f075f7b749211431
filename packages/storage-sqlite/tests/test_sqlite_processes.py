"""Several OS processes on one SQLite file, and a writer killed with SIGKILL mid-write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = str(Path(__file__).with_name("_sqlite_worker.py"))


def test_processes_and_tasks_share_one_file(tmp_path: Path) -> None:
    """4 processes x 6 tasks on a fresh file: no lock error, no lost increment or write."""
    path = tmp_path / "shared.db"
    processes, tasks, increments, writes = 4, 6, 10, 25
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, "hammer", str(path), *map(str, (tasks, increments, writes))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    failures = []
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        if worker.returncode != 0:
            failures.append(err)
    assert not failures, failures[0]
    assert not any("locked" in f for f in failures)

    with sqlite3.connect(path) as db:
        (counter,) = db.execute(
            "SELECT data FROM satchel_sessions WHERE namespace = 'load' AND id = 'counter'"
        ).fetchone()
        (stored,) = db.execute(
            "SELECT count(*) FROM satchel_sessions WHERE namespace = 'load' AND id LIKE 'p%'"
        ).fetchone()
    assert int(counter) == processes * tasks * increments
    assert stored == processes * tasks * writes


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_write_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """Kill a writer three times mid-loop: the file checks ok and every acknowledged write is there."""
    path = tmp_path / "crash.db"
    acknowledged: list[str] = []
    for round, delay in enumerate((0.4, 0.75, 1.1)):
        writer = subprocess.Popen(
            [sys.executable, WORKER, "writer", str(path), "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        first = writer.stdout.readline()  # running and writing
        assert first, writer.stderr.read() if writer.stderr else "writer died"
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
        assert writer.returncode == -signal.SIGKILL
        acked = [first.strip(), *rest.split()]
        assert len(acked) > 10, f"round {round}: the writer acknowledged only {len(acked)} writes"
        acknowledged += acked

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = dict(db.execute("SELECT id, data FROM satchel_sessions WHERE namespace = 'crash'"))
    missing = [id for id in acknowledged if id not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    for id in acknowledged:
        assert stored[id] == id.encode() * (20_000 // len(id))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX")
def test_worker_forked_after_first_use_opens_its_own_connection(tmp_path: Path) -> None:
    """A pre-forking server that touched the storage before forking: the child still works."""
    script = f"""
import asyncio, os, sys
from satchel_sqlite import SQLiteStorage
storage = SQLiteStorage({str(tmp_path / "fork.db")!r})
asyncio.run(storage.write("parent", b"p", None))
pid = os.fork()
if pid == 0:
    async def child():
        assert await storage.read("parent") == b"p"
        await storage.write("child", b"c", None)
        await storage.aclose()
    asyncio.run(child())
    os._exit(0)
_, status = os.waitpid(pid, 0)
async def parent():
    assert await storage.read("child") == b"c"
    await storage.aclose()
asyncio.run(parent())
sys.exit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
