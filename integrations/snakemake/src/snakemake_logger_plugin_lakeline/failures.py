"""Failed jobs in Snakemake's own logs (`.snakemake/log/*.snakemake.log`), for an import from
`.snakemake/metadata`: Snakemake writes a failed job's metadata record as a finished one's,
so only its log tells that the job failed, how (its error block, the exit status) and when.

    [Mon Dec  7 13:50:23 2026]
    Error in rule fail:
        message: None
        jobid: 3
        input: data/raw.txt
        output: out/fail.txt
        log: logs/fail.log (check log file(s) for error details)
        ...

The stamps are the local time of the run's machine and zone, to the second, which need not
be the importing process's: each log's UTC offset is read from the stamps of its jobs' starts
against their metadata records' `starttime` (seconds since the epoch), and only without any
such record, or when every record agrees with the importing process's zone (which then reads
each stamp, a change to or from summer time within the log included), is that zone taken
(`time.mktime`).
"""

from __future__ import annotations

import calendar
import os
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from snakemake_logger_plugin_lakeline.events import exit_code_of

if TYPE_CHECKING:
    from snakemake_logger_plugin_lakeline.metadata import Record

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_ERROR = re.compile(r"^Error in rule (\S+):$")
_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_COMMAND = re.compile(
    r"^Command '(.*?)(?:' (?:returned non-zero exit status -?\d+|died with <.*>)\.)?$"
)
_PREFIX = "set -euo pipefail;"  # Snakemake's shell prefix (bash), before every command
_FIELD = re.compile(r"^    (\w+): (.*)$")
_LOG_NOTE = " (check log file(s) for error details)"
BEFORE = 2.0  # seconds: an error stamped this long before the job's start is another run's
AFTER = 120.0  # seconds: an error stamped this long after the job's end is another run's
SEARCHED = 500  # lines before an error block where its exception is looked for
ZONE = 900  # seconds: UTC offsets are whole quarter hours
SLACK = 30.0  # seconds between a job's start stamp and its record's `starttime`, at most


@dataclass
class Failure:
    """One `Error in rule` block: its rule, outputs and logs, time, text and exit status."""

    rule: str
    at: float
    outputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    text: str = ""
    exit_code: int | None = None


def read_failures(workdir: str | os.PathLike[str], records: Iterable[Record] = ()) -> list[Failure]:
    """Every failed job Snakemake's logs in the folder name (none if it has no logs);
    `records`: the folder's metadata records, whose start times tell each log's UTC offset."""
    folder = Path(workdir) / ".snakemake" / "log"
    started = {(r.rule, r.output): r.starttime for r in records if r.starttime is not None}
    logs = sorted(folder.glob("*.snakemake.log"))  # oldest first (named by their start)
    starts = [_starts(_lines(log)) for log in logs]  # (read twice: one log in memory at once)
    last: dict[tuple[str | None, str], tuple[int, int]] = {}  # an output's last start: its record's
    for n, jobs in enumerate(starts):
        for k, (rule, outputs, _) in enumerate(jobs):
            last.update(((rule, path), (n, k)) for path in outputs)
    found: list[Failure] = []
    for n, log in enumerate(logs):
        lines = _lines(log)
        if lines:
            found += _parse(lines, _offset(n, starts[n], last, started))
    return found


def _lines(log: Path) -> list[str]:
    try:
        return log.read_text(errors="replace").splitlines()
    except OSError:
        return []


def _blocks(
    lines: list[str], head: re.Pattern[str]
) -> Iterable[tuple[int, str, time.struct_time, int]]:
    """Each block of `lines` whose first line matches `head` after a stamp line: its start,
    the rule `head` names, the stamp and the end of its fields."""
    for i, line in enumerate(lines):
        match = head.match(line)
        stamp = _STAMP.match(lines[i - 1]) if match is not None and i else None
        if match is None or stamp is None:
            continue
        try:
            stamped = time.strptime(stamp.group(1), "%a %b %d %H:%M:%S %Y")
        except ValueError:
            continue
        end = i + 1
        while end < len(lines) and lines[end].startswith("    "):
            end += 1
        yield i, match.group(1), stamped, end


def _fields(block: list[str]) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in map(_FIELD.match, block) if m}


def _starts(lines: list[str]) -> list[tuple[str, list[str], int]]:
    """The log's job starts: rule, outputs and stamp (its clock read as UTC: no zone)."""
    return [
        (rule, _paths(_fields(lines[i:end]).get("output", "")), calendar.timegm(stamped))
        for i, rule, stamped, end in _blocks(lines, _START)
    ]


def _offset(
    n: int,
    jobs: list[tuple[str, list[str], int]],
    last: dict[tuple[str | None, str], tuple[int, int]],
    started: dict[tuple[str | None, str], float],
) -> float | None:
    """The UTC offset (seconds) of the zone log `n` was written in: the one most of its
    `jobs`' start stamps tell against their outputs' records' `starttime`; None if none tells
    or each tells the importing process's own zone at its stamp. An output's record is its
    last start's (`last`: by log, then job): a record of a later run of the job tells nothing
    of this log, and might by chance be a whole number of quarter hours later (a failing job
    run again, fixed, 15 minutes later)."""
    votes: Counter[float] = Counter()
    local = True  # every vote is the importing process's zone at its stamp
    for k, (rule, outputs, naive) in enumerate(jobs):
        for path in outputs:
            start = started.get((rule, path))
            if start is None or last.get((rule, path)) != (n, k):
                continue
            zone = round((naive - start) / ZONE) * ZONE
            if abs(zone) <= 14 * 3600 and abs(naive - start - zone) <= SLACK:
                votes[zone] += 1
                local = local and zone == _local_offset(naive)
                break  # a vote a job
    if not votes or local:
        return None  # the process's zone reads each stamp, a summer-time change included
    return votes.most_common(1)[0][0]


def _local_offset(naive: int) -> float:
    """The importing process's UTC offset at a stamp read as UTC (its summer time known)."""
    return naive - time.mktime((*time.gmtime(naive)[:8], -1))


def _parse(lines: list[str], offset: float | None = None) -> list[Failure]:
    found: list[Failure] = []
    for i, rule, stamped, end in _blocks(lines, _ERROR):
        try:  # without a record telling the log's zone: the importing process's
            at = time.mktime(stamped) if offset is None else calendar.timegm(stamped) - offset
        except (ValueError, OverflowError):
            continue
        block = lines[i:end]
        fields = _fields(block)
        if _restarted(lines, end, fields.get("jobid")):
            continue  # an attempt of a job with `retries:` left: not the job's end
        said = _exception(lines, i, _shell(block))
        found.append(
            Failure(
                rule=rule,
                at=at,
                outputs=_paths(fields.get("output", "")),
                logs=_paths(fields.get("log", "").removesuffix(_LOG_NOTE)),
                text="\n".join([said, *block] if said else block),
                exit_code=exit_code_of(said),
            )
        )
    return found


def _restarted(lines: list[str], end: int, jobid: str | None) -> bool:
    """Whether Snakemake restarted the job after its error block ending at `end` (before any
    later error of that job): a failed attempt, the job run again."""
    if jobid is None:
        return False
    again, field = f"Trying to restart job {jobid}.", f"    jobid: {jobid}"
    in_error = False
    for line in lines[end:]:
        if line == again:
            return True
        in_error = bool(_ERROR.match(line)) or (in_error and line.startswith("    "))
        if in_error and line == field:
            return False  # the job's next error: none said it was restarted after this one
    return False


def _shell(block: list[str]) -> str | None:
    """The first line of the shell command an error block shows, if any."""
    for k, line in enumerate(block[:-1]):
        if line == "    shell:":
            return block[k + 1].strip() or None
    return None


def _exception(lines: list[str], i: int, shell: str | None) -> str:
    """The CalledProcessError Snakemake logged before the error block at `i` for the command
    whose first line is `shell` (other jobs' lines may come between: the nearest naming that
    very command, not one it is part of: `exit 3` is not `exit 35`). Snakemake's command is
    its prefix, the command and its suffix joined by spaces: the one that is the command
    after bash's default prefix is taken first, else the nearest where it stands between
    spaces (a Snakefile's own `shell.prefix` or `shell.suffix`)."""
    if shell is None:
        return ""
    named = [j for j in range(i - 1, max(-1, i - SEARCHED), -1) if lines[j].startswith("Command '")]
    commands = {j: _command(lines[j]) for j in named}
    j = next((j for j in named if commands[j] == shell), None)
    if j is None:
        j = next((j for j in named if _between_spaces(commands[j], shell)), None)
    if j is None:
        return ""
    end = next((k for k in range(j, i) if exit_code_of(lines[k]) is not None), j)
    first = j - 2 if j >= 2 and lines[j - 2] == "RuleException:" else j
    return "\n".join(lines[first : end + 1])


def _between_spaces(command: str | None, shell: str) -> bool:
    """Whether `shell` stands in `command` between its start or a space and its end or a
    space (`prefix shell suffix`)."""
    at = -1 if command is None else command.find(shell)
    while at >= 0:
        assert command is not None
        after = at + len(shell)
        if (at == 0 or command[at - 1] == " ") and (after == len(command) or command[after] == " "):
            return True
        at = command.find(shell, at + 1)
    return False


def _command(line: str) -> str | None:
    """The (first line of the) command a `Command '...'` line names, without Snakemake's
    shell prefix (as the error block shows it)."""
    match = _COMMAND.match(line)
    if match is None:
        return None
    return match.group(1).strip().removeprefix(_PREFIX).strip()


def _paths(text: str) -> list[str]:
    return [p for p in (s.strip() for s in text.split(", ")) if p]


def failure_of(
    failures: list[Failure], rule: str | None, outputs: list[str], start: float, end: float
) -> Failure | None:
    """The logged failure of the job of `rule` that wrote `outputs` from `start` to `end`
    (its metadata record's times): the same rule and outputs, stamped from its start to
    shortly after its end (the nearest its end), if any."""
    wanted = sorted(outputs)
    near = [
        f
        for f in failures
        if f.rule == rule and sorted(f.outputs) == wanted and start - BEFORE <= f.at <= end + AFTER
    ]
    return min(near, key=lambda f: abs(f.at - end), default=None)
