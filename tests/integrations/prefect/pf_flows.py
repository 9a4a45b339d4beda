"""Small real Prefect flows the tests run: files in a workflow folder, a mapped task, a
failing task, a retried task and a cached task."""

from __future__ import annotations

from pathlib import Path

from lakeline_prefect import flow, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

ATTEMPTS: dict[str, int] = {}


@task
def split(raw: Path) -> list[Path]:
    """Split a text file in two halves next to it, in out/."""
    text = raw.read_text()
    out = raw.parent.parent / "out"
    out.mkdir(exist_ok=True)
    half = len(text) // 2
    parts = [out / "a.txt", out / "b.txt"]
    parts[0].write_text(text[:half])
    parts[1].write_text(text[half:])
    return parts


@task
def count(part: Path) -> Path:
    """Count the words of a part."""
    target = part.with_suffix(".count")
    target.write_text(str(len(part.read_text().split())))
    return target


@task
def merge(counts: list[Path], total: Path) -> Path:
    """Sum the counts into `total` (an output path given as a parameter)."""
    total.write_text(str(sum(int(p.read_text()) for p in counts)))
    return total


@flow
def words(raw: Path) -> Path:
    """split -> count (mapped) -> merge."""
    parts = split(raw)
    counts = count.map(parts)
    return merge(counts, raw.parent.parent / "out" / "total.txt")


@task
def explode(path: Path) -> None:
    """Always fails."""
    raise ValueError(f"cannot read {path.name}")


@flow
def failing(raw: Path) -> None:
    """A flow whose task fails."""
    explode(raw)


@task(retries=2, retry_delay_seconds=0)
def flaky(tag: str) -> str:
    """Fails on its first attempt, per tag."""
    ATTEMPTS[tag] = ATTEMPTS.get(tag, 0) + 1
    if ATTEMPTS[tag] == 1:
        raise RuntimeError("first attempt fails")
    return f"{tag} ok after {ATTEMPTS[tag]}"


@flow
def retried(tag: str) -> str:
    """A flow whose task succeeds on its second attempt."""
    return flaky(tag)


@task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
def summarize(path: Path) -> int:
    """Cached across flow runs by its input."""
    return len(path.read_text().split())


@flow
def cached(raw: Path) -> int:
    """Run twice: the second run's task is a cache hit."""
    return summarize(raw)


@task
def shout(raw: Path) -> Path:
    """Upper-case a file into out/ (called by subflows)."""
    out = raw.parent.parent / "out"
    out.mkdir(exist_ok=True)
    target = out / f"{raw.stem}.upper"
    target.write_text(raw.read_text().upper())
    return target


@flow
def inner(raw: Path) -> Path:
    """A flow that other flows and tasks call."""
    return shout(raw)


@task
def launch(raw: Path) -> Path:
    """A task that runs a flow."""
    return inner(raw)


@flow
def outer(raw: Path, other: Path) -> list[Path]:
    """Calls `inner` as a subflow, and from inside a task."""
    return [inner(raw), launch(other)]


@task
def catalog(raw: Path, report: Path) -> str:
    """Uses lakeline's own API in a task body: loads an artifact, saves another."""
    import lakeline as ll

    text = ll.Artifact.get(key="data/raw.txt").load()
    report.write_text(f"{len(text.split())} words\n")
    saved = ll.Artifact(report, key="reports/words.txt", description="word count").save()
    return saved.uid


@flow
def cataloged(raw: Path, report: Path) -> str:
    """Saves a note with the lakeline API in the flow body, then runs `catalog`."""
    import lakeline as ll

    notes = raw.parent / "notes.txt"
    notes.write_text("counted by catalog\n")
    ll.Artifact(notes, key="data/notes.txt").save()
    return catalog(raw, report)


@task
def stamp(name: str) -> str:
    """Reads data/<name>.txt and writes out/<name>.done by name only (no path values), and saves
    a copy with the lakeline API: only the audit and the run context attribute them."""
    import lakeline as ll

    text = Path(f"data/{name}.txt").read_text()
    Path("out").mkdir(exist_ok=True)
    Path(f"out/{name}.done").write_text(text.upper())
    copy = Path(f"out/{name}-copy.txt")
    copy.write_text(text)
    ll.Artifact(copy, key=f"copies/{name}.txt").save()
    return name


@flow
def stamped(names: list[str]) -> list[str]:
    """`stamp` mapped over names on Prefect's thread pool."""
    return [f.result() for f in stamp.map(names)]


@task
def s3_upper(src: str, dest: str) -> str:
    """Reads and writes S3 objects through fsspec; returns the written URL."""
    import fsspec

    with fsspec.open(src, "r") as f:
        text = f.read()
    with fsspec.open(dest, "w") as f:
        f.write(text.upper())
    return dest


@flow
def on_s3(src: str, dest: str) -> str:
    """A flow on remote files."""
    return s3_upper(src, dest)


@task
async def note(name: str, folder: Path) -> str:
    """An async task saving a file with the lakeline API after yielding to the event loop."""
    import asyncio

    import lakeline as ll

    path = folder / f"{name}-note.txt"
    path.write_text(name)
    await asyncio.sleep(0.01)  # the other task runs meanwhile
    return ll.Artifact(path, key=f"notes/{name}.txt").save().uid


@flow
async def noted(folder: Path) -> list[str]:
    """Two async tasks at once on one event loop."""
    import asyncio

    return list(await asyncio.gather(note("first", folder), note("second", folder)))
