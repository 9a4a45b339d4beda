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
