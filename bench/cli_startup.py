"""Benchmark: `graysteps --version` start-up against a bare `python -c pass`, same run.

    python bench/cli_startup.py [--runs 20]

Issue 2 asks `graysteps --version` to answer in <= 0.1 s, so the heavy clients
(kubernetes, docker, sqlalchemy) are imported lazily. Prints the medians and the
ratio to the bare interpreter; exits 1 when the median exceeds 0.1 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    script = shutil.which("graysteps") or sys.exit("bench: `graysteps` is not on PATH (pip install -e .)")
    bare = median_seconds([sys.executable, "-c", "pass"], args.runs)
    version = median_seconds([script, "--version"], args.runs)
    help_all = median_seconds([script, "--help"], args.runs)
    print(f"python -c pass        {bare * 1000:7.1f} ms  (baseline)")
    print(f"graysteps --version   {version * 1000:7.1f} ms  {version / bare:4.1f}x baseline")
    print(f"graysteps --help      {help_all * 1000:7.1f} ms  {help_all / bare:4.1f}x baseline (imports every command module)")
    if version > 0.1:
        print("GOAL MISSED: graysteps --version takes more than 0.1 s")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
