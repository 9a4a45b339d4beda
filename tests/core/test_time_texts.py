"""The texts the flush writes for times, built without `datetime.isoformat` for times in UTC
(`models.base.isoformat`, `UTCDateTime.many_processor`): the same texts as the calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from lakeline.errors import InvalidValue
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
]


@pytest.mark.parametrize("at", TIMES)
def test_a_status_log_time_is_the_text_isoformat_gives(at: datetime) -> None:
    assert isoformat(at) == at.isoformat()


def test_a_column_of_times_is_the_text_the_bind_processor_gives() -> None:
    dialect = sqlite.dialect()
    impl = UTCDateTime().dialect_impl(dialect)
    one = impl.bind_processor(dialect)
    whole = UTCDateTime().many_processor(dialect)
    values = [*TIMES[:-1], None, datetime.now(UTC)]
    assert whole(values) == [None if v is None else one(v) for v in values]
    with pytest.raises(InvalidValue, match="naive"):
        whole([datetime.now(UTC), datetime(2026, 1, 1)])
