"""What one new artifact or run row costs SQLite, trigger part by trigger part.

    uv run python bench/sqlite_row.py [--table artifacts|runs] [--rows 8000] [--every 1]
                                      [--variants whole,no_audit,...]

A fresh catalog (`ll.init`, one workflow run recorded for the runs' transform), copied once per
variant to /dev/shm; each variant changes the copy's triggers (or an index), then every copy gets
the same synthetic rows as 16-row INSERTs (a flush's shape), the copies taking turns chunk by
chunk (the order reversed every other chunk) so that load affects them alike. A transaction is
`--every` INSERTs (1: a capture flush, a commit per 16 rows; 64: a bulk save). Printed: the
thread CPU a row (the driver's execute calls, commits included) per variant and its difference
to `whole`. The `no_*`/`const_*` variants take one part away (not the same entries: a bound on
what cutting that part could gain). Tried for a migration 0019, the same entries written another
way: `concat` (the changes JSON built by concatenating `json_quote`s, no `json_patch` re-parse),
`hash_blob` (the entry text built in SQL, hashed from its bytes by a two-argument function),
`merged` (both triggers' statements as one trigger). `no_plain_indexes` drops the table's
non-unique indexes (no trigger: the scale of the row's own cost), `drop:<index>` one index.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sqlite3
import string
import tempfile
import time
from pathlib import Path
from typing import Any

CHUNK = 16


def _catalog(base: Path) -> Path:
    """A fresh catalog with one workflow run (a transform and a run for the runs' rows)."""
    import lakeline as ll
    from lakeline.instance import current
    from lakeline.lineage.recorder import BatchRecorder

    os.environ["LAKELINE_HOME"] = str(base / "home")
    ll.init(storage=base / "data", name="sqlite-row")
    rec = BatchRecorder("bench", root=base, steps=10**6, ms=10**9)
    rec.start_workflow(key="wf", engine_run_id="r")
    rec.flush()
    path = Path(str(current().engine.url.database))
    ll.disconnect()
    return path


def _connect(path: Path) -> sqlite3.Connection:
    """A connection set up as lakeline's engine sets one up (db/engine.py)."""
    from lakeline.db.sqlite_functions import register

    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    register(conn)  # the audit and search triggers' functions, as every lakeline connection
    conn.create_function("bench_chain", 2, _chain, deterministic=True)
    return conn


def _chain(prev: str, body: bytes) -> str:
    """`lakeline_hash` of the entry's text given whole, as UTF-8 bytes (variant `hash_blob`)."""
    import hashlib

    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha256(f"{prev}|{digest}".encode()).hexdigest()


def _token(n: int) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=n))


def _rows(table: str, conn: sqlite3.Connection, n: int) -> tuple[list[str], list[list[Any]]]:
    """`n` new rows of `table` (columns, values) as a save or a flush writes them."""
    now = "2026-12-06 01:50:00.123456"
    if table == "artifacts":
        columns = [
            *("key", "description", "suffix", "size", "hash", "hash_type", "storage_id"),
            *("store_key", "in_place", "uid", "created_at", "created_by_id", "stem"),
            *("is_latest", "available", "space_id"),
        ]
        rows = []
        for i in range(n):
            stem = _token(12)
            place = [f".lakeline/{stem}0000.txt", 0, stem + "0000", now, 1, stem, 1, 1, 1]
            rows.append([f"files/out{i}.txt", None, ".txt", 12, _token(22), "md5", 1, *place])
        return columns, rows
    transform, parent = conn.execute(
        "SELECT transform_id, id FROM runs ORDER BY id LIMIT 1"
    ).fetchone()
    columns = [
        *("transform_id", "status", "status_log", "started_at", "finished_at", "parent_id"),
        *("engine", "engine_ref", "host", "uid", "created_at", "created_by_id", "space_id"),
    ]
    log = f'[["started", "{now}"], ["completed", "{now}"]]'
    head = [transform, "completed", log, now, now, parent, "bench"]
    rows = [[*head, f"task{i}", "host1", _token(16), now, 1, 1] for i in range(n)]
    return columns, rows


def _sql(conn: sqlite3.Connection, name: str) -> str:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise SystemExit(f"no {name} in the catalog")
    return str(row[0])


def _replaced(sql: str, old: str, new: str) -> str:
    if old not in sql:
        raise SystemExit(f"the trigger is not as this bench expects: no {old[:60]!r}")
    return sql.replace(old, new)


def _variants(conn: sqlite3.Connection, table: str) -> dict[str, list[str]]:
    """Each variant's statements, run on its copy before the rows go in."""
    audit_name, fts_name = f"lakeline_audit_{table}_insert", f"{table}_fts_ai"
    audit, fts = _sql(conn, audit_name), _sql(conn, fts_name)
    found = re.search(r"json_patch\('\{\}', json_object\((.*?)\)\) AS changes", audit)
    if found is None:
        raise SystemExit("the audit trigger is not as this bench expects")
    changes = found.group(0)
    hashed = f"lakeline_hash(s.prev, s.seq, s.at, s.actor, '{table}', s.uid, 'insert', s.changes)"
    vocab = f"INSERT INTO {table}_fts_vocab"
    fts_row = re.search(rf"INSERT INTO {table}_fts\(rowid.*?\);", fts)
    assert fts_row is not None
    info = conn.execute(f"PRAGMA table_info({table})").fetchall()
    pieces = []
    for column in info:
        piece = f'\',"{column[1]}":\' || json_quote(NEW."{column[1]}")'
        null = f"CASE WHEN NEW.\"{column[1]}\" IS NULL THEN '' ELSE {piece} END"
        pieces.append(piece if column[3] else null)
    concat = "'{' || substr(" + " || ".join(pieces) + ", 2) || '}' AS changes"
    text = (
        f"CAST(s.seq || '|' || s.at || '|' || s.actor || '|{table}|' || coalesce(s.uid, '') "
        "|| '|insert|' || s.changes AS BLOB)"
    )
    drop_audit, drop_fts = f"DROP TRIGGER {audit_name}", f"DROP TRIGGER {fts_name}"
    plain = [i[1] for i in conn.execute(f"PRAGMA index_list({table})") if not i[2]]
    body = fts.split(" BEGIN ", 1)[1].rsplit(" END", 1)[0]
    merged = audit.rsplit(" END", 1)[0] + f" {body} END"  # one trigger a row, not two
    last = "(SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1)"
    return {
        "whole": [],
        "no_audit": [drop_audit],
        "no_search": [drop_fts],
        "no_vocab": [drop_fts, fts.split(vocab)[0] + " END"],
        "no_fts5": [drop_fts, fts.replace(fts_row.group(0), "")],
        "const_hash": [drop_audit, _replaced(audit, hashed, "'h'")],
        "const_changes": [drop_audit, _replaced(audit, changes, "'{}' AS changes")],
        "const_at": [
            drop_audit,
            _replaced(audit, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", "'2026-12-06T01:50Z'"),
        ],
        "no_patch": [
            drop_audit,
            _replaced(audit, "json_patch('{}', json_object(", "(json_object("),
        ],
        "const_actor": [drop_audit, _replaced(audit, "lakeline_actor()", "'me'")],
        "no_head_read": [drop_audit, _replaced(audit, last, "'h'")],
        "no_uid_index": ["DROP INDEX ix_audit_log_uid"],
        "merged": [drop_audit, drop_fts, merged],
        "concat": [drop_audit, _replaced(audit, changes, concat)],
        "hash_blob": [drop_audit, _replaced(audit, hashed, f"bench_chain(s.prev, {text})")],
        "bare": [drop_audit, drop_fts],
        "no_plain_indexes": [f"DROP INDEX {name}" for name in plain],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", choices=["artifacts", "runs"], default="artifacts")
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--every", type=int, default=1, help="16-row INSERTs a transaction")
    parser.add_argument("--variants", default="whole,no_audit,no_search,no_vocab,bare")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lakeline-bench-sqlite-row-"))
    shm = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else base
    copies: dict[str, tuple[sqlite3.Connection, Path]] = {}
    try:
        source = _catalog(base)
        with sqlite3.connect(source) as first:
            every = _variants(first, args.table)
            columns, rows = _rows(args.table, first, args.rows)
        names = args.variants.split(",")
        for name in names:  # drop:<index>: that index dropped
            if name.startswith("drop:"):
                every[name] = [f'DROP INDEX "{name[5:]}"']
        unknown = [n for n in names if n not in every]
        if unknown:
            raise SystemExit(f"no variant {unknown[0]!r}: one of {', '.join(every)}")
        for name in names:
            path = shm / f"{base.name}-{name.replace(':', '-')}.db"
            shutil.copy(source, path)
            conn = _connect(path)
            for statement in every[name]:
                conn.execute(statement)
            copies[name] = (conn, path)
        one = "(" + ", ".join("?" * len(columns)) + ")"
        insert = f"INSERT INTO {args.table} ({', '.join(columns)}) VALUES " + ", ".join(
            [one] * CHUNK
        )
        spent = {name: 0.0 for name in names}
        load = os.getloadavg()[0]
        for k in range(0, len(rows) - CHUNK + 1, CHUNK):
            j = k // CHUNK
            params = [v for row in rows[k : k + CHUNK] for v in row]
            for name in names if j % 2 == 0 else names[::-1]:
                conn = copies[name][0]
                start = time.thread_time()
                if j % args.every == 0:
                    conn.execute("BEGIN")
                conn.execute(insert, params)
                if j % args.every == args.every - 1:
                    conn.execute("COMMIT")
                spent[name] += time.thread_time() - start
        done = (len(rows) // CHUNK) * CHUNK
        print(
            f"{args.table}: {done} rows, 16 a statement, {args.every} statement(s) a "
            f"transaction, load {load:.1f}-{os.getloadavg()[0]:.1f}; thread CPU us a row"
        )
        whole = spent.get("whole")
        for name in names:
            per_row = spent[name] / done * 1e6
            delta = "" if whole is None else f"  {per_row - whole / done * 1e6:+6.1f}"
            print(f"  {name:<14} {per_row:7.1f}{delta}")
    finally:
        for conn, path in copies.values():
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
