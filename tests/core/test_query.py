"""Lookups across fields and relations, their errors, ordering, limits, frames and search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.errors import DoesNotExist, MultipleFound, QueryError
from lakeline.ids import new_stem, new_uid, versioned_uid
from lakeline.instance import Instance
from lakeline.models import Run, Transform


@pytest.fixture
def catalog(instance: Instance, tmp_path: Path) -> dict[str, ll.Artifact]:
    """Artifacts of several keys, sizes and suffixes; two produced by a run of `align`."""
    with instance.sessions.write() as session:
        transform = Transform(
            uid=versioned_uid(new_stem(), 0), stem="", key="align", kind="rule", is_latest=True
        )
        transform.stem = transform.uid[:12]
        session.add(transform)
        session.flush()
        run = Run(uid=new_uid(), transform_id=transform.id, status="completed")
        session.add(run)
    files = {
        "raw/reads_1.csv": "a,b\n" + "1,2\n" * 300,
        "raw/reads_2.csv": "a,b\n3,4\n",
        "raw/notes.txt": "plain notes about 100% of reads_1",
        "tables/counts.tsv": "g\tn\n",
        "raw_other/x.csv": "x\n",
    }
    descriptions = {"raw/notes.txt": "covers 100% of reads", "raw/reads_1.csv": "100x coverage"}
    saved = {}
    for key, text in files.items():
        path = tmp_path / "src" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        produced = key.startswith("tables/") or key.endswith("reads_2.csv")
        saved[key] = ll.Artifact(
            path,
            key=key,
            description=descriptions.get(key, f"file {key}"),
            run=run if produced else None,
        ).save()
    return saved


def keys(query: ll.query.QuerySet[ll.Artifact]) -> list[str]:  # type: ignore[name-defined]
    return sorted(a.key for a in query)


def test_field_lookups(catalog: dict[str, ll.Artifact]) -> None:
    A = ll.Artifact
    assert keys(A.filter(key__startswith="raw/")) == [
        "raw/notes.txt",
        "raw/reads_1.csv",
        "raw/reads_2.csv",
    ]
    assert keys(A.filter(key__startswith="raw/", suffix=".csv", size__gt=1000)) == [
        "raw/reads_1.csv"
    ]
    assert keys(A.filter(suffix__in=[".tsv", ".txt"])) == ["raw/notes.txt", "tables/counts.tsv"]
    assert keys(A.filter(key__endswith="_2.csv")) == ["raw/reads_2.csv"]
    assert keys(A.filter(key__contains="READS")) == []  # case-sensitive on both databases
    assert keys(A.filter(key__icontains="READS")) == ["raw/reads_1.csv", "raw/reads_2.csv"]
    assert keys(A.filter(key__istartswith="RAW/N")) == ["raw/notes.txt"]
    # '%' and '_' are literal characters, not wildcards
    assert keys(A.filter(description__contains="100%")) == ["raw/notes.txt"]
    assert keys(A.filter(description__icontains="0_c")) == []
    assert A.filter(size__range=(0, 10)).count() == 3
    assert A.filter(run__isnull=False).count() == 2
    assert A.filter(key__iexact="RAW/NOTES.TXT").count() == 1
    assert A.filter().exclude(key__startswith="raw").count() == 1
    assert A.filter(created_at__gte=datetime.now(UTC) - timedelta(hours=1)).count() == 5
    assert A.filter(created_at__lt="2000-01-01T00:00:00+00:00").count() == 0


def test_relation_lookups(catalog: dict[str, ll.Artifact]) -> None:
    produced = ll.Artifact.filter(run__transform__key="align")
    assert keys(produced) == ["raw/reads_2.csv", "tables/counts.tsv"]
    assert keys(produced.filter(suffix=".tsv")) == ["tables/counts.tsv"]
    assert ll.Artifact.filter(run__status="completed", run__transform__kind="rule").count() == 2
    assert ll.Artifact.filter(run__transform__key="nothing").count() == 0
    run = catalog["tables/counts.tsv"].run
    assert run is not None
    assert ll.Artifact.filter(run=run).count() == 2  # a record stands for its id
    assert ll.Artifact.filter(storage__type="local").count() == 5
    assert ll.Artifact.filter().exclude(run__transform__key="align").count() == 3


def test_ordering_limits_first_iteration(catalog: dict[str, ll.Artifact]) -> None:
    by_size = ll.Artifact.filter().order_by("-size")
    assert by_size.first().key == "raw/reads_1.csv"  # type: ignore[union-attr]
    assert [a.key for a in by_size.limit(2).offset(1)] == [
        "raw/notes.txt",
        "raw/reads_2.csv",
    ]
    assert len(list(ll.Artifact.filter().limit(3))) == 3
    assert ll.Artifact.filter().limit(3).count() == 5  # count ignores limits
    assert ll.Artifact.filter(key="nope").first() is None


def test_get(catalog: dict[str, ll.Artifact]) -> None:
    art = catalog["raw/notes.txt"]
    assert ll.Artifact.get(art.uid).key == "raw/notes.txt"
    assert ll.Artifact.get(key="raw/notes.txt").uid == art.uid
    with pytest.raises(DoesNotExist, match="no Artifact with key='nope'"):
        ll.Artifact.get(key="nope")
    with pytest.raises(MultipleFound, match="several"):
        ll.Artifact.get(suffix=".csv")


def test_to_dataframe(catalog: dict[str, ll.Artifact]) -> None:
    df = ll.Artifact.filter(key__startswith="raw/").order_by("key").to_dataframe()
    assert list(df["key"]) == ["raw/notes.txt", "raw/reads_1.csv", "raw/reads_2.csv"]
    assert df.index.name == "uid" and {"size", "hash", "created_at"} <= set(df.columns)
    small = ll.Artifact.filter().to_dataframe(columns=["key", "size"])
    assert list(small.columns) == ["key", "size"] and len(small) == 5


@pytest.mark.parametrize(
    ("lookups", "message"),
    [
        ({"colour": "red"}, "no field 'colour'"),
        ({"key__regex": ".*"}, "unknown operator 'regex'.*startswith"),
        ({"run__nothing__key": "x"}, "no relation 'nothing'"),
        ({"size__gt": "big"}, "expects a value of type int"),
        ({"key__in": "raw"}, "expects a list"),
        ({"key__startswith": 3}, "expects a string"),
        ({"run__isnull": "yes"}, "expects True or False"),
        ({"created_at__gt": "yesterday"}, "expects a value of type datetime"),
        ({"key; DROP TABLE artifacts; --": 1}, "no field"),
    ],
)
def test_bad_lookups_are_clear_errors(
    catalog: dict[str, ll.Artifact], lookups: dict[str, object], message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        ll.Artifact.filter(**lookups).all()
    assert ll.Artifact.filter().count() == 5


def test_bad_ordering_and_limits(catalog: dict[str, ll.Artifact]) -> None:
    with pytest.raises(QueryError, match="unknown field 'colour'"):
        ll.Artifact.filter().order_by("-colour")
    with pytest.raises(QueryError, match="non-negative"):
        ll.Artifact.filter().limit(-1)


def test_values_cannot_inject_sql(catalog: dict[str, ll.Artifact]) -> None:
    hostile = "x' OR '1'='1"
    assert ll.Artifact.filter(key=hostile).count() == 0
    assert ll.Artifact.filter(key__startswith=hostile).count() == 0
    assert ll.Artifact.filter(key__contains="' OR 1=1 --").count() == 0
    # only words reach the search engine: FTS/tsquery syntax and quotes are dropped
    assert [a.key for a in ll.Artifact.search("x\" ) NEAR( * csv' --;")] == []  # words x near csv
    assert [a.key for a in ll.Artifact.search("x\")* csv' --;")] == ["raw_other/x.csv"]
    assert ll.Artifact.filter().count() == 5


def test_search(catalog: dict[str, ll.Artifact]) -> None:
    assert [a.key for a in ll.Artifact.search("notes")] == ["raw/notes.txt"]
    found = {a.key for a in ll.Artifact.search("read")}  # prefix match
    assert found == {"raw/reads_1.csv", "raw/reads_2.csv", "raw/notes.txt"}
    assert {a.key for a in ll.Artifact.search("reads 2")} == {"raw/reads_2.csv"}
    assert ll.Artifact.search("counts").filter(suffix=".tsv").count() == 1
    assert ll.Artifact.search("zebra").all() == []
    with pytest.raises(QueryError, match="needs some words"):
        ll.Artifact.search("  --  ")


def test_search_ranks_a_pool_of_the_newest_matches(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A common word ranks only the newest matches (fast at scale); too few results from
    the pool fall back to ranking every match; exhaustive=True always does; count is exact."""
    from lakeline import query

    monkeypatch.setattr(query, "SEARCH_POOL", 5)  # pool = max(5, 10 x limit) = 20 for limit 2
    folder = tmp_path / "many"
    folder.mkdir()
    artifacts = []
    for i in range(31):  # the oldest two: the best match (the word thrice) and a .csv
        suffix = ".csv" if i < 2 else ".txt"
        path = folder / f"f{i:02d}{suffix}"
        path.write_text(f"content {i}")
        text = "common common common" if i == 0 else f"common word number {i}"
        artifacts.append(ll.Artifact(path, key=f"many/f{i:02d}{suffix}", description=text))
    ll.save(artifacts)
    ranked = ll.Artifact.search("common", limit=2)
    assert len(ranked.all()) == 2 and "many/f00.csv" not in {a.key for a in ranked}
    assert ranked.count() == 31  # counting is never bounded
    everything = ll.Artifact.search("common", limit=2, exhaustive=True).all()
    assert everything[0].key == "many/f00.csv"  # bm25 / ts_rank: the word three times
    # the pool (newest 20) holds no .csv: the search falls back to every match
    csv = ll.Artifact.search("common", limit=2).filter(suffix=".csv").all()
    assert [a.key for a in csv] == ["many/f00.csv", "many/f01.csv"]
    frame = ll.Artifact.search("common", limit=2).filter(suffix=".csv").to_dataframe(["key"])
    assert list(frame["key"]) == ["many/f00.csv", "many/f01.csv"]
    assert ll.Artifact.search("common").filter(suffix=".csv").first().key == "many/f00.csv"  # type: ignore[union-attr]
    # fewer matches than the pool: the same answer as ranking everything
    rare = [a.key for a in ll.Artifact.search("number 3", limit=5)]
    assert rare == [a.key for a in ll.Artifact.search("number 3", limit=5, exhaustive=True)]
    assert set(rare) == {"many/f03.txt", "many/f30.txt"}  # words are prefixes: 3 and 30


def test_search_follows_updates_and_deletes(catalog: dict[str, ll.Artifact]) -> None:
    art = catalog["raw/reads_2.csv"]
    art.description = "sequencing of the platypus"
    art.save()
    assert [a.key for a in ll.Artifact.search("platypus")] == ["raw/reads_2.csv"]
    ll.Artifact.get(art.uid).delete()
    assert ll.Artifact.search("platypus").all() == []


def test_other_registries_filter_and_search(catalog: dict[str, ll.Artifact]) -> None:
    assert ll.Transform.get(key="align").kind == "rule"
    assert [t.key for t in ll.Transform.search("ali")] == ["align"]
    assert ll.Run.filter(transform__key="align", status="completed").count() == 1
    assert ll.User.filter(handle=ll.connect().user.handle).count() == 1
