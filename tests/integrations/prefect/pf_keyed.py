"""Real Prefect flows: a task saves its file in place under a key with the lakeline API (the
path is not in its result), and a task reads that file by its path, in the same flow run or in
a later one."""

from __future__ import annotations

from pathlib import Path

from lakeline_prefect import flow, task


@task
def keep(name: str) -> str:
    """Writes out/<name>.txt and saves it where it is under the key kept/<name>.txt."""
    import lakeline as ll

    path = Path("out") / f"{name}.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"kept {name}\n")
    ll.Artifact(path, key=f"kept/{name}.txt").save()
    return name


@task
def measure(path: Path) -> int:
    """Reads the file by its path (a parameter)."""
    return len(path.read_text())


@flow
def kept_and_measured(name: str) -> int:
    """keep, then measure its file."""
    keep(name)
    return measure(Path("out") / f"{name}.txt")


@flow
def kept(name: str) -> str:
    return keep(name)


@flow
def measured(path: Path) -> int:
    return measure(path)
