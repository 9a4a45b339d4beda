"""Instructions of one time text (`models.base.isoformat`, the status log's and the flush's),
counted by callgrind: the same count whatever the machine's load.

    for n in 1000 11000; do valgrind --tool=callgrind --callgrind-out-file=OUT.$n \\
        .venv/bin/python bench/time_text_instr.py --what isoformat --calls $n; done
    grep ^totals: OUT.1000 OUT.11000   # (difference) / 10000, less --what none's: a call

`--what`: isoformat (lakeline's), method (`datetime.isoformat`), none (the loop alone).
`--whole`: a time without microseconds. One aware UTC time, so the same minute each call.
Prints nothing; asserts nothing.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from lakeline.models.base import isoformat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--what", choices=["isoformat", "method", "none"], default="isoformat")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--whole", action="store_true")
    args = parser.parse_args()
    call = {"isoformat": isoformat, "method": datetime.isoformat, "none": lambda at: at}[args.what]
    at = datetime(2026, 12, 7, 20, 1, 2, 0 if args.whole else 345678, tzinfo=UTC)
    for _ in range(args.calls):
        call(at)


if __name__ == "__main__":
    main()
