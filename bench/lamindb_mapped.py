"""LaminDB's Collection.mapped() with a torch DataLoader, for comparison with bench/arrays.py.

Runs in a separate environment with LaminDB (never a lakeline dependency), e.g.:

    python3 -m venv /tmp/lamin-venv
    /tmp/lamin-venv/bin/pip install 'lamindb==2.12.*' torch==2.13.0
    /tmp/lamin-venv/bin/python bench/lamindb_mapped.py --data ../shared/data

It makes a throwaway local LaminDB instance (SQLite) under a temporary folder, saves the
*.h5ad files of --data as artifacts, and times samples/s of a DataLoader (batch 256, 2 workers,
shuffled, persistent workers; one warm-up epoch, then --epochs epochs) over
`Collection.mapped(join=...)`. Same protocol as `bench/arrays.py --only mapped`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of .h5ad files")
    parser.add_argument("--join", choices=["inner", "outer"], default="inner")
    parser.add_argument("--obs-key", help="an obs column to encode as labels")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    files = sorted(args.data.resolve().glob("*.h5ad"))
    with tempfile.TemporaryDirectory(prefix="lamindb-bench-") as tmp:
        os.environ["LAMIN_SETTINGS_DIR"] = str(Path(tmp) / "settings")
        os.environ["HOME"] = tmp
        lamin = Path(sys.executable).with_name("lamin")
        work = Path(tmp) / "work"
        work.mkdir()
        os.chdir(work)  # lamin writes .lamin/ into the working directory
        subprocess.run([str(lamin), "init", "--storage", f"{tmp}/store"], check=True)
        import lamindb as ln
        import torch

        # Saving a file from outside the storage root asks LaminDB's hub whether the instance
        # is registered there (network); this machine has no route to it, so say "no" up front.
        ln.setup.settings.instance._is_on_hub = False

        arts = [ln.Artifact(str(f), key=f"real/{f.name}").save() for f in files]
        collection = ln.Collection(arts, key="real").save()
        with collection.mapped(
            join=args.join, obs_keys=[args.obs_key] if args.obs_key else None
        ) as ds:
            n_vars = ds[0]["X"].shape[-1]
            loader = torch.utils.data.DataLoader(
                ds, batch_size=256, num_workers=2, shuffle=True, persistent_workers=True
            )
            for _ in loader:  # warm-up epoch: starts the workers, opens their handles
                pass
            t = time.perf_counter()
            n = sum(batch["X"].shape[0] for _ in range(args.epochs) for batch in loader)
            rate = n / (time.perf_counter() - t)
        print(
            f"LaminDB {ln.__version__} Collection.mapped(join={args.join!r}) {len(ds)}x{n_vars}"
            f" + DataLoader(batch 256, 2 workers, shuffle): {rate:,.0f} samples/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
