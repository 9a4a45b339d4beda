"""The audit log: every insert, update and delete of catalog rows, appended by database
triggers (migration 0009), each entry chained to the previous one by its hash.

An entry's hash is sha256 of `prev_hash|digest` (hex, UTF-8), its digest the sha256 of
`seq|at|actor|tbl|uid|action|changes`: `at` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`
(PostgreSQL) or SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ')`, `uid` empty when the row has none,
`changes` the stored JSON text (PostgreSQL: `jsonb::text`). Digests need no order, so
PostgreSQL computes them set-based and only the short `prev|digest` steps run in sequence.
The first entry's `prev_hash` is 64 zeros. `verify` recomputes every hash and link and names
the first entry that does not follow; `anchor` is the chain head (`seq:hash`) to keep elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakeline.access.roles import AccessError
from lakeline.db.sqlite_functions import entry_hash

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from lakeline.instance import Instance

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """One audit entry: who did what to which row, when, and what changed."""

    seq: int
    at: datetime
    actor: str
    table: str
    uid: str | None
    action: str
    changes: dict[str, Any]

    def __str__(self) -> str:
        when = f"{self.at:%Y-%m-%d %H:%M:%S}"
        return f"#{self.seq} {when} {self.actor} {self.action} {self.table} {self.uid or ''}"


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: `ok`, how many entries it checked, and the first bad one."""

    ok: bool
    checked: int
    head: str
    bad_seq: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"the audit chain is intact: {self.checked} entries, head {self.head}"
        return f"the audit chain breaks at entry #{self.bad_seq}: {self.reason}"


def _at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _changes(value: Any) -> dict[str, Any]:
    import json

    return dict(value) if isinstance(value, dict) else dict(json.loads(value or "{}"))


def _whole_log(conn: Connection) -> None:
    from sqlalchemy import text

    from lakeline.db.pg_helpers import helpers

    if (
        conn.dialect.name == "postgresql"
        and conn.execute(text(f"SELECT {helpers(conn)}.lakeline_spaces()")).scalar()
    ):
        raise AccessError(
            "a role held to spaces sees only its own audit entries: verify and the anchor need a "
            "role that sees the whole log"
        )


def entries(
    instance: Instance,
    *,
    key: str | None = None,
    uids: list[str] | None = None,
    user: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[Entry]:
    """Audit entries, oldest first: of artifact `key` (every version, deleted ones too), of
    records `uids`, by `user`, at or after `since`."""
    from sqlalchemy import bindparam, text

    postgres = instance.dialect == "postgresql"
    where = ["seq IS NOT NULL"]
    params: dict[str, Any] = {}
    if key is not None:
        field = "changes ->> 'key'" if postgres else "json_extract(changes, '$.key')"
        where.append(
            f"uid IN (SELECT uid FROM audit_log WHERE tbl = 'artifacts' AND {field} = :key)"
        )
        params["key"] = key
    if uids is not None:
        where.append("uid IN :uids")
        params["uids"] = list(uids)
    if user is not None:
        where.append("actor = :user")
        params["user"] = user
    if since is not None:
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        params["since"] = (
            since if postgres else since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        )
        where.append("at >= :since")
    sql = (
        "SELECT seq, at, actor, tbl, uid, action, changes FROM audit_log WHERE "
        + " AND ".join(where)
        + " ORDER BY seq"
        + (" LIMIT :limit" if limit is not None else "")
    )
    if limit is not None:
        params["limit"] = limit
    stmt = text(sql)
    if uids is not None:
        stmt = stmt.bindparams(bindparam("uids", expanding=True))
    with instance.engine.connect() as conn:
        rows = conn.execute(stmt, params).all()
    return [
        Entry(int(s), _at(at), str(actor), str(t), u, str(a), _changes(c))
        for s, at, actor, t, u, a, c in rows
    ]


def history(record: Any) -> list[Entry]:
    """Every audit entry of `record` (by its uid) in the instance it came from, oldest first."""
    return entries(record.instance, uids=[record.uid])


def anchor(instance: Instance) -> str:
    """The chain head as `seq:hash`, to store outside the database (`verify(anchor=...)`)."""
    from sqlalchemy import text

    with instance.engine.connect() as conn:
        _whole_log(conn)
        seq, digest = conn.execute(text("SELECT seq, hash FROM audit_head")).one()
    return f"{seq}:{digest}"


def _parse_anchor(value: str) -> tuple[int, str]:
    seq, _, digest = value.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise AccessError(
            f"invalid anchor {value!r}: want SEQ:HASH as `lakeline audit anchor` prints"
        )
    return int(seq), digest


_PG_CHECK = """
WITH c AS MATERIALIZED (
    SELECT seq, hash,
           hash::pg_catalog.text OPERATOR(pg_catalog.=) {helpers}.lakeline_audit_hash(
               prev_hash, seq, at, actor, tbl, uid, action::pg_catalog.text, changes) AS ok_hash,
           prev_hash::pg_catalog.text IS NOT DISTINCT FROM
               coalesce(pg_catalog.lag(hash) OVER w, :genesis)::pg_catalog.text AS ok_link,
           seq OPERATOR(pg_catalog.=) pg_catalog.row_number() OVER w AS ok_seq
    FROM audit_log WHERE seq IS NOT NULL WINDOW w AS (ORDER BY seq)
)
SELECT (SELECT seq FROM c WHERE NOT (ok_hash AND ok_link AND ok_seq) ORDER BY seq LIMIT 1),
       (SELECT ok_hash FROM c WHERE NOT (ok_hash AND ok_link AND ok_seq) ORDER BY seq LIMIT 1),
       (SELECT count(*) FROM c), (SELECT max(seq) FROM c),
       (SELECT hash FROM c ORDER BY seq DESC LIMIT 1),
       (SELECT hash FROM c WHERE seq = :anchored)
"""


def verify(instance: Instance, anchor_value: str | None = None) -> Verdict:
    """Recompute every entry's hash and link, in chain order; the first that does not follow
    names where the chain breaks. With `anchor_value` (`seq:hash`), that entry must still hold
    that hash (a log rewritten from before it, or cut back, fails)."""
    from sqlalchemy import text

    from lakeline.db.pg_helpers import helpers

    expected = _parse_anchor(anchor_value) if anchor_value else None
    last_seq, last_hash, checked = 0, GENESIS, 0
    anchored: str | None = None
    with instance.engine.connect() as conn:
        _whole_log(conn)
        outside = conn.execute(text("SELECT min(id) FROM audit_log WHERE seq IS NULL")).scalar()
        if instance.dialect == "postgresql":
            bad_seq, ok_hash, count, top, top_hash, anchored = conn.execute(
                text(_PG_CHECK.format(helpers=helpers(conn))),
                {"genesis": GENESIS, "anchored": expected[0] if expected else -1},
            ).one()
            checked, last_seq, last_hash = int(count), int(top or 0), str(top_hash or GENESIS)
            if bad_seq is not None:
                return Verdict(False, checked, "", int(bad_seq), _reason(bool(ok_hash), False))
        else:
            rows = conn.execute(
                text(
                    "SELECT seq, prev_hash, hash, at, actor, tbl, uid, action, changes "
                    "FROM audit_log WHERE seq IS NOT NULL ORDER BY seq"
                )
            )
            for seq, prev, digest, at, actor, tbl, uid, action, changes in rows:
                checked += 1
                ok_hash = digest == entry_hash(prev, seq, at, actor, tbl, uid, action, changes)
                ok_link = prev == last_hash and seq == last_seq + 1
                if not (ok_hash and ok_link):
                    return Verdict(False, checked, "", int(seq), _reason(ok_hash, ok_link))
                last_seq, last_hash = int(seq), str(digest)
                if expected is not None and seq == expected[0]:
                    anchored = str(digest)
        head_row = conn.execute(text("SELECT seq, hash FROM audit_head")).one()
    if outside is not None:
        return Verdict(False, checked, "", None, f"entry id {outside} is outside the chain")
    if (int(head_row[0]), str(head_row[1])) != (last_seq, last_hash):
        return Verdict(
            False,
            checked,
            "",
            last_seq + 1,
            f"the chain ends at #{last_seq} but its head says #{head_row[0]}: entries after "
            f"#{last_seq} were deleted",
        )
    if expected is not None and anchored != expected[1]:
        return Verdict(
            False,
            checked,
            "",
            expected[0],
            "it does not hold the anchored hash: the log was rewritten or cut back",
        )
    return Verdict(True, checked, f"{last_seq}:{last_hash}")


def _reason(ok_hash: bool, ok_link: bool) -> str:
    if not ok_hash:
        return "its content does not match its hash (edited)"
    return "it does not follow the entry before it (an entry was deleted, inserted or reordered)"


def _sqlite_trigger(table: str, columns: list[str], event: str) -> str:
    """One SQLite audit trigger of `table`, as migrations 0009 and 0012 make them for core
    tables."""
    action, row = event.lower(), "OLD" if event == "DELETE" else "NEW"
    if event == "UPDATE":
        when = " WHEN " + " OR ".join(f'OLD."{c}" IS NOT NEW."{c}"' for c in columns)
        pairs = ", ".join(
            f'\'{c}\', CASE WHEN OLD."{c}" IS NOT NEW."{c}" '
            f'THEN json_array(OLD."{c}", NEW."{c}") END'
            for c in columns
        )
    else:
        when, pairs = "", ", ".join(f"'{c}', {row}.\"{c}\"" for c in columns)
    return (
        f"CREATE TRIGGER lakeline_audit_{table}_{action} AFTER {event} ON {table}{when} "
        "BEGIN INSERT INTO audit_log (seq, at, actor, tbl, uid, action, changes, prev_hash, hash) "
        f"SELECT s.seq, s.at, s.actor, '{table}', s.uid, '{action}', s.changes, s.prev, "
        f"lakeline_hash(s.prev, s.seq, s.at, s.actor, '{table}', s.uid, '{action}', s.changes) "
        "FROM (SELECT h.seq + 1 AS seq, h.hash AS prev, "
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS at, lakeline_actor() AS actor, "
        f"{row}.uid AS uid, json_patch('{{}}', json_object({pairs})) AS changes "
        # OFFSET: never flattened into the INSERT, so each value is computed once (0012)
        "FROM audit_head h LIMIT -1 OFFSET 0) s; UPDATE audit_head SET seq = seq + 1, "
        "hash = (SELECT hash "
        "FROM audit_log ORDER BY seq DESC LIMIT 1); END"
    )


def install_module_triggers(conn: Connection, prefixes: list[str]) -> list[str]:
    """Give every table of the schema modules with table prefixes `prefixes` that has a `uid`
    the core's triggers: the audit (migrations 0009, 0014) and, on PostgreSQL, the creator and
    delete checks (0006, 0007) where it has `created_by_id`. Idempotent (replaced in place),
    in `conn`'s transaction. Returns the tables."""
    from sqlalchemy import inspect, text

    from lakeline.access.audit_pg import install_audits
    from lakeline.db.pg_helpers import helpers

    inspector = inspect(conn)
    postgres = conn.dialect.name == "postgresql"
    schema = helpers(conn) if postgres else ""
    done = []
    for table in sorted(inspector.get_table_names()):
        columns = [str(c["name"]) for c in inspector.get_columns(table)]
        if not table.startswith(tuple(prefixes)) or "uid" not in columns:
            continue
        done.append(table)
        if not postgres:
            for event in ("INSERT", "UPDATE", "DELETE"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS lakeline_audit_{table}_{event.lower()}"))
                conn.execute(text(_sqlite_trigger(table, columns, event)))
            continue
        install_audits(conn, [table])  # a function of its own (migration 0014)
        if {"id", "created_by_id"} <= set(columns):
            for event, refs in (
                ("INSERT", "NEW TABLE AS new_rows"),
                ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ):
                conn.execute(
                    text(
                        f"CREATE OR REPLACE TRIGGER lakeline_creator_{event.lower()} AFTER "
                        f"{event} ON {table} REFERENCING {refs} FOR EACH STATEMENT "
                        f"EXECUTE FUNCTION {schema}.lakeline_check_creator()"
                    )
                )
            # a writer deletes only its own rows, as in the core's record tables (0007)
            conn.execute(
                text(
                    f"CREATE OR REPLACE TRIGGER lakeline_delete_own AFTER DELETE ON {table} "
                    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
                    f"EXECUTE FUNCTION {schema}.lakeline_check_delete()"
                )
            )
    return done
