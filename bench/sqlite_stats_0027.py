"""SQLite: what migration 0027's table rebuilds do to the planner's statistics (sqlite_stat1)
of a catalog that had them, and to the plans of bench/scale_measure.py's filters.

    uv run --frozen python bench/sqlite_stats_0027.py [--artifacts 100000] [--tmp DIR]

A fresh SQLite catalog taken down to 0026, filled with bench/scale_fill.py's workload,
ANALYZEd; then upgraded to the head (0027); then ANALYZEd again. Prints the sqlite_stat1 rows
per table at each stage and, for each filter, whether its EXPLAIN QUERY PLAN after the
upgrade and after the new ANALYZE is the one it had before (the plans when not). Asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=100_000, help="a multiple of 10,000")
    parser.add_argument("--tmp", default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="stats0027-", dir=args.tmp))
    os.environ["LAKELINE_HOME"] = str(root / "home")
    import lakeline.instance as li
    import scale_fill
    import scale_measure
    from alembic import command
    from lakeline.db.migrate import alembic_config, migrating, upgrade

    instance = li.init(str(root / "storage"), name="stats0027")
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0026")
    scale_fill.fill(instance, 0, args.artifacts, print, lambda n: None)

    def analyze() -> None:
        with instance.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")

    def stats() -> dict[str, int]:
        with instance.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT tbl, count(*) FROM sqlite_stat1 GROUP BY tbl")
            return {str(t): int(n) for t, n in rows.all() if "_fts_" not in str(t)}

    def plans() -> dict[str, str]:  # the plan only (the SQL's literals are the same)
        return {k: _plan(t) for k, t in scale_measure.explain(instance, args.artifacts).items()}

    analyze()
    before, stats_before = plans(), stats()
    upgrade(instance.engine)
    upgraded, stats_upgraded = plans(), stats()
    analyze()
    again, stats_again = plans(), stats()
    print("sqlite_stat1 rows (full-text tables left out):")
    for name, found in (("0026 + ANALYZE", stats_before), ("0027", stats_upgraded)):
        print(f"  {name:<16} {found}")
    print(f"  {'0027 + ANALYZE':<16} {stats_again}")
    lost = sorted(set(stats_before) - set(stats_upgraded))
    print(f"  lost by the upgrade: {lost}")
    for kind in before:
        same = before[kind] == upgraded[kind], before[kind] == again[kind]
        print(f"{kind}: after the upgrade {_same(same[0])}; after ANALYZE again {_same(same[1])}")
        if not all(same):
            for name, plan in (("0026+A", before), ("0027", upgraded), ("0027+A", again)):
                print(f"  {name}: " + plan[kind].replace("\n", " / "))


def _plan(text: str) -> str:
    """EXPLAIN QUERY PLAN's rows of `scale_measure.explain`'s text (after the SQL)."""
    lines = text.split("\n")
    rows = [line for line in lines if " | " in line and line.split(" | ")[0].isdigit()]
    return "\n".join(" | ".join(line.split(" | ")[3:]) for line in rows)


def _same(same: Any) -> str:
    return "the same" if same else "DIFFERENT"


if __name__ == "__main__":
    main()
