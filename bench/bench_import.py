"""What ``import satchel`` costs in an interpreter that has already imported asyncio.

Each run is a fresh interpreter: ``python -X importtime -c "import asyncio; import
satchel"``. The figure is satchel's cumulative time in that report (everything its import
pulled in that asyncio had not), the median over the runs, with the biggest pieces
under it. ``--against DIR`` also times the satchel package found in DIR (a copy of
another revision's ``packages/core/src``), interleaved run by run with this one; give it
more than once to compare several revisions (e.g. two commits, away from the edits in
progress in the working tree).

Modules load from cached bytecode, as in any installed deployment: the runs write and
read it under a temporary ``PYTHONPYCACHEPREFIX`` (whatever ``PYTHONDONTWRITEBYTECODE``
says), filled by a first run that is not counted, so no ``__pycache__`` lands in the tree.

    python bench/bench_import.py                       # 10 runs
    python bench/bench_import.py --runs 30
    python bench/bench_import.py --against /tmp/old-src  # before/after, interleaved
    python bench/bench_import.py --against /tmp/a-src --against /tmp/b-src
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile

TARGET_MS = 30.0
# modules import satchel must leave to first use
DEFERRED = ("pluggy", "importlib.metadata", "email.utils")
# subtrees reported under the total (their cumulative time, where they are imported)
PIECES = (
    "msgspec",
    "dataclasses",
    "satchel._mapping",
    "satchel._sessions",
    "satchel._plugins",
    "satchel._types",
    "satchel._owners",
    "satchel._identity",
)
PROBE = (
    "import sys; import asyncio; import satchel; "
    f"print(','.join(m for m in {DEFERRED!r} if m in sys.modules))"
)


def run_once(source: str | None, cache: str) -> tuple[float, dict[str, float], str]:
    """satchel's cumulative import time (ms), the pieces' (ms), and which deferred
    modules the import loaded anyway."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if source is not None:
        env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    total = None
    pieces: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        module = name.strip()
        if name == " satchel":  # top level: what `import satchel` itself cost
            total = int(cumulative) / 1000
        elif module in PIECES and module not in pieces:
            pieces[module] = int(cumulative) / 1000
    if total is None:
        raise SystemExit(f"no `satchel` line in the -X importtime report:\n{done.stderr[-2000:]}")
    return total, pieces, done.stdout.strip()


def report(label: str, runs: list[tuple[float, dict[str, float], str]]) -> float:
    totals = sorted(r[0] for r in runs)
    median = statistics.median(totals)
    print(
        f"{label}: median {median:.1f} ms over asyncio "
        f"(min {totals[0]:.1f}, max {totals[-1]:.1f}, {len(runs)} runs)"
    )
    for piece in PIECES:
        values = [r[1][piece] for r in runs if piece in r[1]]
        if values:
            print(f"    {piece:<20} {statistics.median(values):6.1f} ms")
    loaded = {r[2] for r in runs} - {""}
    found = ", ".join(sorted(loaded)) if loaded else "none of " + ", ".join(DEFERRED)
    print(f"    loaded at import: {found}")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--against",
        metavar="DIR",
        action="append",
        default=[],
        help="a directory holding another satchel package (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="5 runs")
    args = parser.parse_args()
    if args.quick:
        args.runs = 5
    print(
        f"python {platform.python_version()}, {platform.machine()} x {os.cpu_count()} cores, "
        f"{platform.system()}; load average {os.getloadavg()[0]:.1f}"
    )
    here: list[tuple[float, dict[str, float], str]] = []
    others: dict[str, list[tuple[float, dict[str, float], str]]] = {d: [] for d in args.against}
    with tempfile.TemporaryDirectory(prefix="bench-import-") as cache:
        run_once(None, cache)  # writes the bytecode, and warms the file system cache
        for directory in others:
            run_once(directory, cache)
        for _ in range(args.runs):
            here.append(run_once(None, cache))
            for directory, runs in others.items():
                runs.append(run_once(directory, cache))
    for directory, runs in others.items():
        report(f"satchel from {directory}", runs)
    median = report("satchel (this tree)", here)
    verdict = "met" if median <= TARGET_MS else "missed"
    print(f"target: at most {TARGET_MS:.0f} ms over asyncio: {verdict}")


if __name__ == "__main__":
    main()
