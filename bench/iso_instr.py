"""Instructions a call of the status log's time text (`models.base.isoformat`), beside
`datetime.isoformat` and the loop alone, counted by callgrind (load-independent):

    .venv/bin/python bench/iso_instr.py [--calls 2000,22000]

Runs this file under callgrind twice per helper, at each number of calls of 64 aware UTC
times in one minute (the minute's text cached, as in a run's status log), and prints
(total at the larger - total at the smaller) / the difference: a call with its loop. A/B:
PYTHONPATH=<before>/core/src in front. Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta

HELPERS = ("loop", "method", "isoformat")


def _calls(which: str, n: int) -> None:
    """`n` calls of helper `which` (run under callgrind)."""
    from lakeline.models.base import isoformat

    def alone(at: datetime) -> datetime:
        return at

    f = {"loop": alone, "method": datetime.isoformat, "isoformat": isoformat}[which]
    start = datetime(2026, 12, 7, 20, 5, 6, 7, tzinfo=UTC)
    times = [start + timedelta(microseconds=137_000 * i) for i in range(64)]
    gc.disable()
    for i in range(n):
        f(times[i & 63])


def _total(which: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out")
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        subprocess.run(
            [*valgrind, sys.executable, __file__, "--run", which, str(n)],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        with open(out) as lines:
            return next(int(line.split()[1]) for line in lines if line.startswith("totals:"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", default="2000,22000")
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        _calls(args.run[0], int(args.run[1]))
        return
    few, many = (int(n) for n in args.calls.split(","))
    for which in HELPERS:
        per_call = (_total(which, many) - _total(which, few)) / (many - few)
        print(f"{which:10s} {per_call:8.0f} instructions a call (with the loop)")


if __name__ == "__main__":
    main()
