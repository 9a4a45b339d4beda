"""audit log: every insert, update and delete of catalog rows, by database triggers, in a
hash chain

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 07:30:00.000000

`audit_log` (seq, at, actor, tbl, uid, action, changes, prev_hash, hash): `hash` is the sha256
of `prev_hash` and the digest of the entry's canonical text (`lakeline.access.audit` documents
it), so an edited, deleted or reordered entry breaks the chain. `audit_head` holds the
chain's last seq and hash.

PostgreSQL: statement-level AFTER triggers (transition tables: one call per statement, COPY
included) append one entry per row, unchained; a deferred constraint trigger on
`audit_pending` chains the transaction's entries at COMMIT under the row lock of `audit_head`.
Concurrent writers therefore serialize only for the chaining at commit, in commit order, and
the chain never forks. The functions are SECURITY DEFINER: no role but the owner can write
`audit_log`. A role held to spaces sees only its own entries (row-level security).

SQLite (one writer at a time): row triggers append and chain each entry at once through two
functions every lakeline connection registers (`lakeline_actor()`, the OS user, and
`lakeline_hash(...)`); a client without them cannot write catalog rows unaudited.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from lakeline.db.pg_helpers import in_catalog_schema

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
SKIP = frozenset({"alembic_version", "audit_log", "audit_head", "audit_pending"})

PG_FUNCTIONS = r"""
CREATE FUNCTION lakeline_audit_digest(seq bigint, at timestamptz, actor text, tbl text,
                                      uid text, action text, changes jsonb)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(convert_to(seq::text || '|'
        || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '|' || actor || '|' || tbl || '|' || coalesce(uid, '') || '|' || action
        || '|' || changes::text, 'UTF8')), 'hex')
$$;

CREATE FUNCTION lakeline_chain_step(state text, digest text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN encode(sha256(convert_to(state || '|' || digest, 'UTF8')), 'hex');
END $$;

-- strict, no initial state: the first value (the chain head) starts it
CREATE AGGREGATE lakeline_chain(text) (SFUNC = lakeline_chain_step, STYPE = text);

CREATE FUNCTION lakeline_audit_hash(prev text, seq bigint, at timestamptz, actor text,
                                    tbl text, uid text, action text, changes jsonb)
RETURNS text LANGUAGE sql STABLE AS $$
    -- lakeline_chain_step written out: inlined into `verify`'s query, no call per entry
    SELECT encode(sha256(convert_to(
        prev || '|' || lakeline_audit_digest(seq, at, actor, tbl, uid, action, changes),
        'UTF8')), 'hex')
$$;

-- enable_nestloop off: old and new rows of an UPDATE are joined by hash (the planner picked
-- a nested loop over the transition tables: quadratic)
CREATE FUNCTION lakeline_audit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_catalog SET enable_nestloop = off AS $$
DECLARE
    keys text := TG_ARGV[0];  -- the primary key columns, to pair old and new rows
    -- below every id this statement's entries get: where the chaining at commit looks from
    first_id bigint := (SELECT last_value FROM audit_log_id_seq);
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_log (at, actor, tbl, uid, action, changes)
        SELECT statement_timestamp(), session_user, TG_TABLE_NAME, r ->> 'uid', 'insert', r
        FROM (SELECT jsonb_strip_nulls(to_jsonb(n)) - 'search_vector' AS r FROM new_rows n) s;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit_log (at, actor, tbl, uid, action, changes)
        SELECT statement_timestamp(), session_user, TG_TABLE_NAME, r ->> 'uid', 'delete', r
        FROM (SELECT jsonb_strip_nulls(to_jsonb(o)) - 'search_vector' AS r FROM old_rows o) s;
    ELSE
        EXECUTE format($q$
            INSERT INTO audit_log (at, actor, tbl, uid, action, changes)
            SELECT statement_timestamp(), session_user, %L, n ->> 'uid', 'update', d
            FROM (SELECT to_jsonb(o) AS o, to_jsonb(n) AS n
                  FROM old_rows o JOIN new_rows n USING (%s)
                  OFFSET 0) p,  -- not flattened: each row converted once, not once per key
            LATERAL (SELECT jsonb_object_agg(k, jsonb_build_array(p.o -> k, p.n -> k)) AS d
                     FROM jsonb_object_keys(p.n) AS k
                     WHERE k <> 'search_vector' AND (p.o -> k) IS DISTINCT FROM (p.n -> k)) c
            WHERE d IS NOT NULL$q$, TG_TABLE_NAME, keys);
    END IF;
    INSERT INTO audit_pending (txid, first_id) VALUES (pg_current_xact_id()::text, first_id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION lakeline_audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_catalog AS $$
DECLARE
    head_seq bigint;
    head_hash text;
BEGIN
    -- the serialization point: one transaction at a time extends the chain, in commit order
    SELECT seq, hash INTO head_seq, head_hash FROM audit_head FOR UPDATE;
    -- set-based: digests per entry, then the chain as a running aggregate over them
    WITH todo AS (
        SELECT id, head_seq + row_number() OVER (ORDER BY id) AS seq, at, actor, tbl, uid,
               action, changes
        FROM audit_log WHERE id >= NEW.first_id AND seq IS NULL
    ), links AS (
        SELECT NULL::bigint AS id, head_seq AS seq, head_hash AS d
        UNION ALL
        SELECT id, seq, lakeline_audit_digest(seq, at, actor, tbl, uid, action, changes)
        FROM todo
    ), chained AS (
        SELECT id, seq, lakeline_chain(d) OVER (ORDER BY seq) AS hash FROM links
    ), framed AS (
        SELECT id, seq, hash, lag(hash) OVER (ORDER BY seq) AS prev FROM chained
    ), done AS (
        UPDATE audit_log a SET seq = f.seq, prev_hash = f.prev, hash = f.hash
        FROM framed f WHERE f.id IS NOT NULL AND a.id = f.id
        RETURNING f.seq, f.hash
    )
    SELECT seq, hash INTO head_seq, head_hash FROM done ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        UPDATE audit_head SET seq = head_seq, hash = head_hash;
    END IF;
    DELETE FROM audit_pending WHERE txid = NEW.txid;
    RETURN NULL;
END $$;
"""


def _pg(tables: dict[str, list[str]]) -> None:
    op.execute(
        "CREATE TABLE audit_pending (txid text PRIMARY KEY, first_id bigint NOT NULL)"
    )  # one row per writing transaction, until it commits
    op.execute(in_catalog_schema(op.get_bind(), PG_FUNCTIONS))
    op.execute(
        "CREATE CONSTRAINT TRIGGER lakeline_audit_chain AFTER INSERT ON audit_pending "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lakeline_audit_chain()"
    )
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY lakeline_own ON audit_log FOR SELECT "
        "USING ((SELECT lakeline_spaces()) IS NULL OR actor = session_user)"
    )
    for table, keys in tables.items():
        argument = ", ".join(keys).replace("'", "")
        for event, refs in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            op.execute(
                f"CREATE TRIGGER lakeline_audit_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {refs} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION lakeline_audit('{argument}')"
            )


def _sqlite_changes(columns: list[str], row: str) -> str:
    pairs = ", ".join(f"'{c}', {row}.\"{c}\"" for c in columns)
    return f"json_patch('{{}}', json_object({pairs}))"


def _sqlite(tables: dict[str, list[str]], columns: dict[str, list[str]]) -> None:
    for table in tables:
        cols = columns[table]
        uid = "uid" if "uid" in cols else "NULL"
        changed = " OR ".join(f'OLD."{c}" IS NOT NEW."{c}"' for c in cols)
        diff = ", ".join(
            f'\'{c}\', CASE WHEN OLD."{c}" IS NOT NEW."{c}" '
            f'THEN json_array(OLD."{c}", NEW."{c}") END'
            for c in cols
        )
        for event, row, changes, when in (
            ("INSERT", "NEW", _sqlite_changes(cols, "NEW"), ""),
            ("UPDATE", "NEW", f"json_patch('{{}}', json_object({diff}))", f" WHEN {changed}"),
            ("DELETE", "OLD", _sqlite_changes(cols, "OLD"), ""),
        ):
            record = f"{row}.{uid}" if uid == "uid" else "NULL"
            action = event.lower()
            op.execute(
                f"CREATE TRIGGER lakeline_audit_{table}_{action} AFTER {event} ON {table}{when} "
                "BEGIN INSERT INTO audit_log "
                "(seq, at, actor, tbl, uid, action, changes, prev_hash, hash) "
                f"SELECT s.seq, s.at, s.actor, '{table}', s.uid, '{action}', s.changes, s.prev, "
                f"lakeline_hash(s.prev, s.seq, s.at, s.actor, '{table}', s.uid, '{action}', "
                "s.changes) FROM (SELECT h.seq + 1 AS seq, h.hash AS prev, "
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS at, lakeline_actor() AS actor, "
                f"{record} AS uid, {changes} AS changes FROM audit_head h) s; "
                "UPDATE audit_head SET seq = seq + 1, hash = (SELECT hash FROM audit_log "
                "ORDER BY seq DESC LIMIT 1); END"
            )


def _at_type(postgres: bool) -> sa.types.TypeEngine[Any]:
    """timestamptz; on SQLite the text the triggers write (strftime, UTC, milliseconds)."""
    return sa.DateTime(timezone=True) if postgres else sa.String(32)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("at", _at_type(postgres), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("tbl", sa.Text(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=True),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("changes", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")),
        sa.Column("prev_hash", sa.String(64), nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    # one index besides the key (a record's history): each one costs every audited write;
    # `--user` and `--since` scan the log, a rare, human-paced question
    op.create_index("ix_audit_log_uid", "audit_log", ["uid"])
    if postgres:
        # chaining at commit fills seq, prev_hash, hash in place: no index names them and
        # pages keep room, so those UPDATEs are HOT (no new index entries, no page moves)
        op.execute("ALTER TABLE audit_log SET (fillfactor = 70)")
    else:
        op.create_index("ix_audit_log_seq", "audit_log", ["seq"], unique=True)
    op.create_table(
        "audit_head",
        sa.Column("one", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("one", name="pk_audit_head"),
        sa.CheckConstraint("one", name="ck_audit_head_one"),
    )
    op.execute(f"INSERT INTO audit_head (one, seq, hash) VALUES (true, 0, '{GENESIS}')")
    inspector = sa.inspect(bind)
    tables: dict[str, list[str]] = {}
    columns: dict[str, list[str]] = {}
    for table in sorted(inspector.get_table_names()):
        if table in SKIP or table.startswith("artifacts_fts"):
            continue
        tables[table] = inspector.get_pk_constraint(table)["constrained_columns"]
        columns[table] = [c["name"] for c in inspector.get_columns(table)]
    if postgres:
        _pg(tables)
    else:
        _sqlite(tables, columns)


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    for table in sorted(sa.inspect(bind).get_table_names()):
        if table in SKIP or table.startswith("artifacts_fts"):
            continue
        for action in ("insert", "update", "delete"):
            name = f"lakeline_audit_{action}" if postgres else f"lakeline_audit_{table}_{action}"
            op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP TABLE audit_pending")
        for name in (
            "lakeline_audit_chain()",
            "lakeline_audit()",
            "lakeline_audit_hash(text, bigint, timestamptz, text, text, text, text, jsonb)",
        ):
            op.execute(f"DROP FUNCTION {name}")
        op.execute("DROP AGGREGATE lakeline_chain(text)")
        op.execute("DROP FUNCTION lakeline_chain_step(text, text)")
        op.execute(
            "DROP FUNCTION lakeline_audit_digest"
            "(bigint, timestamptz, text, text, text, text, jsonb)"
        )
    op.drop_table("audit_head")
    op.drop_table("audit_log")
