"""GCS figures against a local emulator: round trips and latency of register, upload, cache.

    uv run python bench/gcs.py [--files 200] [--db sqlite|postgres]

Starts the tests' GCS emulator (gcp-storage-emulator, in memory, on 127.0.0.1) and an
instance on `gs://<bucket>/lake` (SQLite by default), then per file (small text files):
- register in place: an object already in the bucket saved where it is (`ll.Artifact(gs://…)`);
- upload: a local file saved one at a time, and `--files` files in one `ll.save` call;
- cache: the first `cache()` (a download), a second one (served from the verified local copy),
  and `open()` (reads through fsspec after a check of the object's ETag).
Round trips are the HTTP requests gcsfs sends, counted around each call. Times are the
emulator's on this machine, not Google's: they show lakeline's round trips, not network
latency. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from measure import start_postgres, summary

_requests = 0


def _count_requests() -> None:
    """Wrap gcsfs's one place that sends HTTP requests with a counter."""
    from gcsfs.core import GCSFileSystem

    original = GCSFileSystem._request

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _requests
        _requests += 1
        return await original(self, *args, **kwargs)

    GCSFileSystem._request = counted  # type: ignore[method-assign]


def _each(n: int, step: Callable[[int], object]) -> dict[str, Any]:
    """Time `step(i)` for i < n; median/p90 ms and median requests per call."""
    times, trips = [], []
    for i in range(n):
        before = _requests
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
        trips.append(_requests - before)
    return {**summary(times), "requests": statistics.median(trips)}


def measure(n: int, db: str, tmp: Path) -> dict[str, Any]:
    import lakeline as ll
    from lakeline.instance import disconnect
    from lakeline.storage.roots import join, strip_protocol
    from lakeline.testing_servers import GCSServer

    os.environ["LAKELINE_HOME"] = str(tmp / "home")
    os.environ["LAKELINE_CACHE_DIR"] = str(tmp / "home" / "cache")
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    _count_requests()
    server, url = None, None
    if db == "postgres":
        started = start_postgres("gcs")
        if isinstance(started, str):
            return {"skipped": started}
        server, url = started
    try:
        with GCSServer() as gcs:
            gcs.create_bucket("bench")
            instance = ll.init(
                storage="gs://bench/lake", db=url, name="gcs", storage_options=gcs.storage_options
            )
            fs = instance.fs(instance.storage)
            files = tmp / "files"
            files.mkdir()
            for i in range(n):
                (files / f"{i:05d}.txt").write_text(f"record {i}\n")
                fs.pipe_file(
                    strip_protocol(join(instance.storage.root, f"inplace/{i:05d}.txt")),
                    f"in place {i}\n".encode(),
                )
            root = instance.storage.root
            figures: dict[str, Any] = {
                "register in place, one at a time": _each(
                    n, lambda i: ll.Artifact(join(root, f"inplace/{i:05d}.txt")).save()
                ),
                "upload, one at a time": _each(
                    n, lambda i: ll.Artifact(files / f"{i:05d}.txt", key=f"one/{i}.txt").save()
                ),
            }
            before, t0 = _requests, time.perf_counter()
            ll.save([ll.Artifact(files / f"{i:05d}.txt", key=f"bulk/{i}.txt") for i in range(n)])
            bulk_s = time.perf_counter() - t0
            figures[f"upload, {n} in one ll.save"] = {
                "records/s": round(n / bulk_s),
                "requests per file": round((_requests - before) / n, 1),
            }
            arts = ll.Artifact.filter(key__startswith="one/").order_by("key").all()
            figures["cache(), first (download)"] = _each(n, lambda i: arts[i].cache())
            figures["cache(), again (local copy)"] = _each(n, lambda i: arts[i].cache())

            def read(i: int) -> None:
                with arts[i].open() as handle:
                    handle.read()

            figures["open() + read"] = _each(n, read)
            return figures
    finally:
        disconnect()
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gcs-bench-"))
    try:
        figures = measure(args.files, args.db, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"== GCS emulator, {args.db}, {args.files} files")
    for name, value in figures.items():
        if isinstance(value, dict) and "median_ms" in value:
            value = (
                f"median {value['median_ms']:.2f} ms, p90 {value['p90_ms']:.2f} ms, "
                f"{value['requests']:g} requests (n={value['n']})"
            )
        print(f"  {name:36} {value}")


if __name__ == "__main__":
    main()
