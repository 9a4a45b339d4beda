"""Nextflow's data-lineage store (`lineage.enabled`, >= 25.04): `.lineage/<key>/.data.json`.

Records are `{"version": "lineage/v1beta1", "kind": ..., "spec": {...}}`. TaskRun records sit
at `<task hash>`, FileOutput records at `<task hash>/<relpath>` (task outputs) or
`<workflow-run hash>/<relpath>` (published copies, whose `source` names the task output).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeline_nextflow.values import FULL_HASH, load_json, strip_uri

METADATA_FILE = ".data.json"
LID = "lid://"


@dataclass
class LinInput:
    """A task input: an upstream task output (`lid://<hash>/<relpath>`) or an external file."""

    name: str
    producer: str | None = None
    relpath: str | None = None
    path: str | None = None
    checksum: str | None = None


@dataclass
class LinOutput:
    """A FileOutput record."""

    key: str
    path: str
    task: str | None  # producing task hash (None for a workflow-level copy)
    source: str | None  # the LID it was copied from
    checksum: str | None
    size: int | None
    workflow_run: str | None


@dataclass
class LinTask:
    """A TaskRun record."""

    hash: str
    session: str | None
    name: str | None
    script: str | None
    container: str | None
    conda: str | None
    workflow_run: str | None
    inputs: list[LinInput] = field(default_factory=list)


@dataclass
class LineageStore:
    """Everything read from one store."""

    root: Path
    tasks: dict[str, LinTask] = field(default_factory=dict)
    outputs: list[LinOutput] = field(default_factory=list)
    workflow_runs: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_lid(value: str) -> tuple[str, str]:
    """`lid://<hash>/<relpath>` -> (hash, relpath); relpath is "" for the record itself."""
    body = value[len(LID) :] if value.startswith(LID) else value
    head, _, rest = body.partition("/")
    return head, rest.split("#", 1)[0]


def _checksum(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("value"):
        return f"{value.get('algorithm') or 'unknown'}:{value['value']}"
    return None


def _inputs(spec: dict[str, Any]) -> list[LinInput]:
    found = []
    for param in spec.get("input") or []:
        if not isinstance(param, dict) or param.get("type") not in ("path", "file"):
            continue
        values = param.get("value")
        for item in values if isinstance(values, list) else [values]:
            name = str(param.get("name") or "")
            if isinstance(item, str) and item.startswith(LID):
                producer, relpath = parse_lid(item)
                found.append(LinInput(name=name, producer=producer, relpath=relpath))
            elif isinstance(item, dict) and item.get("path"):
                path = strip_uri(str(item["path"]))
                checksum = _checksum(item.get("checksum"))
                found.append(LinInput(name=name, path=path, checksum=checksum))
            elif isinstance(item, str):
                found.append(LinInput(name=name, path=strip_uri(item)))
    return found


def read_record(key: str, record: Any, store: LineageStore, problems: list[str]) -> None:
    """Add one record (stored under `key`) to `store`."""
    if not isinstance(record, dict) or not isinstance(record.get("spec"), dict):
        problems.append(f"lineage record {key}: not a lineage record (no `spec`): skipped")
        return
    version = str(record.get("version", ""))
    if not version.startswith("lineage/"):
        problems.append(f"lineage record {key}: unknown version {version!r}: read as v1beta1")
    kind, spec = record.get("kind"), record["spec"]
    head = key.partition("/")[0]
    if kind == "TaskRun":
        if not FULL_HASH.match(head):
            problems.append(f"lineage record {key}: a TaskRun not keyed by a task hash: skipped")
            return
        store.tasks[head] = LinTask(
            hash=head,
            session=spec.get("sessionId"),
            name=spec.get("name"),
            script=spec.get("script"),
            container=spec.get("container"),
            conda=spec.get("conda"),
            workflow_run=spec.get("workflowRun"),
            inputs=_inputs(spec),
        )
    elif kind == "FileOutput":
        task = spec.get("taskRun")
        store.outputs.append(
            LinOutput(
                key=key,
                path=strip_uri(str(spec.get("path") or "")),
                task=parse_lid(task)[0] if isinstance(task, str) else None,
                source=spec.get("source"),
                checksum=_checksum(spec.get("checksum")),
                size=spec.get("size") if isinstance(spec.get("size"), int) else None,
                workflow_run=spec.get("workflowRun"),
            )
        )
    elif kind == "WorkflowRun":
        store.workflow_runs[head] = spec
    elif kind not in ("TaskOutput", "WorkflowOutput", "AgentRun"):
        problems.append(f"lineage record {key}: unknown kind {kind!r}: skipped")


def read_store(root: Path, problems: list[str]) -> LineageStore:
    """Every record under a `.lineage` store folder."""
    if not root.is_dir():
        raise ValueError(f"{root}: not a lineage store folder")
    store = LineageStore(root=root)
    files = sorted(root.rglob(METADATA_FILE))
    if not files:
        raise ValueError(f"{root}: no lineage records (`<key>/{METADATA_FILE}`) in this folder")
    for path in files:
        key = path.parent.relative_to(root).as_posix()
        try:
            record = load_json(path.read_text(encoding="utf-8"), str(path))
        except (OSError, ValueError) as exc:
            problems.append(f"unreadable lineage record ({exc}): skipped")
            continue
        read_record(key, record, store, problems)
    return store
