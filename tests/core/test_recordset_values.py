"""PostgreSQL: runs and files written over JSON (`db/recordset.py`) hold exactly what the
bound-parameter INSERT (the path it replaced, still taken where JSON does not fit) writes:
the same workflow recorded both ways, every column compared as the database holds it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lakeline as ll
import pytest
from lakeline.db import recordset
from lakeline.instance import Instance, disconnect
from lakeline.lineage import run_rows
from lakeline.lineage.recorder import BatchRecorder
from lakeline.testing_servers import PostgresServer
from sqlalchemy import text
from statements import recorded

pytestmark = pytest.mark.postgres

LONG = 600_000.0  # ms: never due by age in a test
ZONE = timezone(timedelta(hours=-3, minutes=-30))
PARAMS: list[dict[str, object] | None] = [
    None,
    {},
    {"json": '{"a": 1}', "null": None, "text_null": "null", "nested": {"x": [1, None, "[]"]}},
    {"big": 2**70, "neg": -(2**63), "f": 1.5, "zero": -0.0, "yes": True, "no": False},
    {"u": "é\u2028\\\"'", "ctl": "\x01\t\n", "emoji": "🦆", "": "empty key"},
]


def _record(root: Path, n: int) -> None:
    rec = BatchRecorder("toy", root=root, steps=1000, ms=LONG, started_ms=LONG)
    at = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=ZONE)  # every time given: compared
    wf = rec.start_workflow(key="p", engine_run_id="r", params={"top": [1, "2"]}, started_at=at)
    rec.flush()
    for i in range(n):
        name = f"{n}-{i}"
        (root / f"in-{name}.txt").write_text(f"in {name}")
        (root / f"out-{name}.txt").write_text(f"out {name}")
        step = rec.start_step(
            wf,
            key="s",
            kind="rule",
            engine_task_id=name,
            params=PARAMS[i % len(PARAMS)],
            source_code="print('\\x')\n",
            started_at=at + timedelta(microseconds=i),
        )
        rec.use(step, f"in-{name}.txt")
        rec.produce(step, f"out-{name}.txt")
        if i % 2:
            rec.finish_step(
                step,
                "errored",
                finished_at=at + timedelta(seconds=1, microseconds=i),
                exit_code=-(2**31),
                error="boom \\ é \u2028",
            )
        else:
            rec.finish_step(step, finished_at=at + timedelta(seconds=2, microseconds=i))
    rec.flush()


RUNS = """
SELECT r.engine_ref, r.status, r.status_log IS NULL, jsonb_typeof(r.status_log),
  jsonb_array_length(r.status_log), r.started_at, r.finished_at, r.scheduled_at,
  r.params IS NULL, jsonb_typeof(r.params), r.params::text, r.exit_code, r.error, r.host,
  r.pid IS NULL, r.process_started_at IS NULL, p.engine_ref, r.cached_from_id IS NULL,
  t.key, t.kind, t.source_code
FROM runs r LEFT JOIN runs p ON p.id = r.parent_id JOIN transforms t ON t.id = r.transform_id
WHERE r.engine = :engine ORDER BY r.engine_ref
"""
FILES = """
SELECT a.key, a.hash, a.size, a.kind, a.suffix, a.version, a.is_latest, r.engine_ref
FROM artifacts a LEFT JOIN runs r ON r.id = a.run_id
WHERE r.engine = :engine OR a.id IN (SELECT i.artifact_id FROM run_inputs i
  JOIN runs u ON u.id = i.run_id WHERE u.engine = :engine) ORDER BY a.key
"""
INPUTS = """
SELECT r.engine_ref, a.key FROM run_inputs i JOIN runs r ON r.id = i.run_id
JOIN artifacts a ON a.id = i.artifact_id WHERE r.engine = :engine ORDER BY 1, 2
"""


def _catalog(instance: Instance, root: Path) -> list[list[tuple[object, ...]]]:
    """The runs, files and inputs of engine `toy`, `root` cut from every text."""

    def cut(value: object) -> object:
        return value.replace(str(root), "") if isinstance(value, str) else value

    with instance.engine.connect() as conn:
        found = [
            [tuple(map(cut, row)) for row in conn.execute(text(sql), {"engine": "toy"})]
            for sql in (RUNS, FILES, INPUTS)
        ]
    assert all(found)
    return found


@pytest.mark.parametrize("n", [5, 23])
def test_runs_and_files_over_json_hold_what_bound_values_write(
    postgres_url: str,
    postgres_server: PostgresServer,
    lakeline_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    n: int,
) -> None:
    """The same workflow in two catalogs, over JSON and (the JSON path switched off) with
    bound values: the same rows."""
    from lakeline.testing import TEMPLATE_DB

    other = f"t_{uuid.uuid4().hex[:16]}"
    urls = {"json": postgres_url, "bound": postgres_server.create_database(other, TEMPLATE_DB)}
    try:
        catalogs = []
        for way, url in urls.items():
            if way == "bound":  # the other path: no statement over JSON
                for module in (recordset, run_rows):  # run_rows binds the name at import
                    monkeypatch.setattr(module, "recordset_sql", lambda *a, **k: None)
            instance = ll.init(storage=tmp_path / f"data-{way}", db=url, name=way)
            root = tmp_path / way
            root.mkdir()
            with recorded(instance.engine) as sent:
                _record(root, n)
            over_json = {
                table
                for sql, _ in sent
                for table in ("runs", "artifacts")
                if sql.startswith(f"INSERT INTO {table} ") and "jsonb_populate_recordset" in sql
            }
            assert over_json == ({"runs", "artifacts"} if way == "json" else set())
            catalogs.append(_catalog(instance, root))
            disconnect()
        assert catalogs[0] == catalogs[1]
    finally:
        disconnect()
        postgres_server.drop_database(other)
