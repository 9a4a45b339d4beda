"""`search()` on every registry — the core's and one a module adds — with the ranking artifacts
have (bm25 on SQLite, ts_rank on PostgreSQL), kept in step with inserts, updates and deletes;
`lakeline search --registry`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from click.testing import CliRunner, Result
from lakeline.cli import cli
from lakeline.errors import QueryError
from lakeline.ids import new_stem, new_uid, versioned_uid
from lakeline.instance import Instance
from lakeline.models import Base, Run, RunInput, Transform
from lakeline.models.base import Queryable
from lakeline.query import QuerySet
from lakeline.search import drop_search_index_ddl, search_fields, search_index_ddl
from sqlalchemy import Integer, MetaData, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _runs(instance: Instance) -> list[Run]:
    """A transform `align` with three runs; the first errored with a MemoryError."""
    with instance.sessions.write() as session:
        transform = Transform(
            uid=versioned_uid(new_stem(), 0), stem="", key="pipelines/align.nf", kind="pipeline"
        )
        transform.stem = transform.uid[:12]
        transform.description = "align reads to the reference genome"
        session.add(transform)
        session.flush()
        runs = [
            Run(uid=new_uid(), transform_id=transform.id, status="errored", engine="nextflow",
                engine_ref="happy_turing/ALIGN (sample_1)", host="node-7",
                error="MemoryError: out of memory while sorting sample_1")
            ,
            Run(uid=new_uid(), transform_id=transform.id, status="completed", engine="nextflow",
                engine_ref="happy_turing/ALIGN (sample_2)", host="node-8"),
            Run(uid=new_uid(), transform_id=transform.id, status="completed", engine="snakemake",
                engine_ref="sort_bam", host="node-7"),
        ]  # fmt: skip
        session.add_all(runs)
    return runs


def test_every_registry_is_searched_and_ranked(instance: Instance, tmp_path: Path) -> None:
    runs = _runs(instance)
    # Run had no search (a QueryError); now words of engine, engine_ref, host and error
    assert [r.uid for r in ll.Run.search("sample_1")] == [runs[0].uid]
    assert [r.uid for r in ll.Run.search("node 7")] == [runs[2].uid, runs[0].uid]  # newest first
    assert [r.uid for r in ll.Run.search("memoryerror")] == [runs[0].uid]
    assert ll.Run.search("happy").count() == 2
    assert [r.uid for r in ll.Run.search("happy").filter(status="completed")] == [runs[1].uid]
    assert [t.key for t in ll.Transform.search("genom")] == ["pipelines/align.nf"]
    cell_type = ll.ULabel(name="CellType", is_type=True, description="the type of these")
    ll.save(
        [
            cell_type,
            ll.ULabel(name="T cell", type=cell_type, description="a cell of the thymus"),
            ll.ULabel(name="cell cell cell", type=cell_type),  # the word thrice ranks first
            ll.ULabel(name="B lymphocyte", type=cell_type),
        ]
    )
    assert next(x.name for x in ll.ULabel.search("cell")) == "cell cell cell"
    assert {x.name for x in ll.ULabel.search("cell")} == {"CellType", "T cell", "cell cell cell"}
    assert [x.name for x in ll.ULabel.search("lympho")] == ["B lymphocyte"]
    ll.ULabel.get(name="B lymphocyte").add_synonym("B-cell")  # an UPDATE the index follows
    assert [x.name for x in ll.ULabel.search("B-cell")] == ["B lymphocyte"]
    temperature = ll.Feature(name="temperature", dtype=float, unit="°C", description="of culture")
    ll.save([temperature, ll.Feature(name="cell_type", dtype="cat[ULabel[CellType]]")])
    assert [f.name for f in ll.Feature.search("culture")] == ["temperature"]
    assert [f.name for f in ll.Feature.search("cell type")] == ["cell_type"]
    ll.Schema([ll.Feature.get(name="temperature")], name="sc-obs", description="culture").save()
    assert [s.name for s in ll.Schema.search("sc obs")] == ["sc-obs"]
    src = tmp_path / "a.txt"
    src.write_text("a")
    ll.Collection([ll.Artifact(src, key="x/a.txt").save()], key="datasets/mouse_brain").save()
    assert [c.key for c in ll.Collection.search("mouse")] == ["datasets/mouse_brain"]
    assert [s.root for s in ll.Storage.search(Path(instance.storage.root).name)] == [
        instance.storage.root
    ]
    handle = ll.User.filter().first().handle  # type: ignore[union-attr]
    assert [u.handle for u in ll.User.search(handle)] == [handle]
    # deleting a record removes it from the index
    with instance.sessions.write() as session:
        session.execute(text("DELETE FROM runs WHERE uid = :uid"), {"uid": runs[2].uid})
    assert [r.uid for r in ll.Run.search("node 7")] == [runs[0].uid]
    # a registry without text fields says so
    with pytest.raises(QueryError, match="RunInput has no text fields to search"):
        QuerySet(RunInput, instance).search("anything")


def test_a_limited_search_ranks_a_pool_on_every_registry(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for artifacts: the newest matches are ranked, too few fall back to all of them."""
    from lakeline import query

    monkeypatch.setattr(query, "SEARCH_POOL", 5)  # pool = max(5, 10 x limit) = 20 for limit 2
    names = ["common common common", *(f"common word number {i}" for i in range(1, 31))]
    ll.save([ll.ULabel(name=n) for n in names])
    ranked = [x.name for x in ll.ULabel.search("common", limit=2)]
    assert len(ranked) == 2 and "common common common" not in ranked  # oldest: not in the pool
    assert ll.ULabel.search("common", limit=2).count() == 31
    everything = ll.ULabel.search("common", limit=2, exhaustive=True).all()
    assert everything[0].name == "common common common"
    oldest = ll.ULabel.search("common", limit=2).filter(name__endswith="common").all()
    assert [x.name for x in oldest] == ["common common common"]  # the fallback over every match


# -- a registry a module adds ---------------------------------------------------------------------


class ModuleBase(DeclarativeBase):
    metadata = MetaData()


class Protocol(ModuleBase, Queryable):
    """A module's registry: declares its search fields, its migration creates the index."""

    __tablename__ = "testmod_protocols"
    search_fields = ("name", "description")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)


@pytest.fixture
def protocols(instance: Instance) -> Iterator[Instance]:
    ModuleBase.metadata.create_all(instance.engine)
    with instance.engine.begin() as conn:
        conn.execute(
            Protocol.__table__.insert(),
            [
                {"uid": new_uid(), "name": "10x Chromium v3", "description": "single cell"},
                {"uid": new_uid(), "name": "Smart-seq2", "description": "single cell; single cell"},
                {"uid": new_uid(), "name": "bulk RNA-seq", "description": None},
            ],
        )  # rows written before the index: the migration indexes them
        for statement in search_index_ddl("testmod_protocols", Protocol.search_fields,
                                          instance.dialect):  # fmt: skip
            conn.exec_driver_sql(statement)
    yield instance
    with instance.engine.begin() as conn:
        for statement in drop_search_index_ddl("testmod_protocols", instance.dialect):
            conn.exec_driver_sql(statement)
    ModuleBase.metadata.drop_all(instance.engine)


def test_a_module_registry_is_searched_like_the_core_ones(protocols: Instance) -> None:
    assert [p.name for p in Protocol.search("single cell")] == ["Smart-seq2", "10x Chromium v3"]
    assert [p.name for p in Protocol.search("seq")] == ["bulk RNA-seq", "Smart-seq2"]
    assert Protocol.filter(name__startswith="10x").count() == 1
    with protocols.engine.begin() as conn:  # new rows are indexed by the triggers / column
        conn.execute(Protocol.__table__.insert(), {"uid": new_uid(), "name": "CITE-seq"})
    assert [p.name for p in Protocol.search("cite")] == ["CITE-seq"]


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_searchable_registry_has_its_index(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """After the migrations, each model's `search_fields` are exactly the indexed fields."""
    from lakeline.db.engine import make_engine
    from lakeline.db.migrate import upgrade

    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
        upgrade(make_engine(url))
    else:
        url = request.getfixturevalue("postgres_url")
    searchable = {m.class_ for m in Base.registry.mappers if search_fields(m.class_)}
    assert {m.__name__ for m in searchable} >= {
        "Artifact", "Run", "Transform", "Collection", "Feature", "ULabel", "Schema", "Storage",
    }  # fmt: skip
    engine = make_engine(url)
    with engine.connect() as conn:
        for model in searchable:
            table = model.__table__.name
            if dialect == "sqlite":
                rows = conn.exec_driver_sql(f"PRAGMA table_info({table}_fts)").all()
                assert tuple(row[1] for row in rows) == model.search_fields, table
                continue
            expression = conn.execute(
                text(
                    "SELECT generation_expression FROM information_schema.columns "
                    "WHERE table_name = :t AND column_name = 'search_vector'"
                ),
                {"t": table},
            ).scalar_one()
            # since 0021 a call of the table's function, the fields its arguments in order
            call = re.fullmatch(rf"(?:\w+\.)?lakeline_search_{table}\((.*)\)", expression)
            assert call, (table, expression)
            indexed = [re.sub(r'^\(|\)(::\w+)?$|"', "", a) for a in call[1].split(", ")]
            assert indexed == list(model.search_fields), (table, expression)
            assert conn.execute(
                text("SELECT 1 FROM pg_indexes WHERE indexname = :i"),
                {"i": f"ix_{table}_search_vector"},
            ).scalar_one()
    engine.dispose()


# -- the command line -----------------------------------------------------------------------------


def _cli(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))


def test_cli_searches_any_registry(instance: Instance) -> None:
    runs = _runs(instance)
    ll.ULabel(name="hepatocyte", description="a liver cell").save()
    result = _cli("search", "sample_1", "--registry", "run")
    assert result.exit_code == 0, result.output
    assert runs[0].uid in result.output and "1 run records" in result.output
    found = _cli("search", "node", "--registry", "Run", "--json")
    records: list[dict[str, Any]] = [json.loads(line) for line in found.output.splitlines()]
    assert [r["uid"] for r in records] == [runs[2].uid, runs[1].uid, runs[0].uid]
    assert records[2]["error"].startswith("MemoryError") and records[2]["engine"] == "nextflow"
    labels = _cli("search", "liver", "--registry", "ulabel")
    assert labels.exit_code == 0 and "hepatocyte" in labels.output
    assert "no transform records match 'zebra'" in _cli("search", "zebra", "--registry",
                                                        "transform").output  # fmt: skip
    wrong = _cli("search", "x", "--registry", "runinput")
    assert wrong.exit_code == 2
    assert "'runinput' is not a searchable registry; choose from artifact, collection" in (
        wrong.output
    )
