"""Prefect flows whose values are not all files: records holding URLs, an S3 asset that cannot
be reached, and a task returning a file it only read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakeline_prefect import flow, materialize, task
from prefect.cache_policies import INPUTS

UNREACHABLE = "s3://lakeline-unreachable/published/items.csv"


@task
def fetch(item: int) -> dict[str, Any]:
    """A record as an API would return it: its URLs are values, not files."""
    return {
        "id": item,
        "url": f"https://example.org/items/{item}",
        "links": ["http://example.org/", f"https://cdn.example.org/{item}.png"],
    }


@task
def tabulate(records: list[dict[str, Any]], target: Path) -> Path:
    """Writes the records to `target` (the real output of the flow)."""
    target.parent.mkdir(exist_ok=True)
    lines = [f"{r['id']},{r['url']}" for r in records]
    target.write_text("id,url\n" + "\n".join(lines) + "\n")
    return target


@materialize(UNREACHABLE)
def publish(table: Path) -> int:
    """Declares an S3 asset it would publish (there are no credentials to reach it)."""
    return len(table.read_text().splitlines()) - 1


@flow
def catalog_items(ids: list[int], target: Path) -> Path:
    """fetch (mapped) -> tabulate -> publish: 6 runs with the flow's own."""
    records = fetch.map(ids)
    table = tabulate(records, target)
    publish(table)
    return table


@task
def settings_file() -> Path:
    """Reads the project's settings, found by itself, and returns their path."""
    path = Path("data/settings.txt").absolute()
    path.read_text()
    return path


@task
def apply_settings(settings: Path, target: Path) -> Path:
    """Writes an output from the settings."""
    target.parent.mkdir(exist_ok=True)
    target.write_text(settings.read_text().upper())
    return target


@flow
def configured(target: Path) -> Path:
    """settings_file (returns a source it only read) -> apply_settings."""
    return apply_settings(settings_file(), target)


@task
def note_source(src: str, target: Path) -> Path:
    """Writes where its data would come from (a URL it never opens)."""
    target.parent.mkdir(exist_ok=True)
    target.write_text(f"source: {src}\n")
    return target


@flow
def noted_source(src: str, target: Path) -> Path:
    """One task given an S3 URL it does not read."""
    return note_source(src, target)


@task(cache_policy=INPUTS, persist_result=True)
def record_text(artifact: Any) -> str:
    """Takes a lakeline record: Prefect hashes its inputs (JSON, else cloudpickle)."""
    return f"{artifact.key}={artifact.load()}"


@flow
def read_record(artifact: Any) -> str:
    return record_text(artifact)
