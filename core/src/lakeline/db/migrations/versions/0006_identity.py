"""identity from the database: on PostgreSQL a record's creator is the connected role

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 06:30:00.000000

PostgreSQL only (SQLite is single-user: file permissions are the boundary, the creator is the
OS user). `lakeline_user_id()` is the `users` row whose handle is `session_user` (the login
role: `SET ROLE` cannot change it). A statement-level trigger on every table with
`created_by_id` refuses, whatever SQL the client sends, a row created in another user's name
and an update that changes a row's creator; on `users`, a role may add or change only its own
row. The check reads the statement's transition tables once (no per-row trigger), so COPY
keeps its speed. SQLSTATE 42501 with a message starting `lakeline:` (db/errors.py shows it).
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CREATOR_TABLES = (
    "storages",
    "transforms",
    "runs",
    "artifacts",
    "collections",
    "features",
    "ulabels",
    "schemas",
    "feature_values",
    "artifact_ulabels",
)

FUNCTIONS = r"""
CREATE FUNCTION lakeline_user_id() RETURNS integer LANGUAGE sql STABLE AS
$$ SELECT id FROM users WHERE handle = session_user $$;

-- enable_nestloop off: the planner misjudges transition tables and joined old and new rows
-- by nested loop (quadratic: 4k updated rows took 5 s, 20k minutes); a hash join is linear
CREATE FUNCTION lakeline_check_creator() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
DECLARE
    me integer := lakeline_user_id();
    bad integer;
    changed bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT created_by_id INTO bad FROM new_rows
        WHERE created_by_id IS NOT NULL AND created_by_id IS DISTINCT FROM me LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
                'lakeline: role %I may not create %s rows in the name of another user '
                '(created_by_id %s; yours is %s)', session_user, TG_TABLE_NAME, bad,
                coalesce(me::text, 'not recorded yet'));
        END IF;
    ELSE
        SELECT count(*) INTO changed FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE n.created_by_id IS DISTINCT FROM o.created_by_id;
        IF changed > 0 THEN
            RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
                'lakeline: role %I may not change who created %s rows', session_user,
                TG_TABLE_NAME);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION lakeline_check_own_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM new_rows WHERE handle IS DISTINCT FROM session_user LIMIT 1;
    IF FOUND AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
            'lakeline: role %I may only record or change its own user (handle %L)',
            session_user, session_user);
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTIONS)
    for table in CREATOR_TABLES:
        op.execute(
            f"CREATE TRIGGER lakeline_creator_insert AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION lakeline_check_creator()"
        )
        op.execute(
            f"CREATE TRIGGER lakeline_creator_update AFTER UPDATE ON {table} "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION lakeline_check_creator()"
        )
    for event in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER lakeline_own_user_{event.lower()} AFTER {event} ON users "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION lakeline_check_own_user()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in CREATOR_TABLES:
        op.execute(f"DROP TRIGGER lakeline_creator_insert ON {table}")
        op.execute(f"DROP TRIGGER lakeline_creator_update ON {table}")
    op.execute("DROP TRIGGER lakeline_own_user_insert ON users")
    op.execute("DROP TRIGGER lakeline_own_user_update ON users")
    op.execute("DROP FUNCTION lakeline_check_own_user()")
    op.execute("DROP FUNCTION lakeline_check_creator()")
    op.execute("DROP FUNCTION lakeline_user_id()")
