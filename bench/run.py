"""Run every ``bench/bench_*.py``, one after the other, each in its own process.

    python bench/run.py            # full runs
    python bench/run.py --quick    # short runs: ``--quick`` is passed to every script
    python bench/run.py core sqlite  # only bench_core.py and bench_sqlite.py
    python bench/run.py --http     # also bench_http.py (over sockets; minutes, so opt-in)
    python bench/run.py http       # only bench_http.py (``make bench BENCH_ARGS=http``)

One process per script, never in parallel: the figures of one must not be disturbed by
another. The exit status is non-zero when any script failed; the others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPT_IN = {"http"}  # slow: run only when named or with --http


def scripts(only: list[str], opt_in: bool = False) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if not only:
        return [p for p in found if opt_in or p.stem.removeprefix("bench_") not in OPT_IN]
    wanted = {name.removeprefix("bench_").removesuffix(".py") for name in only}
    missing = wanted - {p.stem.removeprefix("bench_") for p in found}
    if missing:
        raise SystemExit(
            f"no bench/bench_{{{','.join(sorted(missing))}}}.py; have: {[p.name for p in found]}"
        )
    return [p for p in found if p.stem.removeprefix("bench_") in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run of each script")
    parser.add_argument("--http", action="store_true", help="also run bench_http.py (several minutes)")
    parser.add_argument("only", nargs="*", help="names of the scripts to run (core, sqlite, ...)")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for script in scripts(args.only, args.http):
        command = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        print(f"\n=== {script.name}{' --quick' if args.quick else ''}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, cwd=HERE.parent)
        print(f"=== {script.name}: exit {code} in {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
