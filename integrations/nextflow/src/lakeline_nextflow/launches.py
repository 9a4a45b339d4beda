"""Assembling launches: logs, history and trace files joined; years and time zones resolved.

A trace file (or report) belongs to the launch whose log lists the same short hashes; a log
line's year comes from the history, a matched trace, or the file's modification time; wall
clock times get a time zone (given, inferred from a trace/report pair, or this machine's).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from lakeline_nextflow.model import HistoryEntry, Launch, Report, TaskObs
from lakeline_nextflow.nflog import resolve_years, year_near
from lakeline_nextflow.values import local_time

_PRECEDENCE = ("report:", "trace:", "weblog", "log:")
_STAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})_(\d{2})-(\d{2})-(\d{2})")


def _rank(obs: TaskObs) -> int:
    return next((i for i, p in enumerate(_PRECEDENCE) if obs.source.startswith(p)), 9)


def combine(group: list[TaskObs]) -> TaskObs:
    """One observation from several of the same task in one launch (richest source first)."""
    ordered = sorted(group, key=_rank)
    merged = TaskObs(source="+".join(sorted({o.source for o in group})))
    for spec in dataclass_fields(TaskObs):
        if spec.name in ("source", "fields"):
            continue
        for obs in ordered:
            value = getattr(obs, spec.name)
            if value is not None:
                setattr(merged, spec.name, value)
                break
    for obs in reversed(ordered):
        merged.fields.update(obs.fields)
    if any(o.status == "CACHED" for o in group) and merged.status != "FAILED":
        merged.status = "CACHED"
    return merged


def shorts(tasks: list[TaskObs]) -> set[str]:
    return {t.short for t in tasks if t.short}


def _stamp_of(label: str) -> datetime | None:
    found = _STAMP.search(label)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in found.groups())
    return datetime(year, month, day, hour, minute, second)


def _match(rows: list[TaskObs], label: str, launches: list[Launch]) -> int | None:
    """The launch a trace/report belongs to: most shared hashes, else a start-time stamp."""
    mine = shorts(rows)
    overlap = [(len(mine & shorts(launch.tasks)), i) for i, launch in enumerate(launches)]
    best = max(overlap, default=(0, -1))
    if best[0] > 0:
        return best[1]
    stamp = _stamp_of(label)
    if stamp is not None:
        for i, launch in enumerate(launches):
            start = launch.started_at
            naive = start is not None and start.tzinfo is None and launch.year_known
            if naive and start is not None and abs((start - stamp).total_seconds()) < 300:
                return i
    return None


def history_for(launch: Launch, history: list[HistoryEntry]) -> HistoryEntry | None:
    """The history line of a launch: same run name (and session, when both are known)."""
    for entry in history:
        same_session = launch.session is None or entry.session == launch.session
        if launch.run_name and entry.run_name == launch.run_name and same_session:
            return entry
    return None


def assemble(
    logs: list[Launch],
    history: list[HistoryEntry],
    tables: list[tuple[str, list[TaskObs]]],
    report: Report,
    tz: tzinfo | None,
) -> list[Launch]:
    """Every launch, with its task observations combined (one per task) and times aware."""
    launches = list(logs)
    matches = [(label, rows, _match(rows, label, launches)) for label, rows in tables]
    for launch_index, launch in enumerate(launches):
        if not launch.year_known:
            _resolve_year(launch, history, [r for _, r, i in matches if i == launch_index], report)
    for label, rows, index in matches:
        if index is None:  # a trace of a launch no log describes: match it to the new ones
            index = _match(rows, label, launches[len(logs) :])
            index = None if index is None else index + len(logs)
        if index is None:
            launches.append(Launch(source=label, tasks=list(rows), anchor=anchor(rows)))
            index = len(launches) - 1
        else:
            launches[index].tasks.extend(rows)
        launches[index].cut |= getattr(rows, "cut", False)
    known = {launch.run_name for launch in launches if launch.run_name}
    for entry in history:
        if entry.run_name not in known:
            launches.append(_from_history(entry))
    for launch in launches:
        matched = history_for(launch, history)
        if matched is not None:
            _apply_history(launch, matched)
        offset = _offset(launch) if tz is None else None
        groups: dict[str, list[TaskObs]] = {}
        for obs in launch.tasks:
            groups.setdefault(obs.short or obs.hash or obs.name or "?", []).append(obs)
        launch.tasks = [combine(group) for group in groups.values()]
        _make_aware(launch, tz, offset, report)
        if launch.started_at is None:  # a trace alone: the launch began with its first task
            starts = [t.submit or t.start for t in launch.tasks if t.submit or t.start]
            launch.started_at = min((s for s in starts if s is not None), default=None)
    launches.sort(key=lambda launch: launch.started_at or datetime.max.replace(tzinfo=UTC))
    return launches


def _resolve_year(
    launch: Launch, history: list[HistoryEntry], rows: list[list[TaskObs]], report: Report
) -> None:
    start = launch.started_at
    if start is None:
        return
    entry = history_for(launch, history)
    dated = [o.submit for group in rows for o in group if o.submit is not None]
    if entry is not None and entry.started_at is not None:
        year = year_near(start, entry.started_at)
    elif dated:
        year = year_near(start, dated[0].replace(tzinfo=None))
    elif launch.file_time is not None:
        year = year_near(start, launch.file_time)
        report.warn(
            f"{launch.source}: timestamps without a year and no history or trace to date them: "
            f"assumed {year} from the file's modification time"
        )
    else:
        year = datetime.now().year
        report.warn(f"{launch.source}: timestamps without a year: assumed {year}")
    resolve_years(launch, year)


def _from_history(entry: HistoryEntry) -> Launch:
    return Launch(
        source="history",
        run_name=entry.run_name,
        session=entry.session,
        command=entry.command,
        revision=entry.revision,
    )


def _apply_history(launch: Launch, entry: HistoryEntry) -> None:
    launch.session = launch.session or entry.session
    launch.command = launch.command or entry.command
    if entry.revision and (launch.revision is None or entry.revision.startswith(launch.revision)):
        launch.revision = entry.revision
    if launch.started_at is None:
        launch.started_at = entry.started_at
        if entry.started_at is not None and entry.duration_ms is not None:
            launch.finished_at = entry.started_at + timedelta(milliseconds=entry.duration_ms)
    if launch.status is None and entry.status is not None:
        launch.status = "completed" if entry.status == "OK" else "errored"
        launch.finished = True


def _offset(launch: Launch) -> timedelta | None:
    """The UTC offset of a launch's wall clock, from a task timed both ways (trace + report)."""
    seen: Counter[timedelta] = Counter()
    by_short: dict[str, list[datetime]] = {}
    for obs in launch.tasks:
        if obs.short and obs.submit is not None:
            by_short.setdefault(obs.short, []).append(obs.submit)
    for times in by_short.values():
        naive = [t for t in times if t.tzinfo is None]
        aware = [t for t in times if t.tzinfo is not None]
        if naive and aware:
            gap = naive[0] - aware[0].astimezone(UTC).replace(tzinfo=None)
            seen[timedelta(minutes=15 * round(gap.total_seconds() / 900))] += 1
    return seen.most_common(1)[0][0] if seen else None


def _make_aware(
    launch: Launch, tz: tzinfo | None, offset: timedelta | None, report: Report
) -> None:
    zone: tzinfo | None = tz
    if offset is not None:
        zone = timezone(offset)
        report.note(
            f"{launch.source}: wall-clock times read as UTC{_fmt(offset)} "
            "(inferred from the execution report's epoch times)"
        )

    def aware(moment: datetime | None) -> datetime | None:
        return moment if moment is None or moment.tzinfo else local_time(moment, zone)

    launch.started_at, launch.finished_at = aware(launch.started_at), aware(launch.finished_at)
    for obs in launch.tasks:
        obs.submit, obs.start = aware(obs.submit), aware(obs.start)
        obs.complete = aware(obs.complete)


def _fmt(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def anchor(rows: list[TaskObs]) -> str | None:
    """What names a launch known only from a trace or report: its first record. Nextflow
    appends records, so a file cut anywhere after its first record (read while being written,
    or truncated) has the same first record as the whole file."""
    if not rows:
        return None
    first = rows[0]
    when = first.submit.isoformat() if first.submit else ""
    return (
        "\t".join(
            str(v or "")
            for v in (first.task_id, first.short or first.hash, first.name, first.status)
        )
        + f"\t{when}"
    )


def launch_id(launch: Launch) -> str:
    """A stable name for a launch: its run name, else a digest of its first trace record
    (else of the tasks it lists): the same however much of a cut file was read."""
    if launch.run_name:
        return launch.run_name
    basis = launch.anchor or "\n".join(sorted(shorts(launch.tasks)))
    digest = hashlib.sha1(basis.encode()).hexdigest()
    return f"launch-{digest[:12]}"
