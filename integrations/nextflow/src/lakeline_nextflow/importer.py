"""`import_run`: find what a Nextflow run left behind, read it all, merge, then record.

Every source is optional and read completely before anything is recorded: a source that
cannot be read is reported and left out whole, so a bad file never leaves half a run behind.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lakeline_nextflow.files import producer_edges
from lakeline_nextflow.lineage_store import read_store
from lakeline_nextflow.model import Report, WorkflowPlan
from lakeline_nextflow.nflog import log_files, read_history, read_log
from lakeline_nextflow.plan import Sources, build_plan
from lakeline_nextflow.publish import match_published
from lakeline_nextflow.rocrate import read_crate
from lakeline_nextflow.trace import read_report, read_trace

if TYPE_CHECKING:
    from lakeline.instance import Instance

T = TypeVar("T")
PathLike = str | os.PathLike[str]
TRACE_GLOBS: tuple[str, ...] = (
    "trace*.txt",
    "execution_trace*.txt",
    "pipeline_info/execution_trace*.txt",
)
TRACE_GLOBS += ("*/pipeline_info/execution_trace*.txt",)
REPORT_GLOBS: tuple[str, ...] = ("execution_report*", "pipeline_info/execution_report*")
REPORT_GLOBS += ("*/pipeline_info/execution_report*",)
CRATE_GLOBS: tuple[str, ...] = ("ro-crate-metadata.json", "*/ro-crate-metadata.json")
READ_ERRORS = (OSError, ValueError, UnicodeError, KeyError, TypeError, AttributeError)


def _read(
    report: Report, kind: str, path: Path, reader: Callable[[Path, list[str]], T]
) -> T | None:
    """Run a reader; its problems become warnings; a failure leaves the whole source out."""
    problems: list[str] = []
    try:
        result = reader(path, problems)
    except READ_ERRORS as exc:
        report.warn(f"{path}: cannot read this {kind} ({exc}): not imported")
        return None
    finally:
        for problem in problems:
            report.warn(problem)
    report.source(kind, str(path))
    return result


def _glob(folder: Path, patterns: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        found += [p for p in sorted(folder.glob(pattern)) if p.is_file() and p not in found]
    return found


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    from lakeline.errors import LakelineError

    if name.upper() == "UTC":
        return UTC
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except (KeyError, ValueError, OSError) as exc:
        raise LakelineError(
            f"unknown time zone {name!r} (use a name such as Europe/Berlin)"
        ) from exc


def _pipeline_info(launch_dir: Path, report: Report) -> dict[str, Any]:
    """nf-core's `pipeline_info/`: software versions (pipeline name, version) and params."""
    info: dict[str, Any] = {}
    for path in _glob(launch_dir, ("pipeline_info/*versions.yml", "*/pipeline_info/*versions.yml")):
        lines = path.read_text(errors="replace").splitlines()
        if "Workflow:" not in [line.strip() for line in lines]:
            continue
        start = [line.strip() for line in lines].index("Workflow:")
        for line in lines[start + 1 :]:
            if not line.startswith((" ", "\t")):
                break
            key, _, value = line.strip().partition(":")
            value = value.strip().strip("'\"")
            if key.lower() == "nextflow":
                info["nextflow"] = value
            elif key and "name" not in info:
                info["name"], info["version"] = key.strip("'\""), value or None
        report.source("pipeline_info", str(path))
    for path in _glob(launch_dir, ("pipeline_info/params_*.json", "*/pipeline_info/params_*.json")):
        try:
            params = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            report.warn(f"{path}: unreadable params file ({exc}): skipped")
            continue
        if isinstance(params, dict):
            info["params"] = params
            report.source("params", str(path))
    return info


def collect(
    launch_dir: Path,
    *,
    traces: Sequence[PathLike] = (),
    reports: Sequence[PathLike] = (),
    lineage_store: PathLike | None = None,
    rocrate: PathLike | None = None,
    work_dir: PathLike | None = None,
    timezone: str | None = None,
    report: Report,
) -> Sources:
    """Read every source (given, or found in the launch dir)."""
    sources = Sources(launch_dir=launch_dir, tz=_zone(timezone))
    sources.work_dir = None if work_dir is None else Path(work_dir)
    for path in log_files(launch_dir):
        launch = _read(report, "log", path, read_log)
        if launch is not None:
            launch.file_time = datetime.fromtimestamp(path.stat().st_mtime)
            sources.logs.append(launch)
    history = launch_dir / ".nextflow" / "history"
    if history.is_file():
        sources.history = _read(report, "history", history, read_history) or []
    for path in [Path(p) for p in traces] or _glob(launch_dir, TRACE_GLOBS):
        rows = _read(report, "trace", path, read_trace)
        if rows:
            sources.tables.append((f"trace:{path.name}", rows))
    for path in [Path(p) for p in reports] or _glob(launch_dir, REPORT_GLOBS):
        records = _read(report, "report", path, read_report)
        if records:
            sources.tables.append((f"report:{path.name}", records))
    store = Path(lineage_store) if lineage_store else launch_dir / ".lineage"
    if lineage_store or store.is_dir():
        sources.store = _read(report, "lineage", store, read_store)
    crates = [Path(rocrate)] if rocrate else _glob(launch_dir, CRATE_GLOBS)
    for path in crates[:1]:
        sources.crate = _read(report, "rocrate", path, read_crate)
    sources.pipeline = _pipeline_info(launch_dir, report)
    return sources


def publish_dirs(launch_dir: Path, plans: list[WorkflowPlan]) -> list[Path]:
    """Where published copies may be: each run's `params.outdir`, else `results/`."""
    found = []
    for plan in plans:
        params = plan.params.get("params") or {}
        outdir = params.get("outdir") if isinstance(params, dict) else None
        if isinstance(outdir, str) and outdir and "://" not in outdir:
            found.append(launch_dir / outdir)
    if not found and (launch_dir / "results").is_dir():
        found.append(launch_dir / "results")
    return list(dict.fromkeys(found))


def import_run(
    launch_dir: PathLike = ".",
    *,
    trace: Sequence[PathLike] = (),
    report_html: Sequence[PathLike] = (),
    lineage_store: PathLike | None = None,
    rocrate: PathLike | None = None,
    work_dir: PathLike | None = None,
    publish: Sequence[PathLike] = (),
    timezone: str | None = None,
    dry_run: bool = False,
    instance: Instance | None = None,
) -> Report:
    """Import a Nextflow run (every launch of every session found) as lakeline lineage.

    `launch_dir`: where `nextflow run` ran; the other arguments add or replace sources.
    `timezone`: the zone of wall-clock times in logs and traces (default: this machine's).
    With `dry_run`, nothing is recorded: the report says what would be.
    """
    from lakeline.errors import LakelineError

    folder = Path(launch_dir).resolve()
    if not folder.is_dir():
        raise LakelineError(f"launch dir {folder} does not exist or is not a folder")
    report = Report(launch_dir=str(folder))
    sources = collect(
        folder,
        traces=trace,
        reports=report_html,
        lineage_store=lineage_store,
        rocrate=rocrate,
        work_dir=work_dir,
        timezone=timezone,
        report=report,
    )
    has_work = sources.work_dir is not None or (folder / "work").is_dir()
    if not (sources.logs or sources.tables or sources.store or sources.crate or has_work):
        if sources.history:
            report.note("only .nextflow/history was found: it lists launches but no tasks")
        problems = f" ({'; '.join(report.warnings)})" if report.warnings else ""
        raise LakelineError(
            f"no Nextflow run to import in {folder}: no readable .nextflow.log, trace file, "
            f"execution report, work dir, lineage store or RO-Crate{problems}"
        )
    plans = build_plan(sources, report)
    dirs = [Path(p) for p in publish] or publish_dirs(folder, plans)
    exclude = {p.work_root for p in plans if p.work_root}
    match_published(plans, dirs, report, exclude)
    report.published = sum(len(t.published) for p in plans for t in p.tasks.values())
    _summarise(plans, report)
    if not dry_run:
        from lakeline_nextflow.record import record

        record(plans, folder, report, instance)
    return report


def _summarise(plans: list[WorkflowPlan], report: Report) -> None:
    total: Counter[str] = Counter()
    for plan in plans:
        states = Counter(t.status or "started" for t in plan.tasks.values())
        total += states
        report.cached += len(plan.cached)
        report.workflows.append(
            {
                "session": plan.key,
                "pipeline": plan.pipeline,
                "version": plan.version,
                "status": plan.status,
                "launches": [m.run_name or m.source for m in plan.launches],
                "tasks": len(plan.tasks),
                "by_status": dict(sorted(states.items())),
                "cached": len(plan.cached),
                "processes": len({t.process for t in plan.tasks.values()}),
            }
        )
    refs = [r for p in plans for t in p.tasks.values() for r in (*t.inputs, *t.outputs)]
    refs += [r for p in plans for t in p.tasks.values() for pair in t.published for r in pair]
    # gone files are recorded as references (the recorder replaces these with what it wrote)
    report.referenced = sorted(
        {r.path for r in refs if "://" not in r.path and not os.path.exists(r.path)}
    )
    report.tasks = sum(total.values())
    report.by_status = dict(sorted(total.items()))
    report.producer_edges = producer_edges(plans)
