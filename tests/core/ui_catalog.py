"""A small catalog for the web UI's tests: a workflow with steps, hostile text everywhere."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import lakeline as ll
from lakeline.instance import Instance
from lakeline.lineage.recorder import Recorder

XSS = '<script>alert("x")</script>'


@dataclass
class Catalog:
    raw: ll.Artifact  # data/reads.csv, input of align
    counts: ll.Artifact  # out/counts.csv, output of align, input of summarise
    summary: ll.Artifact  # out/summary.txt
    hostile: ll.Artifact  # a key and description with <script>
    workflow: ll.Run
    align: ll.Run
    failed: ll.Run


def build(tmp_path: Path) -> Catalog:
    """Save a hostile artifact and record a three-step workflow through the Recorder."""
    root = tmp_path / "wf"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "data" / "reads.csv").write_text("sample,reads\ns1,10\ns2,20\n")
    hostile_file = tmp_path / "hostile.txt"
    hostile_file.write_text(f"text with {XSS}\n")
    hostile = ll.Artifact(
        hostile_file, key=f"notes/{XSS}.txt", description=f"described as {XSS}"
    ).save()
    rec = Recorder("toy", root=root)
    wf = rec.start_workflow(
        key="toy-pipeline", engine_run_id="run-1", source_code=f"rule align: # {XSS}\n"
    )
    align = rec.start_step(
        wf,
        key="align",
        kind="rule",
        engine_task_id="1",
        params={"threads": 4, "note": XSS},
        source_code=f"def align():\n    return '{XSS}'\n",
    )
    rec.use(align, root / "data" / "reads.csv")
    (root / "out" / "counts.csv").write_text("sample,count\ns1,5\ns2,7\n")
    rec.produce(align, root / "out" / "counts.csv")
    rec.finish_step(align, "completed", exit_code=0)
    summarise = rec.start_step(wf, key="summarise", kind="rule", engine_task_id="2")
    rec.use(summarise, root / "out" / "counts.csv")
    (root / "out" / "summary.txt").write_text("12 reads counted\n")
    rec.produce(summarise, root / "out" / "summary.txt")
    rec.finish_step(summarise, "completed", exit_code=0)
    broken = rec.start_step(wf, key="plot", kind="rule", engine_task_id="3")
    rec.use(broken, root / "out" / "summary.txt")
    failed = rec.finish_step(
        broken, "errored", exit_code=1, error=f"Traceback (most recent call last):\n  {XSS}\n"
    )
    rec.finish_workflow(wf, "errored")
    get = ll.Artifact.get
    return Catalog(
        raw=get(key="data/reads.csv"),
        counts=get(key="out/counts.csv"),
        summary=get(key="out/summary.txt"),
        hostile=hostile,
        workflow=ll.Run.get(wf.run.uid),
        align=ll.Run.get(align.run.uid),
        failed=failed,
    )


@dataclass
class Annotations:
    """Features, labels, a schema and a collection on `Catalog.counts`, hostile names too."""

    cell_type: ll.ULabel  # a label type
    t_cell: ll.ULabel  # of that type, a value of the categorical feature `cells`
    b_cell: ll.ULabel  # of that type, a plain label on counts
    hostile_label: ll.ULabel  # named XSS, a plain label on counts
    temperature: ll.Feature  # float, 37.5 on counts
    cells: ll.Feature  # cat[ULabel[CellType]]
    hostile_feature: ll.Feature  # str, named and valued with XSS
    schema: ll.Schema  # counts was validated against it (slot obs)
    collection: ll.Collection  # second version: raw, counts
    first_collection: ll.Collection  # first version: raw only


HOSTILE_FEATURE = f"note {XSS}"


def annotate(catalog: Catalog) -> Annotations:
    """Annotate `catalog.counts` through the public API, and put it in a collection."""
    cell_type = ll.ULabel(name="CellType", is_type=True, description=f"kinds {XSS}").save()
    t_cell, b_cell, hostile_label = ll.save(
        [
            ll.ULabel(name="T cell", type=cell_type),
            ll.ULabel(name="B cell", type=cell_type),
            ll.ULabel(name=XSS, description=f"a label described as {XSS}"),
        ]
    )
    temperature, cells, hostile_feature = ll.save(
        [
            ll.Feature(name="temperature", dtype=float, unit="°C"),
            ll.Feature(name="cells", dtype="cat[ULabel[CellType]]"),
            ll.Feature(name=HOSTILE_FEATURE, dtype=str, description=f"about {XSS}"),
        ]
    )
    schema = ll.Schema(
        [temperature, cells], name=f"obs {XSS}", otype="DataFrame", description=XSS
    ).save()
    ll.save(
        [
            ll.Feature(name="n_reads", dtype=int),
            ll.Feature(name="passed", dtype=bool),
            ll.Feature(name="sampled_on", dtype="date"),
            ll.Feature(name="sequenced_at", dtype="datetime"),
            ll.Feature(name="genes", dtype="list[str]"),
        ]
    )
    counts = catalog.counts
    counts.features.add_values(
        {
            "temperature": 37.5,
            "cells": "T cell",
            HOSTILE_FEATURE: f"value {XSS}",
            "n_reads": 12,
            "passed": True,
            "sampled_on": date(2026, 12, 1),
            "sequenced_at": datetime(2026, 12, 2, 9, 30, tzinfo=UTC),
            "genes": ["CD3E", "CD19"],
        }
    )
    counts.labels.add([b_cell, hostile_label])
    counts.features.add_schema(schema, slot="obs")
    first = ll.Collection([catalog.raw], key="sets/reads", description=f"v1 {XSS}").save()
    second = ll.Collection([catalog.raw, counts], key="sets/reads", description=XSS).save()
    return Annotations(
        cell_type=cell_type,
        t_cell=t_cell,
        b_cell=b_cell,
        hostile_label=hostile_label,
        temperature=temperature,
        cells=cells,
        hostile_feature=hostile_feature,
        schema=schema,
        collection=second,
        first_collection=first,
    )


@contextmanager
def database_away(instance: Instance) -> Iterator[None]:
    """The instance's database gone for the block (PostgreSQL: its sessions ended and the
    database renamed; SQLite: the file renamed), then back."""
    from sqlalchemy.engine import make_url

    url = make_url(instance.config.db)
    if instance.dialect == "postgresql":
        import psycopg

        admin = url.set(database="postgres", drivername="postgresql")
        dsn = admin.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (url.database,),
            )
            connection.execute(f'ALTER DATABASE "{url.database}" RENAME TO "{url.database}_away"')
    else:
        Path(str(url.database)).rename(f"{url.database}.away")
    try:
        yield
    finally:
        if instance.dialect == "postgresql":
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(
                    f'ALTER DATABASE "{url.database}_away" RENAME TO "{url.database}"'
                )
        else:
            Path(f"{url.database}.away").rename(str(url.database))


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(*options: str) -> Iterator[str]:
    """`lakeline ui` in a subprocess on a free loopback port (the current instance, from the
    environment the fixtures set); yields its base URL and stops it afterwards."""
    import httpx

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lakeline.cli", "ui", "--port", str(port), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"lakeline ui exited: {process.stdout.read()}")  # type: ignore[union-attr]
            try:
                httpx.get(f"{base}/static/style.css", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
