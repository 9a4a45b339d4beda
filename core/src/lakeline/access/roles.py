"""PostgreSQL access levels: group roles read / write / admin built on GRANTs.

`setup_roles` (run by `lakeline init` and `migrate` as the owner, idempotent) creates the three
NOLOGIN group roles, named after the database (`<db>_read`, `<db>_write`, `<db>_admin`, kept
in `settings`: roles are cluster-wide) and grants: read = SELECT; write = read + INSERT,
UPDATE, DELETE on catalog rows (a trigger lets a writer delete only records it created) and
the sequences, no DDL; admin = write + the instance settings + deleting any record + granting.
Schema changes (`migrate`) stay with the owner of the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeline.db.pg_helpers import helpers
from lakeline.errors import LakelineError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

LEVELS = ("read", "write", "admin")
# written by the owner only (admins through the settings grant): never a writer's business
OWNER_TABLES = frozenset(
    {"alembic_version", "settings", "audit_log", "audit_head", "audit_pending"}
)
ADMIN_TABLES = ("settings", "spaces", "space_members")


class AccessError(LakelineError, ValueError):
    """An access command got bad input: an unknown role, level or space."""


@dataclass
class Grant:
    """One login role's access: its level and (empty: every space) the spaces it is held to."""

    role: str
    level: str
    spaces: list[str] = field(default_factory=list)


def _names(conn: Connection) -> dict[str, str]:
    from sqlalchemy import text

    rows = conn.execute(
        text("SELECT key, value FROM settings WHERE key IN ('role_read','role_write','role_admin')")
    ).all()
    return {str(k).removeprefix("role_"): str(v) for k, v in rows}


def is_owner(conn: Connection) -> bool:
    """Whether the connected role owns the catalog's tables (or is a superuser)."""
    from sqlalchemy import text

    return bool(
        conn.execute(
            text(
                "SELECT rolsuper OR pg_has_role(session_user, "
                "(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) "
                "'artifacts'::pg_catalog.regclass::pg_catalog.oid), 'MEMBER') "
                "FROM pg_roles WHERE rolname = session_user"
            )
        ).scalar()
    )


def setup_roles(engine: Engine) -> dict[str, str] | None:
    """Create the group roles and their GRANTs (PostgreSQL, as the owner). Returns their
    names, or None on SQLite or when the connected role does not own the catalog (it joins)."""
    if engine.dialect.name != "postgresql":
        return None
    from sqlalchemy import text

    with engine.begin() as conn:
        if not is_owner(conn):
            return None
        names = _names(conn)
        if len(names) < len(LEVELS):
            database = str(conn.execute(text("SELECT current_database()")).scalar_one())
            names = {level: f"{database[:50]}_{level}" for level in LEVELS}
            for level, name in names.items():
                conn.execute(
                    text(
                        "INSERT INTO settings (key, value) VALUES (:k, :v) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                    ),
                    {"k": f"role_{level}", "v": name},
                )
        quote = conn.dialect.identifier_preparer.quote
        read, write, admin = (quote(names[level]) for level in LEVELS)
        for name in names.values():
            # roles are cluster-wide: another database's setup may be making the same one
            conn.execute(
                text(
                    "DO $$ BEGIN CREATE ROLE " + quote(name) + " NOLOGIN; "
                    "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                )
            )
        # the catalog's schema: the first of the search_path that exists (`public` unless the
        # role, the database or the URL's `options=-csearch_path=...` says otherwise)
        schema = conn.dialect.identifier_preparer.quote_schema(
            str(conn.execute(text("SELECT current_schema()")).scalar_one())
        )
        tables = [
            str(t)
            for t in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
        ]
        catalog = ", ".join(
            quote(t) for t in sorted(tables) if t not in OWNER_TABLES and t not in ADMIN_TABLES
        )
        admin_tables = ", ".join(quote(t) for t in ADMIN_TABLES if t in tables)
        conn.execute(
            text(
                f"GRANT USAGE ON SCHEMA {schema} TO {read}; "
                f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {read}; "
                f"GRANT {read} TO {write}; GRANT {write} TO {admin}; "
                f"GRANT INSERT, UPDATE, DELETE ON {catalog} TO {write}; "
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {write}; "
                f"GRANT INSERT, UPDATE, DELETE ON {admin_tables} TO {admin}; "
                # lakeline's functions (0022: a schema of their own), called by name
                f"GRANT USAGE ON SCHEMA {helpers(conn)} TO {read}"
            )
        )
    return names


def schema_creators(engine: Engine, schema: str | None = None) -> list[str]:
    """Who, besides the catalog's owner (and its members) and superusers, may CREATE in
    `schema` (default: the catalog's): `PUBLIC` (every role: PostgreSQL before 15, or a
    database pg_upgrade'd from one) and each login role holding a lakeline level that may.
    Such a role can define functions and operators there that other roles' sessions call
    (lakeline's own functions that run with the owner's rights search pg_catalog only since
    migration 0020). Empty on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        return _creators(conn, list(_names(conn).values()), schema)


def _creators(conn: Connection, groups: list[str], schema: str | None) -> list[str]:
    """`schema_creators` of `schema` (None: the catalog's), on `conn`. Every operator
    pg_catalog's: this runs in the owner's session, and a writer's `=(name, text)` would be
    picked over pg_catalog's (the very thing it looks for)."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "SELECT 'PUBLIC' FROM pg_catalog.pg_namespace n, "
            "pg_catalog.aclexplode(COALESCE(n.nspacl, "
            "pg_catalog.acldefault('n', n.nspowner))) a "
            "WHERE n.nspname::pg_catalog.text OPERATOR(pg_catalog.=) "
            "COALESCE(CAST(:schema AS pg_catalog.text), pg_catalog.current_schema()) "
            "AND a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid "
            "AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'::pg_catalog.text "
            "UNION ALL (SELECT m.rolname::pg_catalog.text FROM pg_catalog.pg_roles m "
            "WHERE m.rolcanlogin AND NOT m.rolsuper AND NOT pg_catalog.pg_has_role(m.oid, "
            "(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) "
            "'artifacts'::pg_catalog.regclass::pg_catalog.oid), 'MEMBER') "
            "AND pg_catalog.has_schema_privilege(m.oid, COALESCE("
            "CAST(:schema AS pg_catalog.text), pg_catalog.current_schema()), 'CREATE') "
            "AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles g WHERE g.rolname::pg_catalog.text "
            "OPERATOR(pg_catalog.=) ANY(CAST(:groups AS pg_catalog.text[])) "
            "AND pg_catalog.pg_has_role(m.oid, g.oid, 'MEMBER')) ORDER BY 1)"
        ),
        {"groups": groups, "schema": schema},
    ).scalars()
    return [str(r) for r in rows]


def path_creators(engine: Engine) -> dict[str, list[str]]:
    """`schema_creators` of the catalog's schema and of every other schema on the connected
    role's search path (PostgreSQL resolves an operator or function across all of them: a
    catalog in `lab` searched as `lab, public` picks a `public.=` as readily), those with
    any, in the path's order. Empty on SQLite."""
    if engine.dialect.name != "postgresql":
        return {}
    from sqlalchemy import text

    with engine.connect() as conn:
        groups = list(_names(conn).values())
        schemas = [
            str(s)
            for s in conn.execute(
                text(
                    "SELECT pg_catalog.unnest(pg_catalog.array_prepend("
                    "pg_catalog.current_schema()::pg_catalog.name, "
                    "pg_catalog.current_schemas(false)))"
                )
            ).scalars()
        ]
        found = {}
        for schema in dict.fromkeys(schemas):  # the catalog's first, once
            who = _creators(conn, groups, schema)
            if who:
                found[schema] = who
        return found


def creators_warning(engine: Engine) -> str | None:
    """A line for each schema on the search path where others may CREATE (`path_creators`),
    saying who; None when there is none. lakeline leaves the schemas' privileges alone: a
    schema may hold more than the catalog."""
    found = path_creators(engine)
    if not found:
        return None
    quote = engine.dialect.identifier_preparer.quote  # where needed: runs as printed
    lines = []
    for schema, who in found.items():
        everyone = "PUBLIC" in who
        names = "PUBLIC" if everyone else ", ".join(quote(r) for r in who)
        lines.append(
            f"warning: {'every role (PUBLIC)' if everyone else ', '.join(who)} may create "
            f"objects in schema {schema}: a function or operator made there can run in other "
            f"roles' sessions (the owner can `REVOKE CREATE ON SCHEMA {quote(schema)} FROM "
            f"{names}`, PostgreSQL 15's default)"
        )
    return "\n".join(lines)


def _check_role(conn: Connection, role: str) -> None:
    from sqlalchemy import text

    found = conn.execute(
        text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role}
    ).first()
    if found is None or not found[0]:
        raise AccessError(
            f"there is no login role {role!r}: create it first (CREATE ROLE {role} LOGIN "
            "PASSWORD ...; lakeline never handles passwords)"
        )


def _postgres(engine: Engine, what: str) -> None:
    if engine.dialect.name != "postgresql":
        raise AccessError(
            f"{what} needs a PostgreSQL instance: a SQLite catalog is one file, its permissions "
            "are the only access control"
        )


def grant(engine: Engine, role: str, level: str) -> None:
    """Give login role `role` access `level` (read, write or admin), replacing its level."""
    _postgres(engine, "granting access")
    if level not in LEVELS:
        raise AccessError(f"unknown access level {level!r}: read, write or admin")
    from sqlalchemy import text

    with engine.begin() as conn:
        _check_role(conn, role)
        conn.execute(
            text(f"SELECT {helpers(conn)}.lakeline_grant(:r, :l)"), {"r": role, "l": level}
        )


def revoke(engine: Engine, role: str) -> None:
    """Take every lakeline level (and space membership) from `role`."""
    _postgres(engine, "revoking access")
    from sqlalchemy import text

    with engine.begin() as conn:
        _check_role(conn, role)
        conn.execute(text(f"SELECT {helpers(conn)}.lakeline_revoke(:r)"), {"r": role})


def grants(engine: Engine) -> list[Grant]:
    """Every login role holding a lakeline level, with its spaces, by role name."""
    _postgres(engine, "listing access")
    from sqlalchemy import text

    with engine.connect() as conn:
        names = _names(conn)
        if not names:
            raise AccessError("the roles are not set up: run `lakeline migrate` as the owner")
        level_of = {name: level for level, name in names.items()}
        rows = conn.execute(
            text(
                "SELECT m.rolname, g.rolname FROM pg_auth_members a "
                "JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
                "WHERE g.rolname = ANY(:groups) AND m.rolcanlogin ORDER BY m.rolname"
            ),
            {"groups": list(names.values())},
        ).all()
        result: dict[str, Grant] = {}
        for member, group in rows:
            level = level_of[str(group)]
            known = result.get(str(member))
            if known is None or LEVELS.index(level) > LEVELS.index(known.level):
                result[str(member)] = Grant(str(member), level)
        from lakeline.access.spaces import memberships

        for role, spaces in memberships(conn).items():
            if role in result:
                result[role].spaces = spaces
    return list(result.values())
