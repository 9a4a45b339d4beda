"""Instructions of the save's look-up statement alone on SQLite (`artifacts/places.py`,
`_lookup`: the records with a batch's keys and those at its places), counted by callgrind,
in the shape a lone flush of the Recorder runs it: keys, the files' storage by id, and the
local reference storage by root (unavailable records only); nothing is found.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \\
        .venv/bin/python bench/lookup_instr.py [--names 2] [--runs 200]
    grep ^totals: OUT     # then divide by --runs

`--names`: new names in each of the three lists (2: a lone flush's two files; 500: a bulk
save's chunk). The statement runs `--runs` times on the driver's cursor, instrumented (after
20 runs not counted). A/B: run it with PYTHONPATH=/tmp/before32/core/src (an extracted
`git archive <rev> core/src`) and without. Prints nothing; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

WARM = 20


def instrument(on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        stdout=subprocess.DEVNULL,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", type=int, default=2, help="new names in each list")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--records", type=int, default=200, help="records saved before")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-lookup-"))
    os.environ["LAKELINE_HOME"] = str(base / "home")
    import lakeline as ll
    from lakeline.artifacts.places import _driver_form, _json, _lookup
    from lakeline.artifacts.reference import LOCAL_ROOT
    from lakeline.instance import current
    from lakeline.storage.keys import REFERENCE_STORAGE

    try:
        ll.init(storage=base / "data", name="lookup-instr")
        instance = current()
        root = Path(instance.storage.root)
        files = []
        for i in range(args.records):
            (root / f"old{i}.txt").write_text(f"old {i}\n")
            files.append(ll.Artifact(root / f"old{i}.txt"))
        ll.save(files)  # in place: records in the storage's key and place indexes
        names = _json([f"new{i}.txt" for i in range(args.names)])
        params = {
            "ref_type": REFERENCE_STORAGE,
            "keys": names,
            "s0": instance.storage.id,
            "v0": names,
            "s1": LOCAL_ROOT,
            "v1": names,
        }
        statement = _lookup(False, True, ((False, False), (True, True)))
        with instance.engine.connect() as conn:
            sql, _, binds, _ = _driver_form(statement, conn.dialect)  # SQLite's: positional
            bound = [params.get(name, default) for name, default, _ in binds]
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            for _ in range(WARM):
                assert cursor.execute(sql, bound).fetchall() == []
            instrument(True)
            for _ in range(args.runs):
                cursor.execute(sql, bound).fetchall()
            instrument(False)
            cursor.close()
        ll.disconnect()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
