"""Instance mesh figures: `using()` query latency and the transfer of 10k artifacts.

    uv run python bench/mesh.py [--db sqlite|postgres|both] [--artifacts 10000] [--queries 50]

Per database (source and target on the same kind: SQLite files in a temporary folder, or two
databases on a throwaway PostgreSQL cluster on /dev/shm): instance `atlas` registers
`--artifacts` small files, then instance `lab` is current and
- reads atlas with `ll.Artifact.using("atlas")`: filter by key prefix (first use, which opens
  the instance, and warm), get by key, count;
- reads all of them (`using("atlas").filter().all()`), then transfers them (`ll.save`):
  records/s of the transfer, and the bytes written into lab's storage (it copies none);
- transfers them again (nothing changes).
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from measure import start_postgres, summary


def _bytes_under(folder: Path) -> int:
    """Bytes of the files in a storage folder, its SQLite database (metadata) left out."""
    files = [p for p in folder.rglob("*") if p.is_file() and ".db" not in p.name]
    return sum(p.stat().st_size for p in files)


def measure(db: str, n: int, queries: int, tmp: Path) -> dict[str, Any]:
    import lakeline as ll
    from lakeline.instance import disconnect

    os.environ["LAKELINE_HOME"] = str(tmp / f"home-{db}")
    os.environ["LAKELINE_CACHE_DIR"] = str(tmp / f"home-{db}" / "cache")
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    server = None
    urls: list[str | None] = [None, None]
    if db == "postgres":
        started = start_postgres("atlas")
        if isinstance(started, str):
            return {"skipped": started}
        server, atlas_url = started
        urls = [atlas_url, server.create_database("lab")]
    try:
        files = tmp / f"atlas-{db}" / "files"
        files.mkdir(parents=True)
        for i in range(n):
            (files / f"{i:05d}.txt").write_text(f"record {i}\n")
        atlas = ll.init(storage=tmp / f"atlas-{db}", db=urls[0], name="atlas")
        t0 = time.perf_counter()
        ll.save([ll.Artifact(p) for p in sorted(files.iterdir())])
        registered = time.perf_counter() - t0
        lab_root = tmp / f"lab-{db}"
        ll.init(storage=lab_root, db=urls[1], name="lab")
        lab_before = _bytes_under(lab_root)

        t0 = time.perf_counter()
        first = ll.Artifact.using("atlas").filter(key__startswith="files/0000").all()
        first_ms = (time.perf_counter() - t0) * 1000
        assert len(first) == min(n, 10)
        prefix, get, count = [], [], []
        for q in range(queries):
            t0 = time.perf_counter()
            ll.Artifact.using("atlas").filter(key__startswith=f"files/{q % 100:03d}").all()
            prefix.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ll.Artifact.using("atlas").get(key=f"files/{(q * 7919) % n:05d}.txt")
            get.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ll.Artifact.using("atlas").filter(key__startswith="files/").count()
            count.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        records = ll.Artifact.using("atlas").filter().all()
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        saved = ll.save(records)
        transfer_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ll.save(ll.Artifact.using("atlas").filter())
        again_s = time.perf_counter() - t0
        assert len(saved) == n and ll.Artifact.filter().count() == n
        return {
            "atlas register (s)": round(registered, 2),
            "using() first query, opens atlas (ms)": round(first_ms, 1),
            "using() filter prefix (ms)": summary(prefix),
            "using() get by key (ms)": summary(get),
            "using() count (ms)": summary(count),
            "read all from atlas with using() (s)": round(read_s, 2),
            "transfer of those records (s)": round(transfer_s, 2),
            "transfer (records/s)": round(n / transfer_s),
            "read + transfer again, no change (s)": round(again_s, 2),
            "bytes copied into lab's storage": _bytes_under(lab_root) - lab_before,
            "atlas instance": atlas.name,
        }
    finally:
        disconnect()
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--artifacts", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        tmp = Path(tempfile.mkdtemp(prefix=f"mesh-{db}-"))
        try:
            figures = measure(db, args.artifacts, args.queries, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"== {db}: {args.artifacts} artifacts")
        for name, value in figures.items():
            if isinstance(value, dict):
                value = (
                    f"median {value['median_ms']:.2f}, p90 {value['p90_ms']:.2f} (n={value['n']})"
                )
            print(f"  {name:40} {value}")


if __name__ == "__main__":
    main()
