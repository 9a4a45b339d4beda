"""spaces: artifacts, runs and labels belong to a space; row-level security on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 07:00:00.000000

`spaces` (space 1 is `all`) and `space_members` (space, login role). `artifacts`, `runs` and
`ulabels` get `space_id` (NOT NULL, default 1; a plain ADD COLUMN on SQLite, no table rebuild).
The column and both tables are the database's machinery, not mapped by the models (like the
search column): inserts leave `space_id` out, so the database's default decides.

PostgreSQL: the default is `lakeline_default_space()` (the first space of a role held to spaces,
else `all`), and row-level security on artifacts, runs, ulabels (and the annotation rows of
artifacts: feature_values, artifact_ulabels, artifact_schemas) lets a role held to spaces see
and write only their rows, whatever SQL it sends. `lakeline_spaces()` is evaluated once per
statement (an InitPlan): a role held to no space pays one comparison per row. A new version of
an artifact stays in its previous version's space (a statement-level trigger).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from lakeline.db.pg_helpers import in_catalog_schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SPACE_TABLES = ("artifacts", "runs", "ulabels")
ANNOTATION_TABLES = ("feature_values", "artifact_ulabels", "artifact_schemas")

FUNCTIONS = r"""
CREATE FUNCTION lakeline_spaces() RETURNS integer[] LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_catalog AS
$$ SELECT array_agg(space_id ORDER BY space_id) FROM space_members WHERE role = session_user $$;

CREATE FUNCTION lakeline_default_space() RETURNS integer LANGUAGE sql STABLE AS
$$ SELECT coalesce((SELECT min(space_id) FROM space_members WHERE role = session_user), 1) $$;

CREATE FUNCTION lakeline_version_space() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE artifacts a SET space_id = p.space_id
    FROM new_rows n JOIN artifacts p ON p.stem = n.stem AND p.id <> n.id
    WHERE a.id = n.id AND n.space_id = 1 AND p.space_id <> 1
      AND right(n.uid, 4) <> '0000';  -- a first version has no previous one
    RETURN NULL;
END $$;
"""

VISIBLE = (
    "(SELECT lakeline_spaces()) IS NULL OR space_id = ANY ((SELECT lakeline_spaces())::integer[])"
)
ANNOTATION_VISIBLE = (
    "(SELECT lakeline_spaces()) IS NULL OR artifact_id IN (SELECT id FROM artifacts)"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "spaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_spaces"),
        sa.UniqueConstraint("uid", name="uq_spaces_uid"),
        sa.UniqueConstraint("name", name="uq_spaces_name"),
    )
    op.create_table(
        "space_members",
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("space_id", "role", name="pk_space_members"),
    )
    op.create_index("ix_space_members_role", "space_members", ["role"])
    op.execute(
        "INSERT INTO spaces (id, uid, name, description, created_at) VALUES "
        "(1, 'all0000000000000', 'all', 'every record not in another space', "
        f"{'now()' if postgres else 'CURRENT_TIMESTAMP'})"
    )
    # SQLite refuses ADD COLUMN ... REFERENCES with a non-NULL default while foreign keys are
    # on: there the column is checked by lakeline's space commands only
    references = " REFERENCES spaces (id)" if postgres else ""
    for table in SPACE_TABLES:
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN space_id INTEGER NOT NULL DEFAULT 1{references}"
        )
        op.create_index(f"ix_{table}_space_id", table, ["space_id"])
    if not postgres:
        return
    op.execute("SELECT setval(pg_get_serial_sequence('spaces', 'id'), 1)")
    op.execute(in_catalog_schema(op.get_bind(), FUNCTIONS))
    op.execute(
        "CREATE TRIGGER lakeline_version_space AFTER INSERT ON artifacts "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION lakeline_version_space()"
    )
    for table in SPACE_TABLES:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN space_id SET DEFAULT lakeline_default_space()"
        )
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY lakeline_space ON {table} USING ({VISIBLE})")
    for table in ANNOTATION_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY lakeline_space ON {table} USING ({ANNOTATION_VISIBLE})")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for table in (*SPACE_TABLES, *ANNOTATION_TABLES):
            op.execute(f"DROP POLICY lakeline_space ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute("DROP TRIGGER lakeline_version_space ON artifacts")
    for table in SPACE_TABLES:
        op.drop_index(f"ix_{table}_space_id", table_name=table)
        if postgres:
            op.execute(f"ALTER TABLE {table} DROP COLUMN space_id")
        else:
            with op.batch_alter_table(table) as batch:
                batch.drop_column("space_id")
    if postgres:
        for name in ("lakeline_version_space()", "lakeline_default_space()", "lakeline_spaces()"):
            op.execute(f"DROP FUNCTION {name}")
    op.drop_table("space_members")
    op.drop_table("spaces")
