"""Where the SQLite audit triggers' instructions go in a batched flush: `bench/flush_instr.py`
with every `lakeline_audit_*` trigger of the fresh catalog changed by one variant.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \\
        .venv/bin/python bench/audit_instr.py --variant NAME [flush_instr.py's options]

Run each variant at two batch counts (e.g. `--flushes 2` and `--flushes 8`, `--steps 100`) and
take the difference of the totals a step. Each variant but `whole` takes one part away or
replaces it with a constant: a bound on what cutting that part could gain, not the same entries.
`noop_hash`: the hash call kept, its Python body a constant (the call and its arguments'
conversion alone). The variants rewrite the triggers in 0012's form (the catalog's own);
`group` is the `json_group_object` form stop 29 tried (-0.7 % a step: not taken, see
docs/scaling.md). Asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

HASH_CALL = "lakeline_hash(s.prev, s.seq, s.at, s.actor, "
PATCH = "json_patch('{}', json_object("
HEAD_READ = "hash = (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1)"
HEAD_UPDATE = (
    "UPDATE audit_head SET seq = seq + 1, hash = (SELECT hash FROM audit_log ORDER BY seq DESC "
    "LIMIT 1);"
)
# text replaced in every audit trigger, and statements run after
VARIANTS: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    "whole": ([], []),
    "no_audit": ([("DROP", "")], []),
    "const_hash": ([(r"lakeline_hash\(s\.prev, [^)]*\)", "'0' || s.seq")], []),
    "noop_hash": ([(HASH_CALL, "bench_noop(s.prev, s.seq, s.at, s.actor, ")], []),
    "const_actor": ([("lakeline_actor()", "'root'")], []),
    "const_at": ([("strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", "'2026-12-07T10:00:00.000Z'")], []),
    "no_patch": ([(PATCH, "(json_object(")], []),
    "const_changes": (
        [(r"json_patch\('\{\}', json_object\(.*\)\) AS changes", "'{}' AS changes")],
        [],
    ),
    "head_by_rowid": (
        [(HEAD_READ, "hash = (SELECT hash FROM audit_log WHERE id = last_insert_rowid())")],
        [],
    ),
    "no_head_read": ([(HEAD_READ, "hash = 'h'")], []),
    "no_head": ([(HEAD_UPDATE, "")], ["DROP INDEX ix_audit_log_seq"]),
    "no_uid_index": ([], ["DROP INDEX ix_audit_log_uid"]),
    "no_seq_index": (
        [(HEAD_READ, "hash = (SELECT hash FROM audit_log WHERE id = last_insert_rowid())")],
        ["DROP INDEX ix_audit_log_seq"],
    ),
    "no_offset": ([("FROM audit_head h LIMIT -1 OFFSET 0) s;", "FROM audit_head h) s;")], []),
}


def _const(*_args: object) -> str:
    return "0" * 64


def _chain(prev: str, body: bytes) -> str:
    """`lakeline_hash` of the entry's text given whole, as UTF-8 bytes."""
    import hashlib

    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha256(f"{prev}|{digest}".encode()).hexdigest()


def _key(conn: object, column: str) -> str:
    """`,"column":` as a SQL literal, the key as SQLite's JSON functions write it."""
    quoted = conn.exec_driver_sql("SELECT json_quote(?)", (column,)).scalar_one()  # type: ignore[attr-defined]
    return "'," + str(quoted).replace("'", "''") + ":'"


def _concat(conn: object, table: str, action: str) -> str:
    """The entry's changes as `json_patch('{}', json_object(...))` writes them, built by
    concatenation (no JSON parse): one piece a column, NULLs left out."""
    info = conn.exec_driver_sql(f'PRAGMA table_info("{table}")').all()  # type: ignore[attr-defined]
    pieces = []
    for _cid, name, _type, notnull, _default, _pk in info:
        key = _key(conn, name)
        if action == "update":
            pieces.append(
                f'CASE WHEN OLD."{name}" IS NOT NEW."{name}" THEN {key} || '
                f'json_array(OLD."{name}", NEW."{name}") ELSE \'\' END'
            )
            continue
        row = "OLD" if action == "delete" else "NEW"
        piece = f'{key} || json_quote({row}."{name}")'
        pieces.append(
            piece if notnull else f"CASE WHEN {row}.\"{name}\" IS NULL THEN '' ELSE {piece} END"
        )
    return "'{' || substr(" + " || ".join(pieces) + ", 2) || '}' AS changes"


def _group(conn: object, table: str, action: str) -> str:
    """The same changes as one aggregate over (column, value) rows, NULLs out (stop 29's trial)."""
    info = conn.exec_driver_sql(f'PRAGMA table_info("{table}")').all()  # type: ignore[attr-defined]
    names = [row[1] for row in info]
    if action == "update":
        rows = ", ".join(
            f'(\'{c}\', CASE WHEN OLD."{c}" IS NOT NEW."{c}" '
            f'THEN json_array(OLD."{c}", NEW."{c}") END)'
            for c in names
        )
        value = "json(v)"
    else:
        row = "OLD" if action == "delete" else "NEW"
        rows = ", ".join(f"('{c}', {row}.\"{c}\")" for c in names)
        value = "v"
    return (  # a CTE: a bare VALUES' column1 does not resolve in a trigger
        f"(WITH c(k, v) AS (VALUES {rows}) "
        f"SELECT json_group_object(k, {value}) FROM c WHERE v IS NOT NULL) AS changes"
    )


def _built(conn: object, name: str, sql: str, how: set[str]) -> str:
    """`sql` (an audit trigger) with the parts named in `how` written another way."""
    table, action = re.fullmatch(r"lakeline_audit_(.+)_(insert|update|delete)", name).groups()  # type: ignore[union-attr]
    if "concat" in how:
        sql = re.sub(
            r"json_patch\('\{\}', json_object\(.*\)\) AS changes",
            lambda _m: _concat(conn, table, action),
            sql,
        )
    if "group" in how:
        sql = re.sub(
            r"json_patch\('\{\}', json_object\(.*\)\) AS changes",
            lambda _m: _group(conn, table, action),
            sql,
        )
    if how & {"group", "concat"} and "json_patch" in sql:
        raise SystemExit(f"{name} is not as this bench expects")
    if "blob" in how:
        body = (
            f"CAST(s.seq || '|' || s.at || '|' || s.actor || '|{table}|' || coalesce(s.uid, '') "
            f"|| '|{action}|' || s.changes AS BLOB)"
        )
        sql = re.sub(
            r"lakeline_hash\(s\.prev, [^)]*\)", lambda _m: f"bench_chain(s.prev, {body})", sql
        )
    if "head_trigger" in how:
        sql = sql.replace(HEAD_UPDATE, "")
    if "head_rowid" in how:
        sql = sql.replace(
            HEAD_READ, "hash = (SELECT hash FROM audit_log WHERE id = last_insert_rowid())"
        )
    return sql


BUILT = {
    "concat": {"concat"},
    "group": {"group"},
    "group_head": {"group", "head_trigger"},
    "blob": {"blob"},
    "head_trigger": {"head_trigger"},
    "concat_blob": {"concat", "blob"},
    "concat_blob_head": {"concat", "blob", "head_trigger"},
}
HEAD_TRIGGER = (
    "CREATE TRIGGER bench_head AFTER INSERT ON audit_log "
    "BEGIN UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash; END"
)


def _prepare(variant: str) -> None:
    from lakeline.instance import current
    from sqlalchemy import text

    replaced, after = VARIANTS.get(variant, ([], []))
    how = BUILT.get(variant, set())
    with current().engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'lakeline_audit_%'"
            )
        ).all()
        for name, sql in rows:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
            if replaced and replaced[0][0] == "DROP":
                continue
            sql = _built(conn, name, sql, how)
            for old, new in replaced:  # a pattern if it starts with r"...": else literal
                pattern = (
                    old if old.startswith(("lakeline_hash\\(", "json_patch\\(")) else re.escape(old)
                )
                if not re.search(pattern, sql):
                    raise SystemExit(f"{name} is not as this bench expects: no {old[:50]!r}")
                sql = re.sub(pattern, lambda _m, new=new: new, sql)
            conn.exec_driver_sql(sql.replace("%", "%%"))
        if "head_trigger" in how:
            conn.exec_driver_sql(HEAD_TRIGGER)
        for statement in after:
            conn.exec_driver_sql(statement)
    current().engine.dispose()  # new connections: the bench functions below


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--variant", choices=sorted([*VARIANTS, *BUILT]), default="whole")
    args, rest = parser.parse_known_args()
    sys.argv[1:] = rest
    import lakeline.db.sqlite_functions as functions

    register = functions.register

    def with_bench(dbapi_conn: object) -> None:
        register(dbapi_conn)
        dbapi_conn.create_function("bench_noop", 8, _const, deterministic=True)  # type: ignore[attr-defined]
        dbapi_conn.create_function("bench_chain", 2, _chain, deterministic=True)  # type: ignore[attr-defined]

    functions.register = with_bench  # type: ignore[assignment]
    import flush_instr

    flush_instr.main(lambda: _prepare(args.variant))


if __name__ == "__main__":
    main()
