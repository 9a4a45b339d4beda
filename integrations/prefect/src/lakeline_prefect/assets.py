"""Prefect assets (`@materialize`, `asset_deps`) as lakeline artifacts.

An asset whose key names a file (`file://`, `s3://`, `gs://`, `az://`, ...) is recorded like any
other file: materialized assets are outputs of the task run, upstream assets and `asset_deps`
are its inputs. Other assets (tables, dashboards: `postgres://...`, `snowflake://...`) have no
bytes to hash: they are recorded as references (`Artifact.reference`: location = the asset
key, `available=False`). Every asset key, with the assets' properties, is also in the task
run's params under `@prefect.assets`. (Metadata added with `add_asset_metadata` reaches
Prefect's events only: Prefect drops its asset context before state hooks run.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect.client.schemas.objects import TaskRunResult
from prefect.context import FlowRunContext

# object stores whose URLs lakeline's fsspec storage layer opens as files
FILE_SCHEMES = frozenset({"file", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})


@dataclass
class TaskAssets:
    """The assets of one task run: what it materialized and what it referenced."""

    materialized: list[str] = field(default_factory=list)
    referenced: list[str] = field(default_factory=list)
    by: str | None = None
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.materialized or self.referenced)

    def summary(self) -> dict[str, Any]:
        """What goes into the run's params (JSON)."""
        out: dict[str, Any] = {"materialized": self.materialized, "referenced": self.referenced}
        if self.by:
            out["by"] = self.by
        if self.properties:
            out["properties"] = self.properties
        return out


NONE = TaskAssets()  # a task run without assets (most): one object, read only


def task_assets(task: Any, task_run: Any) -> TaskAssets:
    """The assets of a task run: what its task materializes, its `asset_deps`, and the assets
    of the upstream task runs it received values from (as Prefect itself propagates them);
    `NONE` (not to be changed) when there are none."""
    materialized = set(getattr(task, "assets", None) or ())
    upstream = set(getattr(task, "asset_deps", None) or ())
    flow_context = FlowRunContext.get()
    if not materialized and not upstream and not getattr(flow_context, "task_run_assets", None):
        return NONE  # no asset anywhere in the flow run yet (most flows)
    if flow_context is not None:
        for name, inputs in (task_run.task_inputs or {}).items():
            if name == "__parents__":
                continue
            for item in inputs:
                if isinstance(item, TaskRunResult):
                    upstream |= flow_context.task_run_assets.get(item.id, set())
    found = TaskAssets(
        materialized=sorted(a.key for a in materialized),
        referenced=sorted(a.key for a in upstream - materialized),
        by=getattr(task, "materialized_by", None) if materialized else None,
    )
    for asset in materialized | upstream:
        if asset.properties is not None:
            props = asset.properties.model_dump(exclude_unset=True, mode="json")
            if props:
                found.properties[asset.key] = props
    return found


def asset_file(key: str, root: str) -> str | None:
    """The path or URL of a file asset (`file:///abs/x.csv` -> `/abs/x.csv`; a relative
    `file://out/x.csv` -> `<root>/out/x.csv`), or None for other assets."""
    import os
    from urllib.parse import unquote

    scheme, sep, rest = key.partition("://")
    if not sep or scheme.lower() not in FILE_SCHEMES or not rest:
        return None
    if scheme.lower() == "file":
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        return os.path.join(root, unquote(rest))  # an absolute path stays as it is
    return key
