"""A separate OS process on a shared SQLite file, for the multi-process and crash tests.

python _sqlite_worker.py hammer PATH TASKS INCREMENTS WRITES
python _sqlite_worker.py writer PATH TASKS
python _sqlite_worker.py owned PATH TASKS WRITES
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine

from satchel_sqlite import SQLiteStorage


async def hammer(path: str, tasks: int, increments: int, writes: int) -> None:
    """Compare-and-set increments of one shared counter, plus writes of this process's own ids."""
    storage = SQLiteStorage(path, namespace="load")
    pid = os.getpid()

    async def task(n: int) -> None:
        for _ in range(increments):
            while True:
                current = await storage.read("counter")
                value = int(current or b"0") + 1
                if await storage.write_if("counter", str(value).encode(), None, expected=current):
                    break
        for i in range(writes):
            id = f"p{pid}-t{n}-{i}"
            await storage.write(id, id.encode(), 3600)
            if await storage.read(id) != id.encode():
                raise AssertionError(f"{id} did not read back")
            await storage.touch(id, 3600)
        await storage.purge()

    try:
        await asyncio.gather(*(task(n) for n in range(tasks)))
    finally:
        await storage.aclose()


async def writer(path: str, tasks: int) -> None:
    """Write forever; print each id only after its write returned (was acknowledged)."""
    storage = SQLiteStorage(path, namespace="crash")
    pid = os.getpid()
    out = sys.stdout

    async def task(n: int) -> None:
        i = 0
        while True:
            id = f"p{pid}-t{n}-{i}"
            # 20 KB spans several pages, so a kill can land between them
            await storage.write(id, id.encode() * (20_000 // len(id)), None)
            out.write(id + "\n")
            out.flush()
            i += 1

    await asyncio.gather(*(task(n) for n in range(tasks)))


async def owned(path: str, tasks: int, writes: int) -> None:
    """Owned sessions of one owner, each inserted once, then rewritten and touched while
    another process invalidates the owner's sessions; prints how many inserts succeeded."""
    storage = SQLiteStorage(path, namespace="owners")
    pid = os.getpid()
    inserted = 0

    async def task(n: int) -> None:
        nonlocal inserted
        for i in range(writes):
            id = f"p{pid}-t{n}-{i}"
            if not await storage.write_owned(id, b"1", 3600, owner="ada", expected=None):
                raise AssertionError(f"{id} is new, yet its insert was refused")
            inserted += 1
            # False once the owner's sessions were invalidated in between: then nothing is written
            await storage.write_owned(id, b"2", 3600, owner="ada", expected=b"1")
            await storage.touch_owned(id, 3600, owner="ada")

    try:
        await asyncio.gather(*(task(n) for n in range(tasks)))
    finally:
        await storage.aclose()
    print(inserted)


if __name__ == "__main__":
    mode, path, *numbers = sys.argv[1:]
    args = [int(n) for n in numbers]
    modes: dict[str, Callable[..., Coroutine[object, object, None]]] = {
        "hammer": hammer,
        "writer": writer,
        "owned": owned,
    }
    asyncio.run(modes[mode](path, *args))
