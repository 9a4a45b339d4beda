"""PostgreSQL: the functions that run with the owner's rights search pg_catalog only and name the
catalog's own tables and functions by schema

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 14:00:00.000000

Every SECURITY DEFINER function (grant/revoke 0007, `lakeline_spaces` 0008, the audit 0009/0014
and its chaining at commit 0017, the artifacts' reference checks 0019) searched
`pg_catalog, public, pg_temp` (0018). PostgreSQL resolves an unqualified function, aggregate or
operator to the best argument match across the whole path (the order only breaks exact ties), so
a role that may CREATE in `public` (every role before PostgreSQL 15, or in a database
pg_upgrade'd from one, unless revoked) could define there `array_agg(integer)`,
`jsonb_build_array(varchar, varchar)`, `format(text, text, text)`, `convert_to(text, text)`, `=`
on varchar, or `lakeline_audit_digest(..., varchar, jsonb)`, and have it run as the owner
(inside grant, an overloaded `format` chose the statement the owner EXECUTEs).
Now they search `pg_catalog, pg_temp`: no function or operator resolves outside pg_catalog
(PostgreSQL never looks in pg_temp for those), whatever a future edit calls. Their tables,
sequence and lakeline functions are named by the schema they were made in (with arguments of
the exact types: a more specific overload in that schema would win otherwise), and so are those
of `lakeline_is_admin`/`lakeline_group`, which grant/revoke call under their settings. The
digest and chain-step functions the chaining calls name built-ins only (resolved in pg_catalog
under the caller's setting): unchanged, so the chain's hashes are the same. Each audited
table's function (`access/audit_pg.py`) is made again in the same form.
The identity and delete checks (0006/0007's trigger functions, the caller's rights) had no
setting: a writer's temporary `users` (pg_temp is searched first for relations unless listed)
made `lakeline_user_id()` another user's id, and a temporary `pg_roles` with pg_temp listed first
made the writer a superuser to them (its deletes of others' records, rows in another's name,
another's `users` row). They search `pg_catalog, pg_temp` too and name the catalog by schema.
EXECUTE on the SECURITY DEFINER trigger functions is the owner's only: PostgreSQL checks it
when a trigger is made, never when one fires, and any role could hang them on a temporary table
of its own (0009's `lakeline_audit('<keys>')` formats its argument into its EXECUTE: a reader
ran any statement as the owner; the others wrote audit entries or locked the chain's head).
`lakeline_group` checks the role settings name for a level is a group the owner set up (its
direct grant on the owner's table): an admin may write settings, and grant ran
`GRANT <that role> TO <grantee>` as the owner (an admin named the owner, a superuser, and
became it).
The own-user check reads the old rows of an UPDATE too: it read the new ones only, so a role
without a `users` row yet could set another user's handle to its own and be that user.
0019's row triggers on an UPDATE of artifacts' references (and of the id of a user, storage or
space) fire on every UPDATE `WHEN` the column changed, not only when the SET list names it
(`UPDATE OF`): a future BEFORE UPDATE trigger changing one would have bypassed the check.
Downgrade: 0019's definitions, settings and triggers exactly, EXECUTE to PUBLIC again. SQLite:
nothing.
"""

from __future__ import annotations

from alembic import op
from lakeline.db.pg_helpers import in_catalog_schema

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

SAFE = "pg_catalog, pg_temp"
OLD = "pg_catalog, public, pg_temp"

# the group a level names must be one this catalog's owner set up: holding the level's privilege
# on the owner's table by a grant of its own (only the owner makes those); an admin may write
# settings, and grant/revoke GRANT and REVOKE the role named there with the owner's rights
GROUP_CHECK = """\
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
        WHERE c.oid = CASE level WHEN 'read' THEN '{s}.audit_log'::pg_catalog.regclass
                                 WHEN 'write' THEN '{s}.artifacts'::pg_catalog.regclass
                                 ELSE '{s}.settings'::pg_catalog.regclass END
          AND a.privilege_type = CASE level WHEN 'read' THEN 'SELECT' ELSE 'INSERT' END
          AND a.grantee <> c.relowner
          AND a.grantee = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = name)) THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format(
            'lakeline: role %I, named for level %s in settings, is not a group the owner set '
            'up: the owner deletes setting role_%s and runs `lakeline migrate`', name, level,
            level);
    END IF;
"""
# function -> (text in 0019's definition, the same with the catalog's schema `{s}.`)
QUALIFY: dict[str, tuple[tuple[str, str], ...]] = {
    "lakeline_is_admin()": (
        ("'artifacts'::regclass", "'{s}.artifacts'::regclass"),
        ("FROM settings", "FROM {s}.settings"),
    ),
    "lakeline_group(text)": (
        ("FROM settings", "FROM {s}.settings"),
        ("    RETURN name;\nEND", GROUP_CHECK + "    RETURN name;\nEND"),
    ),
    "lakeline_revoke(text)": (
        ("NOT lakeline_is_admin()", "NOT {s}.lakeline_is_admin()"),
        ("= lakeline_group(level)", "= {s}.lakeline_group(level)"),
        ("%I FROM %I', lakeline_group(level)", "%I FROM %I', {s}.lakeline_group(level)"),
    ),
    "lakeline_grant(text,text)": (
        (":= lakeline_group(level)", ":= {s}.lakeline_group(level)"),
        ("NOT lakeline_is_admin()", "NOT {s}.lakeline_is_admin()"),
        ("PERFORM lakeline_revoke(grantee)", "PERFORM {s}.lakeline_revoke(grantee)"),
    ),
    "lakeline_spaces()": (("FROM space_members", "FROM {s}.space_members"),),
    "lakeline_audit()": (
        ("FROM audit_log_id_seq", "FROM {s}.audit_log_id_seq"),
        ("INSERT INTO audit_log ", "INSERT INTO {s}.audit_log "),
        ("INSERT INTO audit_pending ", "INSERT INTO {s}.audit_pending "),
    ),
    "lakeline_audit_chain()": (
        ("FROM audit_head FOR UPDATE", "FROM {s}.audit_head FOR UPDATE"),
        ("FROM audit_log WHERE", "FROM {s}.audit_log WHERE"),
        ("UPDATE audit_log a", "UPDATE {s}.audit_log a"),
        ("UPDATE audit_head SET", "UPDATE {s}.audit_head SET"),
        ("DELETE FROM audit_pending", "DELETE FROM {s}.audit_pending"),
        ("lakeline_chain_from(head_hash,", "{s}.lakeline_chain_from(head_hash,"),
        (
            "lakeline_audit_digest(seq, at, actor, tbl, uid, action, changes)",
            "{s}.lakeline_audit_digest(seq, at, actor, tbl, uid, action::text, changes)",
        ),  # action is varchar(8): a (..., varchar, jsonb) overload would match better
    ),
    "lakeline_artifact_refs()": (
        ("FROM users ", "FROM {s}.users "),
        ("FROM storages ", "FROM {s}.storages "),
        ("FROM spaces ", "FROM {s}.spaces "),
        (
            "PERFORM public.lakeline_artifact_ref_missing(",
            "PERFORM {s}.lakeline_artifact_ref_missing(",
        ),  # 0019 named `public` whatever the catalog's schema
    ),
    "lakeline_artifact_refs_kept()": (("FROM artifacts", "FROM {s}.artifacts"),),
    "lakeline_artifact_ref_missing(text,text,text,text,integer)": (),
    # the identity and delete checks (0006/0007: the caller's rights, no setting before 0020):
    # under the caller's search_path a temporary `users` (or, with pg_temp listed first,
    # `pg_roles`) stood in for the catalog's, and a writer deleted or wrote another user's rows
    "lakeline_user_id()": (("FROM users WHERE", "FROM {s}.users WHERE"),),
    "lakeline_check_creator()": (
        (":= lakeline_user_id();", ":= {s}.lakeline_user_id();"),
    ),
    "lakeline_check_delete()": (
        (":= lakeline_user_id();", ":= {s}.lakeline_user_id();"),
        ("NOT lakeline_is_admin()", "NOT {s}.lakeline_is_admin()"),
    ),
    "lakeline_check_own_user()": (
        (
            "PERFORM 1 FROM new_rows WHERE handle IS DISTINCT FROM session_user LIMIT 1;",
            "PERFORM 1 FROM new_rows WHERE handle IS DISTINCT FROM session_user LIMIT 1;\n"
            "    IF NOT FOUND AND TG_OP = 'UPDATE' THEN  -- nor a row that was another's\n"
            "        PERFORM 1 FROM old_rows WHERE handle IS DISTINCT FROM session_user LIMIT 1;\n"
            "    END IF;",
        ),  # 0006 read the new rows only: a role without a users row set another's handle
    ),      # to its own, and was that user to every check since
}  # fmt: skip
# the checks' trigger functions: no setting at 0019, search SAFE since 0020 (down: RESET)
CHECKS = ("lakeline_check_creator()", "lakeline_check_delete()", "lakeline_check_own_user()")
# searched pg_catalog, public, pg_temp at 0019 (the SECURITY DEFINER ones and 0019's helper);
# lakeline_is_admin, lakeline_group and lakeline_user_id have no setting (they run under
# their caller's)
PINNED = tuple(
    f
    for f in QUALIFY
    if f not in ("lakeline_is_admin()", "lakeline_group(text)", "lakeline_user_id()", *CHECKS)
)

REFS = ("created_by_id", "storage_id", "space_id")
CHANGED = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in REFS)


def _triggers(of_columns: bool) -> list[str]:
    """0019's row triggers on an UPDATE of a reference or an id: `UPDATE OF` them (0019) or
    every UPDATE, `WHEN` it changed (0020)."""
    refs = f" OF {', '.join(REFS)}" if of_columns else ""
    ids = " OF id" if of_columns else ""
    statements = [
        f"CREATE OR REPLACE TRIGGER lakeline_artifact_refs_update AFTER UPDATE{refs} ON artifacts "
        f"FOR EACH ROW WHEN ({CHANGED}) EXECUTE FUNCTION lakeline_artifact_refs()"
    ]
    for table in ("users", "storages", "spaces"):
        statements.append(
            "CREATE OR REPLACE TRIGGER lakeline_artifact_refs_kept_id "
            f"AFTER UPDATE{ids} ON {table} FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) "
            "EXECUTE FUNCTION lakeline_artifact_refs_kept()"
        )
    return statements


def _own_user_update(old_rows: bool) -> str:
    """The users UPDATE trigger of the own-user check: 0020 hands it the old rows too."""
    refs = "OLD TABLE AS old_rows NEW TABLE AS new_rows" if old_rows else "NEW TABLE AS new_rows"
    return (
        "CREATE OR REPLACE TRIGGER lakeline_own_user_update AFTER UPDATE ON users "
        f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION lakeline_check_own_user()"
    )


# the trigger functions that run with the owner's rights: PostgreSQL never checks EXECUTE when a
# trigger fires, only when one is made, and any role may make a trigger on a table of its own
# (a temporary one: PUBLIC's TEMP); granted to PUBLIC (the default) one could run them as the
# owner on its rows - 0009's `lakeline_audit('<keys>')` puts its argument into its dynamic SQL
DEFINER_TRIGGERS = (
    "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p "
    "WHERE p.pronamespace = pg_catalog.current_schema()::regnamespace AND p.prosecdef "
    "AND p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype ORDER BY 1"
)


def _execute_to_public(granted: bool) -> None:
    """EXECUTE on every SECURITY DEFINER trigger function: PUBLIC's (0019) or the owner's only."""
    bind = op.get_bind()
    for function in bind.exec_driver_sql(DEFINER_TRIGGERS).scalars().all():
        how = (
            "GRANT EXECUTE ON FUNCTION {} TO PUBLIC"
            if granted
            else "REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC"
        )
        bind.exec_driver_sql(how.format(function))


def _rewrite(upgrading: bool) -> None:
    """Each function made again from its definition as the catalog holds it (settings
    included), each pair's first text replaced by its second (the other way down); its
    search_path set after (before, down: a SQL function's body is checked under it)."""
    bind = op.get_bind()
    schema = bind.exec_driver_sql("SELECT current_schema()").scalar_one()
    prefix = bind.dialect.identifier_preparer.quote_schema(str(schema))
    for function, pairs in QUALIFY.items():
        if function in PINNED and not upgrading:  # a SQL body is checked under its setting
            bind.exec_driver_sql(
                in_catalog_schema(bind, f"ALTER FUNCTION {function} SET search_path = {OLD}")
            )
        if function in CHECKS and not upgrading:
            bind.exec_driver_sql(f"ALTER FUNCTION {function} RESET search_path")
        definition = str(
            bind.exec_driver_sql(
                f"SELECT pg_get_functiondef('{function}'::regprocedure)"
            ).scalar_one()
        )
        for before, after in pairs:
            old, new = in_catalog_schema(bind, before), after.format(s=prefix)
            if not upgrading:
                old, new = new, old
            if old == new:  # 0019's helper call was by `public.`: the same in `public`
                continue
            if old not in definition or (upgrading and new in definition):
                raise RuntimeError(f"{function} is not as expected: {old!r} / {new!r}")
            definition = definition.replace(old, new)
        bind.exec_driver_sql(definition.replace("%", "%%"))  # as stored: no bind parameters
        if (function in PINNED or function in CHECKS) and upgrading:
            bind.exec_driver_sql(f"ALTER FUNCTION {function} SET search_path = {SAFE}")


def upgrade() -> None:
    from lakeline.access.audit_pg import install_audits

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.exec_driver_sql(_own_user_update(old_rows=True))
    _rewrite(upgrading=True)
    install_audits(bind, qualified=True)
    for statement in _triggers(of_columns=False):
        bind.exec_driver_sql(statement)
    _execute_to_public(granted=False)


def downgrade() -> None:
    from lakeline.access.audit_pg import install_audits

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _rewrite(upgrading=False)
    bind.exec_driver_sql(_own_user_update(old_rows=False))
    install_audits(bind, qualified=False)
    for statement in _triggers(of_columns=True):
        bind.exec_driver_sql(statement)
    _execute_to_public(granted=True)
