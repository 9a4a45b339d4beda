"""PostgreSQL: the schema holding lakeline's functions (migration 0022).

Since 0022 every function of a catalog (its triggers', the checks, the audit and its chaining,
spaces, grant/revoke, the search columns') lives in a schema of its own that only the owner may
CREATE in, `lakeline_<catalog schema>` (`helper_schema`), and every call by name names it: a
role that may CREATE in the catalog's schema could otherwise make a call ambiguous there with an
overload (`lakeline_audit_digest(..., extra integer DEFAULT 0)`: every write failed "function
... is not unique"). Before 0022 they lived in the catalog's schema.

`LOCATE` finds them without a name lookup: the schema of the function the `lakeline_delete_own`
trigger of the catalog's `artifacts` runs (bound by oid, made by the owner only; 0007 on), so
the same SQL serves every revision. Without that trigger: before 0007 the catalog's own schema;
since, an error saying so (`helpers`, `locate_or_raise`), never a name another role may take.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

PREFIX = "lakeline_"

# the schema of lakeline's functions, as SQL (quoted where needed): where the artifacts'
# delete check is, NULL without one (before 0007, or the trigger dropped or renamed since:
# `helpers` and `locate_or_raise` tell which). Every operator pg_catalog's: it runs with the
# caller's search_path, and a `public.=(oid, regclass)` (an exact match, over oid = oid) made
# it find every trigger's schema
LOCATE = (
    "SELECT p.pronamespace::pg_catalog.regnamespace::text "
    "FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) "
    "t.tgfoid WHERE t.tgrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
    "pg_catalog.quote_ident(pg_catalog.current_schema()) OPERATOR(pg_catalog.||) '.artifacts')"
    "::pg_catalog.oid AND t.tgname OPERATOR(pg_catalog.=) 'lakeline_delete_own'::pg_catalog.name"
)
_CURRENT = "pg_catalog.quote_ident(pg_catalog.current_schema())"
# whether the catalog has a version table (none: tables made by hand, no lakeline catalog)...
_VERSIONED = (
    f"pg_catalog.to_regclass({_CURRENT} OPERATOR(pg_catalog.||) '.alembic_version') IS NOT NULL"
)
# ... and in it a core revision from 0007 on: the trigger was made, its absence is a fault
_SINCE_0007 = (
    "EXISTS (SELECT 1 FROM alembic_version v WHERE pg_catalog.length(v.version_num) "
    "OPERATOR(pg_catalog.=) 4 AND v.version_num::pg_catalog.text OPERATOR(pg_catalog.>=) "
    "'0007'::pg_catalog.text)"
)
# why there is no schema to name, and what to do
MISSING = (
    "lakeline cannot find the schema of its functions: the catalog's artifacts table has no "
    "trigger lakeline_delete_own (dropped or renamed), by which it finds them since migration "
    "0007. The catalog's owner restores it as it was (ALTER TRIGGER ... RENAME TO "
    "lakeline_delete_own, or from a pg_dump -s of a catalog at the same revision)"
)


def locate_or_raise(variable: str) -> str:
    """PL/pgSQL statements setting `variable` (text) to `LOCATE`'s schema; without one, the
    catalog's own schema before 0007 (its functions were there), else `MISSING` raised (for
    the DDL's DO blocks; the version table read only where it exists)."""
    message = MISSING.replace("'", "''")
    return (
        f"{variable} := ({LOCATE}); IF {variable} IS NULL THEN "
        f"IF {_VERSIONED} THEN IF {_SINCE_0007} THEN "
        f"RAISE EXCEPTION USING MESSAGE = '{message}', ERRCODE = 'P0002'; END IF; END IF; "
        f"{variable} := {_CURRENT}; END IF;"
    )


def helper_schema(schema: str) -> str:
    """The schema of the functions of a catalog in `schema`: `lakeline_<schema>`, a digest of
    the name in its place where that would pass PostgreSQL's 63 bytes."""
    name = PREFIX + schema
    if len(name.encode()) <= 63:
        return name
    return PREFIX + hashlib.sha256(schema.encode()).hexdigest()[:32]


def helpers(conn: Connection) -> str:
    """Where `conn`'s catalog keeps its functions (quoted where needed), to name in a call;
    LakelineError when it cannot tell (`MISSING`)."""
    from lakeline.errors import LakelineError

    found = conn.exec_driver_sql(LOCATE).scalar()
    if found is not None:
        return str(found)
    if (
        conn.exec_driver_sql(f"SELECT {_VERSIONED}").scalar()
        and conn.exec_driver_sql(f"SELECT {_SINCE_0007}").scalar()
    ):
        raise LakelineError(MISSING)
    return str(conn.exec_driver_sql(f"SELECT {_CURRENT}").scalar_one())  # before 0007


# what migrations 0007-0020 wrote for the catalog's schema: `public`, whatever it was
_PUBLIC_FORMS = (
    "search_path = public, pg_catalog",
    "search_path = pg_catalog, public, pg_temp",
    "PERFORM public.lakeline_artifact_ref_missing(",
)


def in_catalog_schema(conn: Connection, sql: str) -> str:
    """`sql` (a migration's function or setting) with `public` in its search_path settings, and
    in 0019's call of its helper, replaced by the catalog's schema (quoted where needed): the
    same text for a catalog in `public`; one in another schema (`search_path` set for the role
    or database, or the URL's `options=-csearch_path=...`) could not be made (0008's SQL
    function's body was checked against `public`)."""
    schema = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
    quoted = conn.dialect.identifier_preparer.quote_schema(schema)
    if quoted == "public":
        return sql
    for form in _PUBLIC_FORMS:
        sql = sql.replace(form, form.replace("public", quoted))
    return sql
