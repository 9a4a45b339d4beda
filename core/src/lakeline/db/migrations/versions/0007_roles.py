"""roles: read / write / admin on PostgreSQL; a writer deletes only records it created

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 06:45:00.000000

PostgreSQL only. The group roles themselves and their GRANTs are made (idempotently) by
`lakeline init`/`migrate` (`lakeline.access.roles.setup_roles`): roles are cluster-wide, not
schema. Here: `lakeline_is_admin()` (superuser, a member of the table owner, or of the admin
group named in `settings`), a statement-level check that refuses deleting records another
user created unless admin, and `lakeline_grant`/`lakeline_revoke` (SECURITY DEFINER; anyone may
call them, they refuse whoever is not an admin) so an admin who is not the owner can hand out
the group roles.
"""

from __future__ import annotations

from alembic import op
from lakeline.db.pg_helpers import in_catalog_schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RECORD_TABLES = (
    "users",
    "storages",
    "transforms",
    "runs",
    "artifacts",
    "collections",
    "features",
    "ulabels",
    "schemas",
)

FUNCTIONS = r"""
CREATE FUNCTION lakeline_is_admin() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
        OR pg_has_role(session_user,
                       (SELECT relowner FROM pg_class WHERE oid = 'artifacts'::regclass),
                       'MEMBER')
        OR coalesce(
            (SELECT pg_has_role(session_user, value, 'MEMBER') FROM settings
             WHERE key = 'role_admin'
               AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = value)), false)
$$;

CREATE FUNCTION lakeline_check_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    me integer := lakeline_user_id();
BEGIN
    PERFORM 1 FROM old_rows WHERE created_by_id IS DISTINCT FROM me LIMIT 1;
    IF FOUND AND NOT lakeline_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
            'lakeline: deleting %s another user created needs the admin role '
            '(role %I may delete only its own)', TG_TABLE_NAME, session_user);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION lakeline_group(level text) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    name text;
BEGIN
    IF level NOT IN ('read', 'write', 'admin') THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format(
            'lakeline: unknown access level %L (read, write or admin)', level);
    END IF;
    SELECT value INTO name FROM settings WHERE key = 'role_' || level;
    IF name IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE =
            'lakeline: the roles are not set up: run `lakeline migrate` as the owner';
    END IF;
    RETURN name;
END $$;

CREATE FUNCTION lakeline_revoke(grantee text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_catalog AS $$
DECLARE
    level text;
BEGIN
    IF NOT lakeline_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
            'lakeline: granting and revoking access needs the admin role (role %I is not '
            'an admin)', session_user);
    END IF;
    FOREACH level IN ARRAY ARRAY['read', 'write', 'admin'] LOOP
        IF EXISTS (SELECT 1 FROM pg_auth_members m
                   WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = lakeline_group(level))
                     AND m.member = (SELECT oid FROM pg_roles WHERE rolname = grantee)) THEN
            EXECUTE format('REVOKE %I FROM %I', lakeline_group(level), grantee);
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION lakeline_grant(grantee text, level text) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_catalog AS $$
DECLARE
    target text := lakeline_group(level);
BEGIN
    IF NOT lakeline_is_admin() THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
            'lakeline: granting and revoking access needs the admin role (role %I is not '
            'an admin)', session_user);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = grantee AND rolcanlogin) THEN
        RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format(
            'lakeline: there is no login role %L: create it first (CREATE ROLE %I LOGIN '
            'PASSWORD ...; lakeline never handles passwords)', grantee, grantee);
    END IF;
    PERFORM lakeline_revoke(grantee);
    EXECUTE format('GRANT %I TO %I', target, grantee);
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(in_catalog_schema(op.get_bind(), FUNCTIONS))
    for table in RECORD_TABLES:
        op.execute(
            f"CREATE TRIGGER lakeline_delete_own AFTER DELETE ON {table} "
            "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION lakeline_check_delete()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in RECORD_TABLES:
        op.execute(f"DROP TRIGGER lakeline_delete_own ON {table}")
    for signature in (
        "lakeline_grant(text, text)",
        "lakeline_revoke(text)",
        "lakeline_group(text)",
        "lakeline_check_delete()",
        "lakeline_is_admin()",
    ):
        op.execute(f"DROP FUNCTION {signature}")
