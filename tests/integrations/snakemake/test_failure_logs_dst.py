"""A Snakemake log that spans a change from summer time, read by the metadata import in the
zone it was written in (failures.py): each stamp takes its own offset, so a failure logged
after the change is placed at its true time, not an hour off."""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from snakemake_logger_plugin_lakeline.failures import read_failures
from snakemake_logger_plugin_lakeline.metadata import Record

BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"  # summer time ends 2026-10-25 at 03:00 local
LOG = """\
Building DAG of jobs...
[Sat Oct 24 23:00:00 2026]
rule early:
    output: out/early.txt
    jobid: 1

[Sun Oct 25 04:00:00 2026]
rule late:
    output: out/late.txt
    jobid: 2

[Sun Oct 25 04:00:05 2026]
Error in rule late:
    message: None
    jobid: 2
    output: out/late.txt
"""


@pytest.fixture
def berlin() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = BERLIN
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def _utc(*fields: int) -> float:
    return float(calendar.timegm((*fields, 0, 0, 0)))


def test_a_failure_after_a_summer_time_change_is_placed_at_its_true_time(
    tmp_path: Path, berlin: None
) -> None:
    log = tmp_path / ".snakemake" / "log" / "2026-10-24T230000.000000.snakemake.log"
    log.parent.mkdir(parents=True)
    log.write_text(LOG)
    early = _utc(2026, 10, 24, 21, 0, 0)  # 23:00 CEST (UTC+2)
    late = _utc(2026, 10, 25, 3, 0, 0)  # 04:00 CET (UTC+1)
    records = [
        Record("out/early.txt", "early", early, early + 1, None, {}),
        Record("out/late.txt", "late", late, late + 6, None, {}),
    ]
    [failure] = read_failures(tmp_path, records)
    assert failure.rule == "late"
    assert failure.at == late + 5  # one offset for the whole log put it at late - 3595
