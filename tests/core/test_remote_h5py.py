"""Remote HDF5/h5ad reads and Python's cyclic garbage collector (the h5py/fsspec deadlock).

h5py holds its global lock while it calls a Python file object; fsspec serves the read on its
IO thread. A collection on that thread that frees an h5py object waits for h5py's lock, held
by the thread waiting for the read: both wait forever. The script below makes that collection
certain instead of rare: every S3 request (botocore's `before-send` event, run on fsspec's IO
thread) turns one h5py object into cyclic garbage, and `gc.set_threshold(1)` makes the next
allocation on that thread collect it. It runs in a subprocess: a hang is killed and fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import lakeline as ll
import numpy as np
import pytest
from lakeline.instance import Instance

SCRIPT = """
import faulthandler
import gc
import json
import signal
import sys

import h5py
import lakeline as ll
from lakeline.instance import current
from lakeline.storage.roots import filesystem

faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for stacks on a hang
artifact = ll.Artifact.get(key=sys.argv[1])
config = current().config
fs = filesystem(config.storage, config.storage_options)  # the cached fs lakeline reads with
fs.ls(config.storage.split("://", 1)[1])  # connects: fs.s3 exists from here on

scratch = h5py.File("scratch.h5", "w", driver="core", backing_store=False)
scratch.create_group("g")
spare = [scratch["g"] for _ in range(2000)]  # each holds an h5py object id of its own


def leave_h5py_garbage(**kwargs):
    # runs on fsspec's IO thread: one h5py object in a garbage cycle per request
    if spare:
        cycle = [spare.pop()]
        cycle.append(cycle)


fs.s3.meta.events.register("before-send.s3", leave_h5py_garbage)
gc.collect()
gc.set_threshold(1)
opened = artifact.open()  # anndata.AnnData backed by the remote file, or an h5py.File
try:
    data = opened.X if artifact.suffix == ".h5ad" else opened["x"]
    print(json.dumps({"sum": float(data[:5].sum()), "shape": list(data.shape),
                      "garbage": 2000 - len(spare)}))
finally:
    (opened.file if artifact.suffix == ".h5ad" else opened).close()
"""


@pytest.mark.parametrize("suffix", [".h5ad", ".h5"])
def test_remote_hdf5_read_survives_collections_on_the_io_thread(
    s3_instance: Instance, tmp_path: Path, suffix: str
) -> None:
    """Opening and reading a remote h5ad/HDF5 file while fsspec's IO thread collects h5py
    garbage finishes (it hung before `open_remote_for_h5py` paused the collector)."""
    x = np.random.default_rng(3).random((30, 8)).astype("float32")
    key = f"arrays/gc{suffix}"
    if suffix == ".h5ad":
        ll.Artifact.from_anndata(ad.AnnData(X=x), key=key).save()
    else:
        with h5py.File(tmp_path / "gc.h5", "w") as f:
            f["x"] = x
        ll.Artifact(tmp_path / "gc.h5", key=key).save()
    script = tmp_path / "remote_hdf5.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "LAKELINE_INSTANCE": s3_instance.name}
    process = subprocess.Popen(
        [sys.executable, str(script), key],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # every thread's stack to stderr, then kill
        try:
            out, err = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        pytest.fail(f"the remote read hung (killed after 120 s); its threads:\n{err[-6000:]}")
    assert process.returncode == 0, err
    read = json.loads(out)
    assert read["sum"] == pytest.approx(float(x[:5].sum()), rel=1e-5)
    assert read["shape"] == [30, 8]
    assert read["garbage"] > 0  # the hook ran: requests were made with h5py garbage about
