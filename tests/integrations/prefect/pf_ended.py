"""Flows whose task runs' ends are recorded after the task ended (`lakeline_prefect.ended`):
files changed by a later task (a file, a folder, an object, a path written after a task
returned it), a body that reads its run, a downstream task, strict mode, a run deleted
meanwhile. Later tasks name what they rewrite by name, not as a path value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lakeline_prefect import flow, task

DOOM: list[Callable[[int], None]] = []  # set by a test: deletes a run, by id


@task
def write(name: str, text: str) -> Path:
    out = Path("out")
    out.mkdir(exist_ok=True)
    target = out / f"{name}.txt"
    target.write_text(text)
    return target.absolute()


@task
def rewrite(name: str) -> Path:
    """Rewrites out/<name>.txt, after the task that wrote it ended."""
    target = Path("out") / f"{name}.txt"
    target.write_text("rewritten by a later task, longer than the first text")
    return target.absolute()


@flow
def written_then_rewritten() -> None:
    write("a", "first")
    rewrite("a")


@task
def shards() -> Path:
    folder = Path("out") / "shards"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0.txt").write_text("alpha")
    (folder / "1.txt").write_text("beta")
    return folder.absolute()


@task
def scribble(name: str) -> None:
    """Overwrites the start of out/<name>/0.txt in place: the same size, and the folder's
    entries (so its own stat) unchanged."""
    with open(Path("out") / name / "0.txt", "r+b") as f:
        f.write(b"ZZ")


@flow
def folder_then_scribble() -> None:
    shards()
    scribble("shards")


@task
def s3_put(url: str, text: str) -> str:
    import fsspec

    with fsspec.open(url, "w") as f:
        f.write(text)
    return url


@task
def s3_overwrite(bucket: str, key: str) -> None:
    import fsspec

    with fsspec.open(f"s3://{bucket}/{key}", "w") as f:
        f.write("overwritten after the task that wrote it\n")


@flow
def put_then_overwrite(url: str, bucket: str, key: str) -> None:
    s3_put(url, "written first\n")
    s3_overwrite(bucket, key)


@task
def promise() -> Path:
    """Returns a path it does not write (no file there at its end)."""
    return (Path("out") / "later.txt").absolute()


@task
def fulfil(name: str) -> Path:
    target = Path("out") / name
    target.parent.mkdir(exist_ok=True)
    target.write_text("written by fulfil")
    return target.absolute()


@flow
def promised_then_fulfilled() -> None:
    promise()
    fulfil("later.txt")


@task
def reads_its_run() -> tuple[str, str]:
    """Reads its run (as a save or a load with the lakeline API does), then the catalog: the
    record of a file an earlier task wrote, with its producer."""
    import lakeline as ll
    from lakeline.lineage.context import current_run

    assert current_run() is not None
    made = ll.Artifact.get(key="out/made.txt")
    producer = ll.Run.get(id=made.run_id)
    return producer.transform.key, producer.status


@flow
def made_then_read() -> tuple[str, str]:
    write("made", "made first")
    return reads_its_run()


@task
def consume(path: Path, suffix: str) -> Path:
    target = path.with_suffix(suffix)
    target.write_text(path.read_text().upper())
    return target


@flow
def chained() -> Path:
    return consume(consume(write("x", "chained words"), ".up"), ".more")


@task
def bad() -> Path:
    return write.fn("bad", "its recording fails")


@task
def after() -> Path:
    return write.fn("after", "runs after bad")


@flow
def bad_then_after() -> None:
    bad()
    after()


@task
def doomed() -> str:
    """Reads its run (written), then the run is deleted (`DOOM`): its finish is refused."""
    from lakeline.lineage.context import current_run

    run = current_run()
    assert run is not None and run.id is not None
    DOOM[0](run.id)
    return "doomed"


@flow
def first_doomed_last() -> None:
    write("first", "before the doomed task")
    doomed()
    write("last", "after the doomed task")


@task
def pick(name: str) -> Path:
    """Returns data/<name>, a file it did not write (recorded as used, role `returned`)."""
    return (Path("data") / name).absolute()


@task
def overwrite(name: str) -> None:
    (Path("data") / name).write_text("overwritten by a later task, longer than the first")


@flow
def picked_then_overwritten() -> None:
    pick("in.txt")
    overwrite("in.txt")


@task
def nap(seconds: float) -> None:
    """A long task: the hooks are idle meanwhile (the flusher writes the batch)."""
    import time

    time.sleep(seconds)


@flow
def written_then_nap(seconds: float) -> None:
    write("early", "before the nap")
    nap(seconds)
