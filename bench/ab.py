"""Save figures of two checkouts, alternated and best of N: what a change to saving costs.

    git archive main core/src | tar -x -C /tmp/before
    uv run python bench/ab.py --before /tmp/before/core/src --rounds 3

Each round runs, for each place (tmpfs and disk) and each checkout, a fresh process that makes
an SQLite instance there and times `ll.save` of `--files` new small files, the same files again
(idempotent) and `Artifact(file).save()` of a `--large-mb` MiB file (bench/measure.py). The
checkout under test is this one; `--before` is put first on PYTHONPATH for the other. The best
of the rounds is printed: on a shared machine the best is the figure least disturbed by others.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(where: str, files: int, mb: int) -> None:
    """In a fresh process: the three figures, as one JSON line."""
    sys.path.insert(0, str(HERE))
    import measure

    base = Path(tempfile.mkdtemp(prefix="lakeline-ab-", dir=where))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    os.environ["LAKELINE_CACHE_DIR"] = str(base / "cache")
    try:
        import lakeline.instance as li

        li.init(str(base / "storage"), name="ab")
        paths, _ = measure.make_files(base / "files", files)
        bulk = measure.bulk_register(paths, profile_dir=None, tag="ab", log=lambda _: None)
        large = measure.large_file(base, mb, log=lambda _: None)
        figures = {
            "new /s": files / bulk["first"]["seconds"],
            "again /s": files / bulk["again"]["seconds"],
            "large MiB/s": large["mb_per_s"],
        }
        print(json.dumps(figures))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other core/src")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--large-mb", type=int, default=1024)
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="the disk place")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]), int(args.one[2]))
        return
    places = {"tmpfs": "/dev/shm", "disk": args.tmp}
    best: dict[tuple[str, str], dict[str, float]] = {}
    for _ in range(args.rounds):
        for place, where in places.items():
            for label in ("before", "after"):
                env = dict(os.environ)
                env.pop("PYTHONPATH", None)
                if label == "before":
                    env["PYTHONPATH"] = str(args.before)
                argv = [sys.executable, __file__, "--before", str(args.before)]
                argv += ["--one", where, str(args.files), str(args.large_mb)]
                out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
                figures = json.loads(out.stdout.strip().splitlines()[-1])
                kept = best.setdefault((place, label), figures)
                for name, value in figures.items():
                    kept[name] = max(kept[name], value)
                print(place, label, {k: round(v) for k, v in figures.items()}, file=sys.stderr)
    print(f"best of {args.rounds}: {args.files:,} small files, one {args.large_mb:,} MiB file")
    for place in places:
        for label in ("before", "after"):
            row = "  ".join(f"{k} {v:>7,.0f}" for k, v in best[(place, label)].items())
            print(f"{place:<6} {label:<7} {row}")


if __name__ == "__main__":
    main()
