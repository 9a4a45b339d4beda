"""PostgreSQL: an artifact's references to users, storages and spaces checked once a statement

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 11:00:00.000000

The foreign keys of `artifacts.created_by_id`, `storage_id` and `space_id` checked every new row
on its own (a queued row trigger, a lookup and a row lock in the small table: ~10 us of server
CPU a row, bench/pg_row.py), for the few users, storages and spaces a bulk save names. One
statement-level trigger over the inserted rows (`lakeline_artifact_refs`) does the same check
once a statement: the distinct ids of the new rows, their rows in users, storages and spaces
locked as a foreign key's check locks them (FOR KEY SHARE: not deleted, nor their id changed,
before this transaction ends), a missing one refused. An UPDATE that changes one of the three
columns is checked per changed row (a row trigger WHEN it changed, as the foreign key did).
Deleting, truncating or changing the id of a user, storage or space that artifacts still name
is refused by a trigger on each of the three tables (`lakeline_artifact_refs_kept`).

The errors are the foreign keys' own: SQLSTATE 23503 (foreign_key_violation, an
IntegrityError), their message, detail, schema, table and constraint names; TRUNCATE: 0A000.
Both functions run with the owner's rights (as PostgreSQL's own checks do: a writer needs no
rights on the small tables, and row-level security hides no referencing row from the check).
Under READ COMMITTED (lakeline's, PostgreSQL's default) the checks see and lock what the
foreign keys saw and locked; a delete of a user, storage or space in a REPEATABLE READ
transaction does not see artifacts committed after its snapshot (a foreign key's check does):
delete those in READ COMMITTED.

SQLite keeps its foreign keys: it checks each row with one index lookup in the same process
(no queued trigger events to save) and has no statement-level triggers. The models keep the
ForeignKey declarations (relationships, SQLite's schema); the model comparison leaves these
two out (`db/migrate.py`, the space's was never mapped).
Downgrade: the three foreign keys again (validated against every row), the triggers dropped.
"""

from __future__ import annotations

from alembic import op
from lakeline.db.pg_helpers import in_catalog_schema
from sqlalchemy import text

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# (column of artifacts, referenced table, the foreign key's name in a catalog made by 0001/0008)
REFS = (
    ("created_by_id", "users", "fk_artifacts_created_by_id_users"),
    ("storage_id", "storages", "fk_artifacts_storage_id_storages"),
    ("space_id", "spaces", "artifacts_space_id_fkey"),
)
# Run as the owner: every built-in is called as pg_catalog's (a role that may CREATE in `public`
# could define there an overload more specific than a polymorphic or variadic built-in, e.g.
# `cardinality(integer[])`, which PostgreSQL would pick over `pg_catalog.cardinality(anyarray)`
# whatever the search_path's order), the helper by schema with arguments of its exact types.
SETTINGS = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp SET jit = off"

REFS_FUNCTION = f"""
CREATE FUNCTION lakeline_artifact_refs() RETURNS trigger LANGUAGE plpgsql {SETTINGS} AS $$
DECLARE
    user_ids integer[];
    storage_ids integer[];
    space_ids integer[];
    found_n bigint;
    missing integer;
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN  -- an INSERT: every new row's references, distinct
        SELECT
            pg_catalog.array_agg(DISTINCT g.created_by_id)
                FILTER (WHERE g.created_by_id IS NOT NULL),
            pg_catalog.array_agg(DISTINCT g.storage_id) FILTER (WHERE g.storage_id IS NOT NULL),
            pg_catalog.array_agg(DISTINCT g.space_id) FILTER (WHERE g.space_id IS NOT NULL)
        INTO user_ids, storage_ids, space_ids
        FROM (SELECT created_by_id, storage_id, space_id FROM new_rows GROUP BY 1, 2, 3) g;
    ELSE  -- an UPDATE of one row: the references it changed
        IF NEW.created_by_id IS DISTINCT FROM OLD.created_by_id THEN
            user_ids := pg_catalog.array_remove(ARRAY[NEW.created_by_id], NULL);
        END IF;
        IF NEW.storage_id IS DISTINCT FROM OLD.storage_id THEN
            storage_ids := pg_catalog.array_remove(ARRAY[NEW.storage_id], NULL);
        END IF;
        IF NEW.space_id IS DISTINCT FROM OLD.space_id THEN
            space_ids := pg_catalog.array_remove(ARRAY[NEW.space_id], NULL);
        END IF;
    END IF;
    -- each referenced row locked as a foreign key's check locks it; one missing is refused
    IF pg_catalog.cardinality(user_ids) > 0 THEN
        SELECT pg_catalog.count(*) INTO found_n
        FROM (SELECT 1 FROM users WHERE id = ANY(user_ids) FOR KEY SHARE) l;
        IF found_n < pg_catalog.cardinality(user_ids) THEN
            SELECT i INTO missing FROM pg_catalog.unnest(user_ids) i
            WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = i) ORDER BY i LIMIT 1;
            PERFORM public.lakeline_artifact_ref_missing(TG_TABLE_SCHEMA::text,
                'created_by_id'::text, 'users'::text,
                'fk_artifacts_created_by_id_users'::text, missing);
        END IF;
    END IF;
    IF pg_catalog.cardinality(storage_ids) > 0 THEN
        SELECT pg_catalog.count(*) INTO found_n
        FROM (SELECT 1 FROM storages WHERE id = ANY(storage_ids) FOR KEY SHARE) l;
        IF found_n < pg_catalog.cardinality(storage_ids) THEN
            SELECT i INTO missing FROM pg_catalog.unnest(storage_ids) i
            WHERE NOT EXISTS (SELECT 1 FROM storages s WHERE s.id = i) ORDER BY i LIMIT 1;
            PERFORM public.lakeline_artifact_ref_missing(TG_TABLE_SCHEMA::text,
                'storage_id'::text, 'storages'::text,
                'fk_artifacts_storage_id_storages'::text, missing);
        END IF;
    END IF;
    IF pg_catalog.cardinality(space_ids) > 0 THEN
        SELECT pg_catalog.count(*) INTO found_n
        FROM (SELECT 1 FROM spaces WHERE id = ANY(space_ids) FOR KEY SHARE) l;
        IF found_n < pg_catalog.cardinality(space_ids) THEN
            SELECT i INTO missing FROM pg_catalog.unnest(space_ids) i
            WHERE NOT EXISTS (SELECT 1 FROM spaces p WHERE p.id = i) ORDER BY i LIMIT 1;
            PERFORM public.lakeline_artifact_ref_missing(TG_TABLE_SCHEMA::text,
                'space_id'::text, 'spaces'::text,
                'artifacts_space_id_fkey'::text, missing);
        END IF;
    END IF;
    RETURN NULL;
END $$
"""

# a missing referenced row: the foreign key's error (ri_ReportViolation's words); the schema
# is the caller's TG_TABLE_SCHEMA (current_schema() under the pinned search_path is pg_catalog)
MISSING_FUNCTION = """
CREATE FUNCTION lakeline_artifact_ref_missing(sch text, col text, tbl text, con text, id integer)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
        MESSAGE = pg_catalog.format(
            'insert or update on table "artifacts" violates foreign key constraint "%s"', con),
        DETAIL = pg_catalog.format(
            'Key (%s)=(%s) is not present in table "%s".', col, id, tbl),
        SCHEMA = sch, TABLE = 'artifacts', CONSTRAINT = con;
END $$
"""

KEPT_FUNCTION = f"""
CREATE FUNCTION lakeline_artifact_refs_kept() RETURNS trigger LANGUAGE plpgsql {SETTINGS} AS $$
DECLARE
    ids integer[];
    bad integer;
    col text;
    con text;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        col := 'created_by_id'; con := 'fk_artifacts_created_by_id_users';
    ELSIF TG_TABLE_NAME = 'storages' THEN
        col := 'storage_id'; con := 'fk_artifacts_storage_id_storages';
    ELSE
        col := 'space_id'; con := 'artifacts_space_id_fkey';
    END IF;
    IF TG_OP = 'TRUNCATE' THEN  -- refused while artifacts has rows (a foreign key: always)
        IF EXISTS (SELECT 1 FROM artifacts) THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = 'cannot truncate a table referenced in a foreign key constraint',
                DETAIL = pg_catalog.format('Table "artifacts" references "%s".', TG_TABLE_NAME),
                HINT = 'Delete the rows of table "artifacts" first.';
        END IF;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT pg_catalog.array_agg(id) INTO ids FROM old_rows;
    ELSE  -- an UPDATE of one row's id: refused while artifacts name the old one
        ids := ARRAY[OLD.id];
    END IF;
    IF TG_TABLE_NAME = 'users' THEN
        SELECT a.created_by_id INTO bad FROM artifacts a WHERE a.created_by_id = ANY(ids) LIMIT 1;
    ELSIF TG_TABLE_NAME = 'storages' THEN
        SELECT a.storage_id INTO bad FROM artifacts a WHERE a.storage_id = ANY(ids) LIMIT 1;
    ELSE
        SELECT a.space_id INTO bad FROM artifacts a WHERE a.space_id = ANY(ids) LIMIT 1;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = pg_catalog.format('update or delete on table "%s" violates foreign key '
                'constraint "%s" on table "artifacts"', TG_TABLE_NAME, con),
            DETAIL = pg_catalog.format(
                'Key (id)=(%s) is still referenced from table "artifacts".', bad),
            SCHEMA = TG_TABLE_SCHEMA, TABLE = 'artifacts', CONSTRAINT = con;
    END IF;
    RETURN NULL;
END $$
"""

CHANGED = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column, _, _ in REFS)
TRIGGERS = [
    "CREATE TRIGGER lakeline_artifact_refs AFTER INSERT ON artifacts "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION lakeline_artifact_refs()",
    "CREATE TRIGGER lakeline_artifact_refs_update AFTER UPDATE OF "
    f"{', '.join(column for column, _, _ in REFS)} ON artifacts FOR EACH ROW WHEN ({CHANGED}) "
    "EXECUTE FUNCTION lakeline_artifact_refs()",
]
for _, _table, _ in REFS:
    TRIGGERS += [
        f"CREATE TRIGGER lakeline_artifact_refs_kept AFTER DELETE ON {_table} "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION lakeline_artifact_refs_kept()",
        f"CREATE TRIGGER lakeline_artifact_refs_kept_id AFTER UPDATE OF id ON {_table} "
        "FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) "
        "EXECUTE FUNCTION lakeline_artifact_refs_kept()",
        f"CREATE TRIGGER lakeline_artifact_refs_kept_truncate BEFORE TRUNCATE ON {_table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION lakeline_artifact_refs_kept()",
    ]


def _foreign_keys() -> list[str]:
    """The names of artifacts' foreign keys on the three columns, whatever they were named."""
    rows = op.get_bind().execute(
        text(
            "SELECT c.conname FROM pg_catalog.pg_constraint c "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = ANY(c.conkey) "
            "WHERE c.conrelid = CAST('artifacts' AS regclass) AND c.contype = 'f' "
            "AND a.attname IN ('created_by_id', 'storage_id', 'space_id') ORDER BY 1"
        )
    )
    return [str(r[0]) for r in rows]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _foreign_keys():
        op.execute(f'ALTER TABLE artifacts DROP CONSTRAINT "{name}"')
    for statement in (MISSING_FUNCTION, REFS_FUNCTION, KEPT_FUNCTION, *TRIGGERS):
        bind = op.get_bind()  # no bind parameters
        bind.exec_driver_sql(in_catalog_schema(bind, statement).replace("%", "%%"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER lakeline_artifact_refs ON artifacts")
    op.execute("DROP TRIGGER lakeline_artifact_refs_update ON artifacts")
    for _, table, _ in REFS:
        for suffix in ("", "_id", "_truncate"):
            op.execute(f"DROP TRIGGER lakeline_artifact_refs_kept{suffix} ON {table}")
    op.execute("DROP FUNCTION lakeline_artifact_refs()")
    op.execute("DROP FUNCTION lakeline_artifact_refs_kept()")
    op.execute("DROP FUNCTION lakeline_artifact_ref_missing(text, text, text, text, integer)")
    for column, table, name in REFS:
        op.execute(
            f"ALTER TABLE artifacts ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {table} (id)"
        )
