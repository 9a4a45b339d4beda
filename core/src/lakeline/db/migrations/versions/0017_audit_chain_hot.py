"""PostgreSQL audit: the chaining at commit reads a transaction's entries in id order from the
primary key and fills them in place (HOT)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 23:10:00.000000

The chaining at commit (`lakeline_audit_chain()`, 0009/0014) ran ~14-17 us of server CPU an
entry, serial at the end of every writing transaction (of a 10,000-file save: ~150 ms after
the last file). Same entries, digests, hashes and chain; three costs less:
- `audit_log` at fillfactor 45 (was 70): an entry grows by its seq and two hashes (~140 bytes)
  when chained, and PostgreSQL writes the whole row again; at 70 a page held no room for
  most of them (at a 10,000-file save 37 % of the UPDATEs were HOT, each other one a new row
  version on another page and a new entry in both indexes). At 45 an entry of ~360 bytes or
  more (an artifact's ~650) is chained on its own page: every such UPDATE is HOT. The table
  takes as many pages as at 70 (the moved versions took them).
- The entries read in id order from the primary key (`enable_bitmapscan = off`): the bitmap
  scan read them in page order, and the numbering sorted whole entries (spilled to disk
  beyond `work_mem`: 6 MB for 10,000 artifacts).
- The chain as a running aggregate that starts from the head (`lakeline_chain_from(head,
  digest)`) over the same order: no head row put in front of the digests, so no second sort.
Measured (bench/pg_row.py's COPY of 10,000 new artifact rows into copies of one catalog, 0016's
chaining and this one alternated, 7 rounds, load 14): commit 15.4 -> 10.1 us a row (best;
medians 16.3 -> 10.3), the COPY unchanged (medians 52.2 / 51.9).
Downgrade: 0014's function and fillfactor 70. SQLite: nothing.
"""

from __future__ import annotations

from alembic import op
from lakeline.db.pg_helpers import in_catalog_schema

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

FILLFACTOR = 45
SETTINGS = (
    "SET search_path = public, pg_catalog SET plan_cache_mode = force_generic_plan "
    "SET enable_seqscan = off SET jit = off"
)

# `lakeline_chain` (0009) is strict: a NULL digest leaves the state as it was; so here
STEP = r"""
CREATE FUNCTION lakeline_chain_from_step(state text, head text, digest text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF digest IS NULL THEN
        RETURN coalesce(state, head);
    END IF;
    RETURN encode(sha256(convert_to(coalesce(state, head) || '|' || digest, 'UTF8')), 'hex');
END $$;

-- the chain from `head` (the chain head before the first value) over the digests
CREATE AGGREGATE lakeline_chain_from(text, text) (SFUNC = lakeline_chain_from_step, STYPE = text);
"""

CHAIN = r"""
CREATE OR REPLACE FUNCTION lakeline_audit_chain() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER {settings}{more} AS $function$
DECLARE
    head_seq bigint;
    head_hash text;
BEGIN
    -- the serialization point: one transaction at a time extends the chain, in commit order
    SELECT seq, hash INTO head_seq, head_hash FROM audit_head FOR UPDATE;
{body}
    SELECT seq, hash INTO head_seq, head_hash FROM done ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        UPDATE audit_head SET seq = head_seq, hash = head_hash;
    END IF;
    DELETE FROM audit_pending WHERE txid = NEW.txid;
    RETURN NULL;
END $function$
"""

BODY = """\
    -- set-based, in id order (the primary key's): digests per entry, the chain as a running
    -- aggregate from the head over them, each entry filled in place (HOT: fillfactor)
    WITH todo AS (
        SELECT ctid AS t, id, head_seq + row_number() OVER (ORDER BY id) AS seq, at, actor,
               tbl, uid, action, changes
        FROM audit_log WHERE id >= NEW.first_id AND seq IS NULL
    ), chained AS (
        SELECT t, id, seq, lakeline_chain_from(head_hash,
                   lakeline_audit_digest(seq, at, actor, tbl, uid, action, changes))
                   OVER (ORDER BY id) AS hash
        FROM todo
    ), framed AS (
        SELECT t, seq, hash, coalesce(lag(hash) OVER (ORDER BY id), head_hash) AS prev
        FROM chained
    ), done AS (
        UPDATE audit_log a SET seq = f.seq, prev_hash = f.prev, hash = f.hash
        FROM framed f WHERE a.ctid = f.t
        RETURNING f.seq, f.hash
    )"""

# 0014's (0009's statement, entries found again by their row address)
BODY_0014 = """\
    -- set-based: digests per entry, then the chain as a running aggregate over them
    WITH todo AS (
        SELECT ctid AS t, head_seq + row_number() OVER (ORDER BY id) AS seq, at, actor, tbl, uid,
               action, changes
        FROM audit_log WHERE id >= NEW.first_id AND seq IS NULL
    ), links AS (
        SELECT NULL::tid AS t, head_seq AS seq, head_hash AS d
        UNION ALL
        SELECT t, seq, lakeline_audit_digest(seq, at, actor, tbl, uid, action, changes)
        FROM todo
    ), chained AS (
        SELECT t, seq, lakeline_chain(d) OVER (ORDER BY seq) AS hash FROM links
    ), framed AS (
        SELECT t, seq, hash, lag(hash) OVER (ORDER BY seq) AS prev FROM chained
    ), done AS (
        UPDATE audit_log a SET seq = f.seq, prev_hash = f.prev, hash = f.hash
        FROM framed f WHERE f.t IS NOT NULL AND a.ctid = f.t
        RETURNING f.seq, f.hash
    )"""


def _chain(body: str, more: str) -> None:
    sql = CHAIN.format(settings=SETTINGS, more=more, body=body)
    bind = op.get_bind()
    bind.exec_driver_sql(in_catalog_schema(bind, sql).replace("%", "%%"))  # no bind parameters


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(STEP)
    _chain(BODY, " SET enable_bitmapscan = off")
    op.execute(f"ALTER TABLE audit_log SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _chain(BODY_0014, "")
    op.execute("DROP AGGREGATE lakeline_chain_from(text, text)")
    op.execute("DROP FUNCTION lakeline_chain_from_step(text, text, text)")
    op.execute("ALTER TABLE audit_log SET (fillfactor = 70)")
