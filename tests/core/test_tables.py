"""Sets of tabular artifacts: one pyarrow dataset, and DuckDB SQL across artifacts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import lakeline as ll
import pandas as pd
import pyarrow.dataset as pads
import pytest
from lakeline.errors import IncompatibleMembers, LakelineError, QueryError, UnsupportedObject
from lakeline.instance import Instance


def _save_tables(suffix: str = ".parquet", n: int = 3) -> list[ll.Artifact]:
    saved = []
    for i in range(n):
        df = pd.DataFrame({"sample": [f"s{i}"] * (i + 1) + ["shared"], "value": range(i + 2)})
        saved.append(ll.Artifact.from_dataframe(df, key=f"tables/t{i}{suffix}").save())
    return saved


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_queryset_opens_as_one_dataset(any_instance: Instance, suffix: str) -> None:
    _save_tables(suffix)
    ll.Artifact({"not": "a table"}, key="tables/readme.json").save()
    tables = ll.Artifact.filter(key__startswith="tables/", suffix=suffix)
    dataset = tables.open()
    assert isinstance(dataset, pads.Dataset)
    table = dataset.to_table()
    assert table.num_rows == 2 + 3 + 4
    rows = table.to_pandas()
    assert rows.groupby("artifact_key").size().to_dict() == {
        f"tables/t0{suffix}": 2,
        f"tables/t1{suffix}": 3,
        f"tables/t2{suffix}": 4,
    }
    # a filter on the key column prunes whole files
    one = dataset.to_table(filter=pads.field("artifact_key") == f"tables/t1{suffix}")
    assert one.num_rows == 3


def test_duckdb_sql_across_artifacts(any_instance: Instance) -> None:
    _save_tables()
    tables = ll.Artifact.filter(key__startswith="tables/", suffix=".parquet")
    con = ll.duckdb(tables)
    counts = con.sql("SELECT sample, count(*) AS n FROM artifacts GROUP BY sample ORDER BY 1")
    assert counts.fetchall() == [("s0", 1), ("s1", 2), ("s2", 3), ("shared", 3)]
    per_key = con.sql("SELECT artifact_key, sum(value) FROM artifacts GROUP BY 1 ORDER BY 1")
    assert per_key.fetchall() == [
        ("tables/t0.parquet", 1),
        ("tables/t1.parquet", 3),
        ("tables/t2.parquet", 6),
    ]
    with pytest.raises(
        QueryError, match=r'failed: Binder Error: Referenced column "nope" not found .*"sample"'
    ) as error:
        con.sql("SELECT nope FROM artifacts")
    assert "\n" not in str(error.value) and isinstance(error.value.__cause__, duckdb.Error)
    with pytest.raises(QueryError, match="Parser Error"):
        con.execute("SELEC 1")
    assert con.execute("SELECT count(*) FROM artifacts").fetchone() == (9,)


def test_duckdb_through_a_tracked_run_records_inputs(instance: Instance) -> None:
    saved = _save_tables(n=2)
    run = ll.track(key="sql-over-tables", params={"step": "sql"})
    try:
        ll.duckdb(ll.Artifact.filter(key__startswith="tables/")).sql("SELECT 1").fetchall()
    finally:
        ll.finish()
    used = {a.uid for a in run.inputs}
    assert used == {a.uid for a in saved}


def test_bad_sets(instance: Instance, tmp_path: Path) -> None:
    _save_tables(".parquet", n=1)
    _save_tables(".csv", n=1)
    with pytest.raises(IncompatibleMembers, match="mixed table formats"):
        ll.Artifact.filter(key__startswith="tables/").open()
    ll.Artifact({"a": 1}, key="other/x.json").save()
    with pytest.raises(UnsupportedObject, match=r"other/x\.json\) is not a parquet or csv"):
        ll.Artifact.filter(key__startswith="other/").open()
    with pytest.raises(LakelineError, match="matched none"):
        ll.duckdb(ll.Artifact.filter(key__startswith="nothing/"))
