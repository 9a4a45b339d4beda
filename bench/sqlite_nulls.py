"""What binding a None costs sqlite3 with and without an adapter registered for it
(`lakeline.db.sqlite_functions.bind_none_directly`), alternated in one process.

    uv run --frozen python bench/sqlite_nulls.py [--rounds 5] [--executes 10000]

Each round: `--executes` runs of `SELECT ?, ... ?` with 100 None parameters on an in-memory
database, thread CPU, with no adapter for None and then with lakeline's. Prints the medians
per million NULL parameters; asserts nothing. Under callgrind (`--rounds 1`), the difference
of two runs' totals is the instructions the adapter saves.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time

KEY = (type(None), sqlite3.PrepareProtocol)


def timed(conn: sqlite3.Connection, executes: int) -> float:
    sql = "SELECT " + ", ".join(["?"] * 100)
    values = (None,) * 100
    began = time.thread_time()
    for _ in range(executes):
        conn.execute(sql, values)
    return time.thread_time() - began


def main() -> None:
    from lakeline.db.sqlite_functions import bind_none_directly

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--executes", type=int, default=10_000)
    args = parser.parse_args()
    conn = sqlite3.connect(":memory:")
    per_million = 1e6 / (100 * args.executes)
    without, with_ = [], []
    for _ in range(args.rounds):
        sqlite3.adapters.pop(KEY, None)
        without.append(timed(conn, args.executes) * per_million)
        bind_none_directly()
        with_.append(timed(conn, args.executes) * per_million)
    print(
        f"1M NULL parameters, thread CPU s (median of {args.rounds}): no adapter "
        f"{statistics.median(without):.3f}, adapter {statistics.median(with_):.3f}"
    )


if __name__ == "__main__":
    main()
