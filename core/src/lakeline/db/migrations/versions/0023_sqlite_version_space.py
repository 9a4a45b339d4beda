"""A new version of an artifact stays in its previous version's space, on both databases

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 19:30:00.000000

PostgreSQL's `lakeline_version_space` trigger (0008) moves a new version inserted in `all`
(space 1) to the space of another version of its stem; SQLite had no such trigger: a new
version of an artifact moved with `lakeline space add` landed in `all`. The same trigger on
SQLite, a row trigger (SQLite has no statement-level ones): its WHEN clause skips a first
version (uid ending in `0000`) and a row given another space, so a save of new keys pays one
comparison a row; a new version one lookup by `stem` (indexed).
Which version's space: the newest other version's that is not `all` (uids of a stem sort by
version), on both. 0008's joined every version of the stem and took whichever row the plan
met first: with versions moved one by one (`lakeline space add <uid>`) a new version of one
moved into `c` could land in `b`, where an older version is, seen by `b`'s members and not
by `c`'s. And on PostgreSQL a role held to several spaces moved a new version into none: its
rows get its first space (`lakeline_default_space()`), not `all`, which the trigger skipped;
now a new row in its role's default space moves (into a space the role sees: row security).
PostgreSQL: the function's body replaced (same oid, trigger untouched).
Downgrade: the SQLite trigger dropped; PostgreSQL's function 0008's text again.
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# the space of the newest other version of the new row's stem that is not `all`
OTHER = "FROM artifacts p WHERE p.stem = NEW.stem AND p.id <> NEW.id AND p.space_id <> 1"
TRIGGER = (
    "CREATE TRIGGER lakeline_version_space AFTER INSERT ON artifacts "
    "WHEN NEW.space_id = 1 AND substr(NEW.uid, -4) <> '0000' BEGIN "
    f"UPDATE artifacts SET space_id = (SELECT p.space_id {OTHER} ORDER BY p.uid DESC LIMIT 1) "
    f"WHERE id = NEW.id AND EXISTS (SELECT 1 {OTHER}); END"
)
FUNCTION = (
    "CREATE OR REPLACE FUNCTION {h}.lakeline_version_space() RETURNS trigger LANGUAGE plpgsql AS $$"
)
# 0008's body, as it wrote it (the downgrade's: `pg_dump -s` as a fresh 0022's)
BODY_0008 = """
BEGIN
    UPDATE artifacts a SET space_id = p.space_id
    FROM new_rows n JOIN artifacts p ON p.stem = n.stem AND p.id <> n.id
    WHERE a.id = n.id AND n.space_id = 1 AND p.space_id <> 1
      AND right(n.uid, 4) <> '0000';  -- a first version has no previous one
    RETURN NULL;
END $$"""
# run by every saver (the owner too): the varchar comparison and call pg_catalog's, as a
# writer's `public.right(varchar, integer)` would be an exact match, picked over them
BODY = """
BEGIN
    -- a first version has no previous one: a save of new keys stops here (without calling
    -- lakeline_default_space(), which a COPY's default calls once)
    IF NOT EXISTS (SELECT 1 FROM new_rows n
                   WHERE pg_catalog.right(n.uid::pg_catalog.text, 4) OPERATOR(pg_catalog.<>) '0000')
    THEN
        RETURN NULL;
    END IF;
    UPDATE artifacts a SET space_id = v.space_id
    FROM (SELECT DISTINCT ON (n.id) n.id, p.space_id
          FROM new_rows n JOIN artifacts p
            ON p.stem::pg_catalog.text OPERATOR(pg_catalog.=) n.stem::pg_catalog.text
            AND p.id <> n.id
          WHERE n.space_id = (SELECT {h}.lakeline_default_space()) AND p.space_id <> 1
            AND pg_catalog.right(n.uid::pg_catalog.text, 4) OPERATOR(pg_catalog.<>) '0000'
          ORDER BY n.id, p.uid DESC) v  -- the newest other version's space
    WHERE a.id = v.id;
    RETURN NULL;
END $$"""


def _function(body: str) -> None:
    from lakeline.db.pg_helpers import helpers

    h = helpers(op.get_bind())
    op.execute(FUNCTION.replace("{h}", h) + body.replace("{h}", h))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(TRIGGER)
    else:
        _function(BODY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER lakeline_version_space")
    else:
        _function(BODY_0008)
