"""PostgreSQL: each audited table's audit trigger function, with static SQL (migration 0014).

0009's `lakeline_audit('<key columns>')` built its UPDATE query with `format()` and ran it with
EXECUTE on every call (parsed and planned each time: ~150 us a statement), converting old and
new rows to jsonb and comparing them key by key (~30 us a row). `lakeline_audited_<table>()`
is that query written out for the table's columns, so PL/pgSQL plans it once per session: old
and new rows joined on the primary key, each column compared as it is (`IS DISTINCT FROM`; as
jsonb for a type whose equality may differ from its JSON text) and `{column: [old, new]}` built
for those that changed (~9 us a row). INSERT and DELETE entries hold what 0009's entries held
(the row's non-null columns but the search column) built from the column list with
`jsonb_build_object` (0009's `to_jsonb(n) - 'search_vector'` copied the object a second time:
~8 us an artifact row less); `to_jsonb(n)` also took a column named `n` for the row. A
statement that wrote no row returns at once: 0009 registered the transaction for the chaining
at commit all the same (an UPDATE matching no row, an INSERT ... ON CONFLICT DO NOTHING, the
version-space UPDATE that follows every insert of artifacts: ~270 us each). The entries are
the generic function's, value for value.

A column added, dropped or renamed after the function was made (`ALTER TABLE` outside
`lakeline migrate`) makes the table's column names differ from the ones the function was made
for (compared at every statement): it then runs 0009's
statements (`to_jsonb(n.*)`, the generic UPDATE query), so nothing goes unaudited, until
`lakeline migrate` makes the function again (`install_audits` runs after every PostgreSQL
upgrade and at `migrate` at head).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

PREFIX = "lakeline_audited_"
# what every function running with the owner's rights searches (migration 0020): no function
# or operator resolves outside pg_catalog, the catalog's tables are named by schema
SAFE_PATH = "pg_catalog, pg_temp"
# a table `c` of the catalog's schema. The queries here run as whoever migrates (the owner):
# every operator pg_catalog's, as `oid = regnamespace` has none there and a `public.=(oid,
# regnamespace)` a role may CREATE would be an exact match, picked and run
_HERE = (
    "c.relnamespace OPERATOR(pg_catalog.=) "
    "pg_catalog.current_schema()::pg_catalog.regnamespace::pg_catalog.oid"
)
QUALIFIED_SINCE = "0020"
# compared as they are: the type's equality is its JSON text's (ids, text in the database's
# own collation, times, numbers, booleans, jsonb); any other type is compared as jsonb, as 0009
NATIVE = frozenset(
    {
        "smallint", "integer", "bigint", "boolean", "text", "character varying", "character",
        "timestamp with time zone", "timestamp without time zone", "date", "jsonb", "uuid",
        "numeric", "double precision", "real",
    }
)  # fmt: skip

# 0009's UPDATE branch, for a table whose columns changed since its function was made
GENERIC = """
        EXECUTE format($q$
            INSERT INTO {log} (at, actor, tbl, uid, action, changes)
            SELECT statement_timestamp(), session_user, %L, n ->> 'uid', 'update', d
            FROM (SELECT to_jsonb(o.*) AS o, to_jsonb(n.*) AS n
                  FROM old_rows o JOIN new_rows n USING (%s)
                  OFFSET 0) p,
            LATERAL (SELECT jsonb_object_agg(k, jsonb_build_array(p.o -> k, p.n -> k)) AS d
                     FROM jsonb_object_keys(p.n) AS k
                     WHERE k <> 'search_vector' AND (p.o -> k) IS DISTINCT FROM (p.n -> k)) c
            WHERE d IS NOT NULL$q$, TG_TABLE_NAME, (
            -- the primary key as it is now (it may have been renamed too)
            SELECT string_agg(quote_ident(a.attname), ', ') FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = TG_RELID AND i.indisprimary));"""


# The function compares the table's column names with the ones it was made for at every
# statement (~5-10 us more than comparing the count): the count alone (`relnatts`, which also
# counts dropped columns) missed a column dropped or renamed, and the static SQL then named a
# column that no longer is (every write of the table refused). Types and collations are not
# compared (with them ~20-40 us a statement): a column retyped outside migrate is compared as
# the function was made for it until `lakeline migrate`


def function_name(table: str) -> str:
    """The table's audit function: `lakeline_audited_<table>`, a digest of the name in its
    place where that would pass PostgreSQL's 63 bytes."""
    name = PREFIX + table
    if len(name.encode()) <= 63:
        return name
    return PREFIX + hashlib.sha256(table.encode()).hexdigest()[:32]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def function_sql(conn: Connection, table: str, *, qualified: bool = True) -> str | None:
    """CREATE OR REPLACE FUNCTION of `table`'s audit, from the catalog as it is now; None for
    a table without a primary key (nothing to pair old and new rows on). `qualified` (0020):
    it searches pg_catalog only, names the audit tables by the current schema and is made in
    the schema of lakeline's functions (`pg_helpers`: since 0022 not the catalog's) (the way
    before 0020: it searches `pg_catalog, public, pg_temp`, names them unqualified)."""
    from sqlalchemy import text

    from lakeline.db.pg_helpers import helpers, in_catalog_schema

    # before 0020: the catalog's schema between pg_catalog and pg_temp
    path = in_catalog_schema(conn, "search_path = pg_catalog, public, pg_temp").partition("= ")[2]
    prefix, name = "", _quote(function_name(table))
    if qualified:  # in the schema of lakeline's functions (0022; the catalog's before)
        name = f"{helpers(conn)}.{name}"
        schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
        prefix, path = conn.dialect.identifier_preparer.quote_schema(schema) + ".", SAFE_PATH
    log, pending = prefix + "audit_log", prefix + "audit_pending"
    sequence = prefix + "audit_log_id_seq"

    rows = conn.execute(
        text(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, NULL), "
            "a.attcollation OPERATOR(pg_catalog.=) ANY ('{0,100,950}'::pg_catalog.oid[]) AS plain, "
            "coalesce(a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[]), false) "
            "AS is_key FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c "
            "ON c.oid OPERATOR(pg_catalog.=) a.attrelid LEFT JOIN pg_catalog.pg_index i "
            "ON i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary "
            f"WHERE c.relname OPERATOR(pg_catalog.=) CAST(:table AS pg_catalog.name) AND {_HERE} "
            "AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped ORDER BY a.attnum"
        ),
        {"table": table},
    ).all()
    columns = [(str(n), str(t), bool(p)) for n, t, p, _ in rows if n != "search_vector"]
    keys = [str(n) for n, _, _, k in rows if k]
    if not keys:
        return None
    names = "ARRAY[" + ", ".join(_literal(str(r[0])) for r in rows) + "]::name[]"

    def changed(name: str, kind: str, plain: bool) -> str:
        c = _quote(name)
        if kind in NATIVE and plain:
            return f"o.{c} IS DISTINCT FROM n.{c}"
        return f"to_jsonb(o.{c}) IS DISTINCT FROM to_jsonb(n.{c})"

    tests = {name: changed(name, kind, plain) for name, kind, plain in columns}
    # one object per changed column, concatenated: the cheapest of the forms measured, and
    # jsonb_strip_nulls would drop nulls inside a changed jsonb value
    diff = "\n            || ".join(
        f"CASE WHEN {tests[name]} THEN jsonb_build_object({_literal(name)}, "
        f"jsonb_build_array(o.{_quote(name)}, n.{_quote(name)})) ELSE '{{}}' END"
        for name, _, _ in columns
    )
    kinds = {name: kind for name, kind, _ in columns}

    def uid(row: str) -> str:  # the text 0009 took with `->> 'uid'` from the row's jsonb
        if "uid" not in kinds:
            return "NULL"
        text = kinds["uid"] in ("text", "character varying")
        return f'{row}."uid"::text' if text else f"to_jsonb({row}.\"uid\") #>> '{{}}'"

    def whole(row: str) -> str:  # the row's jsonb as 0009's to_jsonb made it, without the
        # search column (`- 'search_vector'` copied the object again): ~8 us an artifact less;
        # jsonb_build_object takes at most 100 arguments
        pairs = [f"{_literal(name)}, {row}.{_quote(name)}" for name, _, _ in columns]
        parts = [", ".join(pairs[i : i + 50]) for i in range(0, len(pairs), 50)]
        return "jsonb_strip_nulls(" + " || ".join(f"jsonb_build_object({p})" for p in parts) + ")"

    on = " AND ".join(f"o.{_quote(k)} = n.{_quote(k)}" for k in keys)
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {path} SET enable_nestloop = off SET jit = off
SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    first_id bigint;
BEGIN
    -- a statement that wrote no row (an UPDATE that matched none, ON CONFLICT DO NOTHING):
    -- no entry, and no chaining at commit for it
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT FROM new_rows) THEN
        RETURN NULL;
    END IF;
    -- below every id this statement's entries get: where the chaining at commit looks from
    first_id := (SELECT last_value FROM {sequence});
    IF ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = TG_RELID
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) IS DISTINCT FROM
        {names} THEN
        -- columns added, dropped or renamed since this function was made (`lakeline migrate`
        -- makes it again): 0009's statements, which read every column as it is
        IF TG_OP = 'INSERT' THEN
            INSERT INTO {log} (at, actor, tbl, uid, action, changes)
            SELECT statement_timestamp(), session_user, TG_TABLE_NAME, r ->> 'uid', 'insert', r
            FROM (SELECT jsonb_strip_nulls(to_jsonb(n.*)) - 'search_vector' AS r
                  FROM new_rows n) s;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO {log} (at, actor, tbl, uid, action, changes)
            SELECT statement_timestamp(), session_user, TG_TABLE_NAME, r ->> 'uid', 'delete', r
            FROM (SELECT jsonb_strip_nulls(to_jsonb(o.*)) - 'search_vector' AS r
                  FROM old_rows o) s;
        ELSE{GENERIC.format(log=log)}
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO {log} (at, actor, tbl, uid, action, changes)
        SELECT statement_timestamp(), session_user, TG_TABLE_NAME, {uid("n")}, 'insert',
            {whole("n")}
        FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO {log} (at, actor, tbl, uid, action, changes)
        SELECT statement_timestamp(), session_user, TG_TABLE_NAME, {uid("o")}, 'delete',
            {whole("o")}
        FROM old_rows o;
    ELSE
        INSERT INTO {log} (at, actor, tbl, uid, action, changes)
        SELECT statement_timestamp(), session_user, TG_TABLE_NAME, {uid("n")}, 'update',
            {diff}
        FROM old_rows o JOIN new_rows n ON {on}
        WHERE {" OR ".join(tests[name] for name, _, _ in columns)};
    END IF;
    INSERT INTO {pending} (txid, first_id) VALUES (pg_current_xact_id()::text, first_id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $fn$"""


EVENTS = (
    ("INSERT", "NEW TABLE AS new_rows"),
    ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("DELETE", "OLD TABLE AS old_rows"),
)


def audited_tables(conn: Connection) -> list[str]:
    """Tables of the current schema with lakeline's audit triggers."""
    from sqlalchemy import text

    return [
        str(t)
        for t in conn.execute(
            text(
                "SELECT c.relname FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c "
                "ON c.oid OPERATOR(pg_catalog.=) t.tgrelid "
                "WHERE t.tgname OPERATOR(pg_catalog.=) 'lakeline_audit_update'::pg_catalog.name "
                f"AND {_HERE} ORDER BY 1"
            )
        ).scalars()
    ]


def _triggers(conn: Connection, table: str, function: str) -> None:
    from sqlalchemy import text

    for event, refs in EVENTS:
        conn.execute(
            text(
                f"CREATE OR REPLACE TRIGGER lakeline_audit_{event.lower()} AFTER {event} ON "
                f"{_quote(table)} REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION "
                f"{function}"
            )
        )


def install_audits(
    conn: Connection, tables: list[str] | None = None, *, qualified: bool | None = None
) -> list[str]:
    """Make (again) the audit function of each of `tables` (default: every audited table)
    and point its three `lakeline_audit_*` triggers at it, in `conn`'s transaction (a table
    without a primary key keeps 0009's generic function). Idempotent. Returns the tables.
    `qualified` (default: the catalog is at 0020 or later): `function_sql`'s form."""
    from lakeline.db.pg_helpers import helpers

    if qualified is None:
        from lakeline.db.migrate import current_revision

        qualified = (current_revision(conn) or "") >= QUALIFIED_SINCE
    schema = helpers(conn)  # where lakeline's functions are (0022: not the catalog's schema)
    done = audited_tables(conn) if tables is None else tables
    for table in done:
        sql = function_sql(conn, table, qualified=qualified)
        if sql is None:  # no primary key: 0009's generic function, as before
            _triggers(conn, table, f"{schema}.lakeline_audit('')")
            continue
        # as made, no bind parameters (the driver reads `%` as a placeholder: `%%`)
        conn.exec_driver_sql(sql.replace("%", "%%"))
        function = f"{schema}.{_quote(function_name(table))}()"
        if qualified:  # 0020: no role may hang it (as the owner) on a table of its own
            conn.exec_driver_sql(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
        _triggers(conn, table, function)
    return done


def remove_audits(conn: Connection) -> None:
    """Back to 0009's generic `lakeline_audit('<keys>')` on every audited table; the tables'
    functions dropped."""
    from sqlalchemy import text

    from lakeline.db.pg_helpers import helpers

    schema = helpers(conn)
    for table in audited_tables(conn):
        keys = conn.execute(
            text(
                "SELECT a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a "
                "ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid "
                "AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[]) "
                "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid "
                f"WHERE c.relname OPERATOR(pg_catalog.=) CAST(:t AS pg_catalog.name) AND {_HERE} "
                "AND i.indisprimary "
                "ORDER BY pg_catalog.array_position(i.indkey::pg_catalog.int2[], a.attnum)"
            ),
            {"t": table},
        ).scalars()
        argument = ", ".join(keys).replace("'", "")
        _triggers(conn, table, f"{schema}.lakeline_audit('{argument}')")
    for name in conn.execute(
        text(
            "SELECT p.proname FROM pg_catalog.pg_proc p WHERE p.proname::pg_catalog.text "
            "OPERATOR(pg_catalog.~~) CAST(:prefix AS pg_catalog.text) "
            "AND p.pronamespace OPERATOR(pg_catalog.=) "
            "pg_catalog.to_regnamespace(:schema)::pg_catalog.oid"
        ),
        {"prefix": PREFIX.replace("_", r"\_") + "%", "schema": schema},
    ).scalars():
        conn.execute(text(f"DROP FUNCTION {schema}.{_quote(str(name))}()"))
