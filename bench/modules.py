"""Schema-module figures: mounting a module, saving its records, validating against them,
and artifact lookups by a `cat[module.Registry]` feature, next to the same with ULabels.

    uv run python bench/modules.py [--db sqlite|postgres|both] [--records 16000] [--artifacts 1000]

The module is the tests' `lakeline-lab` (tests/core/lab_module), installed for real with
`uv pip install --offline --no-deps --target` into a temporary folder. Prints figures; asserts
nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def install_lab(target: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        sys.exit("uv is not on PATH: it installs the lab module")
    source = ROOT / "tests" / "core" / "lab_module"
    cmd = [uv, "pip", "install", "--offline", "--no-deps", "--quiet", "--target", str(target)]
    subprocess.run([*cmd, str(source)], check=True)


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run(db: str, url: str | None, folder: Path, n_records: int, n_artifacts: int) -> None:
    import lakeline as ll
    from lakeline.instance import disconnect, init
    from lakeline.modules import add

    instance = init(folder / "data", db=url, name=f"bench{db}")
    seconds, _ = timed(lambda: add("lab", instance))
    print(f"{db}: mount lab (2 revisions, 4 tables, one transaction): {seconds * 1000:.0f} ms")
    from lakeline_lab.models import Biosample

    names = [f"sample {i}" for i in range(n_records)]
    records = [Biosample(name=name, tissue="blood") for name in names]
    seconds, _ = timed(lambda: ll.save(records))
    labels = [ll.ULabel(name=name) for name in names]
    ulabel_s, _ = timed(lambda: ll.save(labels))
    print(f"{db}: save {n_records:,} Biosamples {seconds:.2f} s ({ulabel_s:.2f} s as ULabels)")
    values = [names[i % n_records] if i % 20 else f"unknown {i}" for i in range(n_records)]
    Biosample.validate(values[:10], mute=True)  # imports pandas, rapidfuzz
    best = min(timed(lambda: Biosample.validate(values, mute=True))[0] for _ in range(3))
    print(f"{db}: validate {n_records:,} values against them: {best * 1000:.0f} ms")

    ll.save([ll.Feature(name="sample", dtype="cat[lab.Biosample]"),
             ll.Feature(name="label", dtype="cat[ULabel]")])  # fmt: skip
    artifacts = ll.save(
        [ll.Artifact.reference(f"s3://bench/{i}.csv", key=f"a/{i}.csv") for i in range(n_artifacts)]
    )
    start = time.perf_counter()
    for i, artifact in enumerate(artifacts):
        artifact.features.add_values({"sample": names[i], "label": names[i]})
    per = (time.perf_counter() - start) / n_artifacts
    print(f"{db}: add_values (a module record and a ULabel) on {n_artifacts:,} artifacts: "
          f"{per * 1000:.1f} ms per artifact")  # fmt: skip
    for feature in ("sample", "label"):
        samples = []
        for i in range(0, n_artifacts, max(1, n_artifacts // 50)):
            lookup = {feature: names[i]}
            samples.append(timed(lambda lookup=lookup: ll.Artifact.filter(**lookup).all())[0])
        what = "cat[lab.Biosample]" if feature == "sample" else "cat[ULabel]"
        print(f"{db}: Artifact.filter({feature}=...) ({what}) at {n_artifacts:,} annotated: "
              f"median {statistics.median(samples) * 1000:.2f} ms")  # fmt: skip
    disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--records", type=int, default=16000)
    parser.add_argument("--artifacts", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "site"
        install_lab(site)
        sys.path.insert(0, str(site))
        os.environ.update(LAKELINE_HOME=f"{scratch}/home", LAKELINE_LOAD_PLUGINS="lab",
                          LAKELINE_CACHE_DIR=f"{scratch}/cache")  # fmt: skip
        dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        for db in dbs:
            folder = Path(scratch) / db
            if db == "sqlite":
                run(db, None, folder, args.records, args.artifacts)
                continue
            from measure import start_postgres

            started = start_postgres()
            if isinstance(started, str):
                print(f"postgres: skipped ({started})")
                continue
            server, url = started
            try:
                run(db, url, folder, args.records, args.artifacts)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
