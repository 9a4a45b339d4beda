"""Google Cloud Storage (`gs://`) next to local and S3, against a GCS emulator on 127.0.0.1.

The emulator (gcp-storage-emulator) runs in its own process for the session, like the moto
S3 server; every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from lakeline.cli import cli
from lakeline.errors import IntegrityProblem, StorageError
from lakeline.instance import Instance
from lakeline.storage.roots import join, strip_protocol


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result


def object_path(instance: Instance, artifact: ll.Artifact) -> str:
    return strip_protocol(join(instance.storage.root, artifact.store_key))


def objects(instance: Instance) -> list[str]:
    fs = instance.fs(instance.storage)
    base = strip_protocol(join(instance.storage.root, ".lakeline/objects"))
    fs.invalidate_cache(base)
    return sorted(fs.find(base)) if fs.exists(base) else []


def test_upload_cache_open_and_read_checks(gcs_instance: Instance, tmp_path: Path) -> None:
    assert gcs_instance.storage.root.startswith("gs://") and gcs_instance.storage.type == "gs"
    path = tmp_path / "x.bin"
    path.write_bytes(b"0123456789")
    art = ll.Artifact(path, key="x.bin").save()
    assert art.path.startswith("gs://") and not art.in_place
    fs = gcs_instance.fs(gcs_instance.storage)
    assert fs.cat_file(object_path(gcs_instance, art)) == b"0123456789"  # uploaded
    assert art.store_tag is not None and art.store_tag.startswith("e:")
    cached = Path(art.cache())
    assert cached.read_bytes() == b"0123456789"
    assert str(cached).startswith(os.environ["LAKELINE_CACHE_DIR"])
    with ll.Artifact.get(key="x.bin").open() as handle:
        assert handle.read() == b"0123456789"
    # bytes changed behind lakeline's back (same size): opening and a fresh download refuse
    fs.pipe_file(object_path(gcs_instance, art), b"9876543210")
    with pytest.raises(IntegrityProblem, match="do not match its recorded sha256"):
        art.open()
    cached.unlink()
    with pytest.raises(IntegrityProblem):
        art.cache()
    assert not cached.exists()


def test_folder_upload_and_cache(gcs_instance: Instance, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("aaa")
    (folder / "sub" / "b.txt").write_text("bbb")
    art = ll.Artifact(folder, key="run").save()
    assert art.n_files == 2
    cached = Path(ll.Artifact.get(key="run").cache())
    assert (cached / "a.txt").read_text() == "aaa"
    assert (cached / "sub" / "b.txt").read_text() == "bbb"


def test_register_in_place_copies_nothing(gcs_instance: Instance) -> None:
    fs = gcs_instance.fs(gcs_instance.storage)
    location = join(gcs_instance.storage.root, "runs/7/counts.tsv")
    fs.pipe_file(strip_protocol(location), b"g\tn\nA\t1\n")
    art = ll.Artifact(location).save()
    assert art.in_place and art.key == "runs/7/counts.tsv" and art.path == location
    assert objects(gcs_instance) == []  # nothing copied
    assert Path(art.cache()).read_bytes() == b"g\tn\nA\t1\n"
    art.delete()
    fs.invalidate_cache()
    assert fs.exists(strip_protocol(location))  # in-place bytes are never removed


def test_verify_and_gc(gcs_instance: Instance, tmp_path: Path) -> None:
    for name in ("x", "y"):
        (tmp_path / f"{name}.txt").write_text(f"{name} bytes")
    x = ll.Artifact(tmp_path / "x.txt", key="x.txt").save()
    y = ll.Artifact(tmp_path / "y.txt", key="y.txt").save()
    assert "all match" in run("verify", "--all").output
    fs = gcs_instance.fs(gcs_instance.storage)
    fs.pipe_file(object_path(gcs_instance, y), b"Y bytes")
    out = run("verify", "--all", code=1).output
    assert f"artifact {y.uid} (y.txt)" in out and "x.txt" not in out.replace("verified", "")
    # an object no record references (a save killed between upload and commit)
    orphan = strip_protocol(join(gcs_instance.storage.root, ".lakeline/objects/ab/orphan.txt"))
    fs.pipe_file(orphan, b"left behind")
    assert "nothing to remove" in run("gc").output  # younger than the grace period
    listed = run("gc", "--grace", "0", "--dry-run").output
    assert "would remove 1 items" in listed and "orphan.txt" in listed
    assert "removed 1 items" in run("gc", "--grace", "0", "--yes").output
    assert objects(gcs_instance) == sorted(
        [object_path(gcs_instance, x), object_path(gcs_instance, y)]
    )


def test_a_missing_gcsfs_names_the_extra(tmp_path: Path) -> None:
    """In a process where gcsfs cannot be imported, a gs:// storage is a one-line error
    naming `lakeline[gcs]`."""
    code = (
        "import sys; sys.modules['gcsfs'] = None\n"
        "from lakeline.storage.roots import filesystem\n"
        "filesystem('gs://bucket/lake')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "lakeline[gcs]" in done.stderr and StorageError.__name__ in done.stderr


def test_records_of_an_instance_on_gcs_are_read_from_a_local_instance(
    lakeline_home: Path, tmp_path: Path, gcs_server: Any, gcs_bucket: str, postgres_url: str
) -> None:
    """Across storages: a local SQLite instance reads a GCS instance's records and bytes
    through `using()`, with the GCS instance's own storage options."""
    from lakeline.artifacts.save import save_artifacts

    atlas = ll.init(
        storage=f"gs://{gcs_bucket}/lake",
        db=postgres_url,
        name="atlas",
        storage_options=gcs_server.storage_options,
    )
    (tmp_path / "pbmc.csv").write_text("a,b\n5,6\n")
    save_artifacts([ll.Artifact(tmp_path / "pbmc.csv", key="sc/pbmc.csv")], atlas)
    ll.init(storage=tmp_path / "lab", name="lab")  # local SQLite, no GCS options: current
    art = ll.Artifact.using("atlas").get(key="sc/pbmc.csv")
    assert art.path.startswith(f"gs://{gcs_bucket}/lake/")
    assert art.load()["a"].tolist() == [5]
    assert Path(art.cache()).read_text() == "a,b\n5,6\n"
    assert ll.Artifact.filter().count() == 0


def test_transfer_from_a_gcs_instance_to_a_local_one_copies_no_bytes(
    lakeline_home: Path,
    tmp_path: Path,
    gcs_server: Any,
    gcs_bucket: str,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local instance has no GCS options of its own: it reaches the bucket through the
    standard STORAGE_EMULATOR_HOST variable (as S3 through AWS_ENDPOINT_URL)."""
    from lakeline.artifacts.save import save_artifacts

    atlas = ll.init(
        storage=f"gs://{gcs_bucket}/lake",
        db=postgres_url,
        name="atlas",
        storage_options=gcs_server.storage_options,
    )
    (tmp_path / "pbmc.csv").write_text("a,b\n5,6\n")
    save_artifacts([ll.Artifact(tmp_path / "pbmc.csv", key="sc/pbmc.csv")], atlas)
    lab = ll.init(storage=tmp_path / "lab", name="lab")  # local SQLite: current
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint_url)
    source = ll.Artifact.using("atlas").get(key="sc/pbmc.csv")
    uid = source.uid
    art = source.save()  # a transfer into lab
    assert art.uid == uid and art.instance.name == "lab"
    assert art.path.startswith(f"gs://{gcs_bucket}/lake/")
    assert f"gs://{gcs_bucket}/lake" in [s.root for s in lab.storages()]
    assert not (tmp_path / "lab" / ".lakeline" / "objects").exists()  # no byte copied
    assert ll.Artifact.get(uid).load()["a"].tolist() == [5]
    assert Path(ll.Artifact.get(uid).cache()).read_text() == "a,b\n5,6\n"


def test_cli_init_on_gcs_with_storage_options(
    lakeline_home: Path, tmp_path: Path, gcs_server: Any, gcs_bucket: str
) -> None:
    """The options are given as for S3: `--storage-option KEY=VALUE` at `lakeline init`."""
    run(
        *("init", "--storage", f"gs://{gcs_bucket}/lake", "--name", "cloud"),
        *("--storage-option", f"endpoint_url={gcs_server.endpoint_url}"),
        *("--storage-option", "token=anon"),
    )
    (tmp_path / "reads.csv").write_text("read\nACGT\n")
    run("save", str(tmp_path / "reads.csv"), "--key", "raw/reads.csv")
    art = ll.Artifact.get(key="raw/reads.csv")
    assert art.path.startswith(f"gs://{gcs_bucket}/lake/.lakeline/objects/")
    assert ll.connect("cloud").config.storage_options == {
        "endpoint_url": gcs_server.endpoint_url,
        "token": "anon",
    }
    assert "all match" in run("verify", "--all").output
