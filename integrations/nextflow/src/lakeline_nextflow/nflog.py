"""`.nextflow.log` (and its rotated `.nextflow.log.1`, ...) and `.nextflow/history`.

Log lines carry `MMM-dd HH:mm:ss.SSS` without a year: the reader keeps times with a
placeholder year and counts year roll-overs (Dec -> Jan); `resolve_years` fixes them later
from the history, a trace, or the file's modification time.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from lakeline_nextflow.model import HistoryEntry, Launch, TaskObs
from lakeline_nextflow.values import UUID, duration_ms, hash_of_workdir, integer, missing

PLACEHOLDER_YEAR = 2000  # a leap year: Feb-29 lines parse
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_LINE = re.compile(
    r"^(?P<month>[^\s-]+)-(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?) "
    r"\[(?P<thread>[^\]]*)\] (?P<level>[A-Z]+)\s+(?P<logger>\S+) - (?P<message>.*)$"
)
_LAUNCHING = re.compile(
    r"Launching `(?P<script>[^`]+)` \[(?P<name>[^\]]+)\](?: DSL\d)?(?: - revision: (?P<rev>\S+)"
    r"(?: \[(?P<release>[^\]]+)\])?)?"
)
_TASK_LINE = re.compile(
    r"^\[(?P<short>[0-9a-f]{2}/[0-9a-f]{6})\] (?P<what>Submitted|Cached) process > (?P<name>.+)$"
)
_HANDLER = re.compile(r"Task completed > TaskHandler\[(?P<body>.*)\]\s*$")
_KV = re.compile(r"(?:^|; )(\w+): ")
_STATS = re.compile(r"Workflow completed > WorkflowStats\[(?P<body>.*)\]")
_ERROR_PROCESS = re.compile(r"Error executing process > '(?P<name>.+)'")


def _month(text: str) -> int | None:
    number = _MONTHS.get(text[:3].lower())
    if number is not None:
        return number
    digits = re.match(r"\d{1,2}", text)  # localised months: `11月`, `11.`
    if digits and 1 <= int(digits.group()) <= 12:
        return int(digits.group())
    return None


def _handler_fields(body: str) -> dict[str, str]:
    """`id: 3; name: X (a; b); status: COMPLETED; ...` -> dict (values may contain `; `)."""
    keys = list(_KV.finditer(body))
    fields = {}
    for i, found in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(body)
        fields[found.group(1)] = body[found.end() : end].strip()
    return fields


def _stats(body: str) -> dict[str, int | str]:
    stats: dict[str, int | str] = {}
    for part in body.split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            value = value.strip()
            stats[key.strip()] = int(value) if value.isdigit() else value
    return stats


class _Clock:
    """Times of log lines with a placeholder year, counting roll-overs past December."""

    def __init__(self) -> None:
        self.rollovers = 0
        self.last_month: int | None = None

    def at(self, month_text: str, day: str, clock: str) -> datetime | None:
        month = _month(month_text)
        if month is None:
            return None
        if self.last_month is not None and month < self.last_month:
            self.rollovers += 1
        self.last_month = month
        hms, _, ms = clock.partition(".")
        h, m, s = (int(x) for x in hms.split(":"))
        try:
            micro = int(ms.ljust(3, "0")) * 1000
            moment = datetime(PLACEHOLDER_YEAR, month, int(day), h, m, s, micro)
        except ValueError:
            return None
        if not self.rollovers:
            return moment
        try:
            return moment.replace(year=PLACEHOLDER_YEAR + self.rollovers)
        except ValueError:  # Feb-29 after a roll-over: not a leap year
            return moment.replace(year=PLACEHOLDER_YEAR + self.rollovers, day=28)


def read_log(path: Path, problems: list[str]) -> Launch:
    """One launch from a `.nextflow.log` file (complete or truncated)."""
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if text and not text.endswith("\n") and lines:
        problems.append(f"{path}: the last line is cut off (truncated log): ignored")
        lines = lines[:-1]
    launch = Launch(source=f"log:{path.name}", year_known=False)
    clock = _Clock()
    entries: list[tuple[datetime | None, str]] = []
    bad_times = 0
    for line in lines:
        found = _LINE.match(line)
        if found is None:
            if entries:  # a continuation of the previous message
                moment, message = entries[-1]
                entries[-1] = (moment, message + "\n" + line)
            continue
        moment = clock.at(found["month"], found["day"], found["time"])
        if moment is None:
            bad_times += 1
        entries.append((moment, found["message"]))
    if not entries:
        raise ValueError(f"{path}: no Nextflow log lines found")
    if bad_times:
        problems.append(f"{path}: {bad_times} line(s) with an unreadable date: times left unknown")
    by_short: dict[str, TaskObs] = {}
    for moment, message in entries:
        _read_message(launch, by_short, moment, message, path, problems)
    launch.started_at = entries[0][0]
    if launch.finished:
        launch.finished_at = entries[-1][0]
        if launch.status is None:
            failed = launch.stats.get("failedCount", 0)
            launch.status = "errored" if isinstance(failed, int) and failed > 0 else "completed"
            if launch.error and launch.status == "completed":
                launch.status = "errored"
    else:
        problems.append(
            f"{path}: the log ends before the run finished (truncated, killed or still running): "
            "the launch is recorded as started"
        )
        launch.status = None
    launch.tasks = list(by_short.values())
    return launch


def _task(by_short: dict[str, TaskObs], short: str, source: str) -> TaskObs:
    if short not in by_short:
        by_short[short] = TaskObs(source=source, short=short)
    return by_short[short]


def _read_message(
    launch: Launch,
    by_short: dict[str, TaskObs],
    moment: datetime | None,
    message: str,
    path: Path,
    problems: list[str],
) -> None:
    first = message.split("\n", 1)[0].strip()
    if first.startswith("$> "):
        launch.command = first[3:].strip()
    elif "N E X T F L O W" in first and "version" in first:
        launch.nextflow_version = first.rsplit("version", 1)[1].strip()
    elif (found := _LAUNCHING.search(first)) is not None:
        launch.script = found["script"]
        launch.run_name = launch.run_name or found["name"]
        launch.revision = found["rev"]
        launch.release = found["release"]
    elif first.lower().startswith("session uuid:"):
        launch.session = first.split(":", 1)[1].strip()
    elif first.startswith("Run name:"):
        launch.run_name = first.split(":", 1)[1].strip()
    elif first.startswith("Work-dir:"):
        launch.work_dir = re.sub(r" \[[^\]]*\]$", "", first.split(":", 1)[1].strip())
    elif first.startswith("Found config local:"):
        launch.launch_dir = str(Path(first.split(":", 1)[1].strip()).parent)
    elif first.startswith("Workflow process names"):
        launch.process_names = [p.strip() for p in first.split(":", 1)[1].split(",") if p.strip()]
    elif (found := _TASK_LINE.match(first)) is not None:
        obs = _task(by_short, found["short"], launch.source)
        obs.name = obs.name or found["name"].strip()
        if found["what"] == "Cached":
            obs.status = "CACHED"
        else:
            obs.submit = obs.submit or moment
            obs.status = obs.status or "SUBMITTED"
    elif (found := _HANDLER.search(first)) is not None:
        fields = _handler_fields(found["body"])
        full = hash_of_workdir(fields.get("workDir"))
        if full is None:
            problems.append(f"{path}: a `Task completed` line without a work dir was skipped")
            return
        obs = _task(by_short, f"{full[:2]}/{full[2:8]}", launch.source)
        obs.hash, obs.workdir = full, fields.get("workDir")
        obs.name = obs.name or fields.get("name")
        try:
            obs.task_id = integer(fields.get("id"))
            obs.exit_code = integer(fields.get("exit"))
        except ValueError:
            problems.append(f"{path}: task {obs.short}: unreadable id or exit status")
        handler_status = (fields.get("status") or "").upper()
        failed = handler_status != "COMPLETED" or (obs.exit_code not in (None, 0))
        if obs.status != "FAILED":
            obs.status = "FAILED" if failed else "COMPLETED"
        error = fields.get("error")
        if not missing(error):
            obs.error = error
        obs.complete = moment
    elif (found := _ERROR_PROCESS.search(first)) is not None:
        _read_process_error(launch, by_short, found["name"], message)
    elif (found := _STATS.search(first)) is not None:
        launch.stats = _stats(found["body"])
    elif first.startswith("Session aborted -- Cause:"):
        launch.error = launch.error or first.split(":", 1)[1].strip()
    elif first.startswith("> Execution complete -- Goodbye") or first.startswith(
        "Execution complete -- Goodbye"
    ):
        launch.finished = True
    elif first.startswith("Execution aborted") or first.startswith("Execution cancelled"):
        launch.status = "aborted"


def _read_process_error(
    launch: Launch, by_short: dict[str, TaskObs], name: str, message: str
) -> None:
    """An `Error executing process > 'X'` block: the error text and the failed task."""
    sections: dict[str, list[str]] = {}
    current = "head"
    for line in message.split("\n")[1:]:
        if line and not line.startswith(" ") and line.rstrip().endswith(":"):
            current = line.rstrip()[:-1]
            sections[current] = []
        elif line.strip():
            sections.setdefault(current, []).append(line.strip())
    cause = " ".join(sections.get("Caused by", []))
    stderr = "\n".join(sections.get("Command error", []))
    error = "\n".join(part for part in (cause, stderr) if part) or f"process {name} failed"
    launch.error = launch.error or cause or error
    full = hash_of_workdir(" ".join(sections.get("Work dir", [])))
    obs = None
    if full is not None:
        obs = _task(by_short, f"{full[:2]}/{full[2:8]}", launch.source)
        obs.hash = obs.hash or full
    else:
        obs = next((t for t in reversed(by_short.values()) if t.name == name), None)
    if obs is not None:
        obs.name = obs.name or name
        obs.status = "FAILED"
        obs.error = error
        status = " ".join(sections.get("Command exit status", []))
        if obs.exit_code is None and status.strip().lstrip("-").isdigit():
            obs.exit_code = int(status)


def read_history(path: Path, problems: list[str]) -> list[HistoryEntry]:
    """`.nextflow/history`: timestamp, duration, run name, status, revision, session, command."""
    entries = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        session_at = next((i for i, c in enumerate(cells) if UUID.match(c.strip())), None)
        if session_at is None or session_at < 3:
            problems.append(f"{path}:{number}: not a history line (no session UUID): skipped")
            continue
        try:
            started = datetime.strptime(cells[0].strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            started = None
            problems.append(f"{path}:{number}: unreadable timestamp {cells[0]!r}")
        status = cells[session_at - 2].strip() if session_at >= 4 else None
        try:
            duration = duration_ms(cells[1]) if session_at >= 5 else None
        except ValueError:
            duration = None
        entries.append(
            HistoryEntry(
                started_at=started,
                duration_ms=duration,
                run_name=cells[session_at - 3 if session_at >= 4 else 1].strip(),
                status=None if status in (None, "", "-") else status,
                revision=cells[session_at - 1].strip() or None,
                session=cells[session_at].strip(),
                command="\t".join(cells[session_at + 1 :]).strip(),
            )
        )
    return entries


def log_files(launch_dir: Path) -> list[Path]:
    """`.nextflow.log.N`, ..., `.nextflow.log.1`, `.nextflow.log`: oldest launch first."""
    rotated = []
    for path in launch_dir.glob(".nextflow.log.*"):
        suffix = path.name.rsplit(".", 1)[1]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    found = [p for _, p in sorted(rotated, reverse=True)]
    if (launch_dir / ".nextflow.log").is_file():
        found.append(launch_dir / ".nextflow.log")
    return found


def resolve_years(launch: Launch, year: int) -> None:
    """Give the launch's wall-clock times their year (`year` = the year the launch started)."""

    def fix(moment: datetime | None) -> datetime | None:
        if moment is None or moment.tzinfo is not None:
            return moment
        target = year + (moment.year - PLACEHOLDER_YEAR)
        try:
            return moment.replace(year=target)
        except ValueError:  # Feb-29 in a year without one: the line was not from this year
            return moment.replace(year=target, day=28)

    launch.started_at = fix(launch.started_at)
    launch.finished_at = fix(launch.finished_at)
    for obs in launch.tasks:
        obs.submit, obs.start, obs.complete = fix(obs.submit), fix(obs.start), fix(obs.complete)
    launch.year_known = True


def year_near(month_day: datetime, reference: datetime) -> int:
    """The year in which a (month, day) lies closest to `reference`."""
    best = reference.year
    distance = None
    for year in (reference.year - 1, reference.year, reference.year + 1):
        try:
            candidate = month_day.replace(year=year)
        except ValueError:
            continue
        gap = abs((candidate - reference.replace(tzinfo=None)).total_seconds())
        if distance is None or gap < distance:
            best, distance = year, gap
    return best
