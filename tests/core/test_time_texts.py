"""The texts the flush writes for times, built without `datetime.isoformat` for times in UTC
(`models.base.isoformat`, `UTCDateTime.many_processor`): the same texts as the calls. The two
other ISO helpers differ on purpose: `cli.runs._iso` takes None (a run not finished), and
`db.recordset._iso` any bound value, a time kept in its own zone or naive (PostgreSQL reads a
naive one in the session's zone, as psycopg binds it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from lakeline.cli.runs import _iso as cli_iso
from lakeline.db.recordset import _iso as bound_iso
from lakeline.errors import InvalidValue
from lakeline.models import base
from lakeline.models.base import UTCDateTime, isoformat
from sqlalchemy.dialects import sqlite


class _Stamp(datetime):
    """A datetime subclass (pandas' Timestamp is one): formatted by its own isoformat."""

    def isoformat(self, *args: object, **kwargs: object) -> str:
        return "own:" + super().isoformat(*args, **kwargs)  # type: ignore[arg-type]


TIMES = [
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: isoformat leaves them out
    datetime(2026, 12, 7, 23, 59, 59, 1, tzinfo=UTC),
    datetime(999, 12, 31, 0, 0, 0, 999999, tzinfo=UTC),  # a year of three digits
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(2026, 7, 1, 0, 30, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 7, 1, 0, 30, 0, tzinfo=timezone(timedelta(0))),  # UTC, another object
    _Stamp(2026, 7, 1, 0, 30, 0, 5, tzinfo=UTC),
    datetime(2026, 7, 1, 0, 30, 0, 7, tzinfo=ZoneInfo("UTC")),  # UTC, not `UTC`
    datetime(2026, 7, 1, 0, 30, 0, 7),  # naive: no offset, as the method writes it
]


@pytest.mark.parametrize("at", TIMES)
def test_a_status_log_time_is_the_text_isoformat_gives(at: datetime) -> None:
    assert isoformat(at) == at.isoformat()


def test_a_minute_met_again_after_the_minutes_were_cleared_is_its_own_text() -> None:
    first = datetime(2026, 12, 7, 20, 5, 6, 7, tzinfo=UTC)
    assert isoformat(first) == "2026-12-07T20:05:06.000007+00:00"
    start = datetime(2030, 1, 1, tzinfo=UTC)
    for n in range(base.MINUTES + 1):  # the minutes' texts cleared on the way
        at = start + timedelta(minutes=n, seconds=n % 60)
        assert isoformat(at) == at.isoformat()
    assert len(base._iso_minutes) <= base.MINUTES
    assert isoformat(first.replace(second=59, microsecond=0)) == "2026-12-07T20:05:59+00:00"


def test_the_other_iso_helpers_keep_none_zones_and_naive_times() -> None:
    aware = datetime(2026, 7, 1, 0, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-3)))
    naive = datetime(2026, 7, 1, 0, 30)
    assert cli_iso(None) is None
    assert cli_iso(aware) == "2026-07-01T00:30:00.123456-03:00"
    assert bound_iso(aware) == "2026-07-01T00:30:00.123456-03:00"
    assert bound_iso(naive) == "2026-07-01T00:30:00"
    assert bound_iso(3) == 3 and bound_iso(None) is None


def test_a_column_of_times_is_the_text_the_bind_processor_gives() -> None:
    dialect = sqlite.dialect()
    impl = UTCDateTime().dialect_impl(dialect)
    one = impl.bind_processor(dialect)
    whole = UTCDateTime().many_processor(dialect)
    aware = [t for t in TIMES if t.__class__ is datetime and t.tzinfo is not None]
    values = [*aware, None, datetime.now(UTC)]
    assert whole(values) == [None if v is None else one(v) for v in values]
    with pytest.raises(InvalidValue, match="naive"):
        whole([datetime.now(UTC), datetime(2026, 1, 1)])
