"""`db/recordset.py`'s statement and its per-column plans: built for the Table object they
are asked for (keyed by its name before, two metadata each with a table of one name shared
the first one's plan: the second's values converted, or refused, as the first's columns),
and the JSON parameter typed as pg_catalog's jsonb whatever the search path."""

from __future__ import annotations

from datetime import UTC, datetime

from lakeline.db.recordset import recordset_sql, rows_json
from sqlalchemy import Column, DateTime, Enum, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import psycopg

DIALECT = psycopg.dialect()


def test_two_tables_of_one_name_get_plans_of_their_own() -> None:
    first = Table("twins", MetaData(), Column("v", Enum("a", "b", name="letters")))
    second = Table("twins", MetaData(), Column("v", Integer))
    assert recordset_sql(DIALECT, first, ["v"], "") is None  # an Enum: not written over JSON
    assert recordset_sql(DIALECT, second, ["v"], "") is not None
    text = Table("stamps", MetaData(), Column("at", String))
    times = Table("stamps", MetaData(), Column("at", DateTime(timezone=True)))
    assert rows_json(DIALECT, text, ["at"], [{"at": "noon"}]) == '[{"at": "noon"}]'
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert recordset_sql(DIALECT, times, ["at"], "") is not None
    assert rows_json(DIALECT, times, ["at"], [{"at": at}]) == f'[{{"at": "{at.isoformat()}"}}]'


def test_the_json_parameter_is_pg_catalogs_jsonb() -> None:
    table = Table("things", MetaData(), Column("n", Integer))
    sql = recordset_sql(DIALECT, table, ["n"], "")
    assert sql is not None and "CAST(%s AS pg_catalog.jsonb)" in sql, sql
