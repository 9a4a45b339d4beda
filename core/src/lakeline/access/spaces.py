"""Spaces: artifacts, runs and labels belong to one (default `all`); on PostgreSQL row-level
security holds a role that is a member of spaces to their rows (migration 0008).

The `spaces`, `space_members` tables and the `space_id` columns are the database's machinery,
not mapped by the models: this module reads and writes them with plain SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeline.access.roles import AccessError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from lakeline.instance import Instance

DEFAULT_SPACE = "all"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass
class SpaceInfo:
    """A space, how many artifacts, runs and labels (that the caller sees) it holds, members."""

    name: str
    artifacts: int
    runs: int
    labels: int
    members: list[str]


def check_name(name: str) -> str:
    """A space name: letters, digits, `_ . -`, at most 63 characters."""
    if not _NAME.fullmatch(name):
        raise AccessError(
            f"invalid space name {name!r}: use letters, digits, '_', '.', '-' "
            "(at most 63, starting with a letter or digit)"
        )
    return name


def space_ids(conn: Connection, names: list[str]) -> dict[str, int]:
    """The ids of spaces `names` (AccessError naming those that do not exist)."""
    from sqlalchemy import bindparam, text

    stmt = text("SELECT name, id FROM spaces WHERE name IN :names").bindparams(
        bindparam("names", expanding=True)
    )
    found = {str(n): int(i) for n, i in conn.execute(stmt, {"names": list(names)}).all()}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise AccessError(f"no space named {', '.join(map(repr, unknown))} (`lakeline space list`)")
    return found


def create(instance: Instance, name: str, description: str | None = None) -> None:
    """Create space `name` (an admin's job on PostgreSQL)."""
    from sqlalchemy import text

    from lakeline.ids import new_uid
    from lakeline.models.base import utcnow

    check_name(name)
    user_id = instance.user.id
    with instance.engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM spaces WHERE name = :n"), {"n": name}).first():
            raise AccessError(f"space {name!r} exists already")
        conn.execute(
            text(
                "INSERT INTO spaces (uid, name, description, created_at, created_by_id) "
                "VALUES (:uid, :name, :d, :at, :by)"
            ),
            {"uid": new_uid(16), "name": name, "d": description, "at": utcnow(), "by": user_id},
        )


def move(
    instance: Instance,
    space: str,
    *,
    keys: Sequence[str] = (),
    runs: Sequence[str] = (),
    labels: Sequence[str] = (),
) -> int:
    """Put artifacts (by key or uid: every version), runs (by uid) and labels (by name) into
    `space`, in one transaction; AccessError naming any that the caller cannot see. The
    artifacts' keys are locked first, as a save or delete of them locks them (db/locks.py):
    every version is moved, a version being saved meanwhile too."""
    from lakeline.db.errors import with_retries

    return with_retries(lambda: _move(instance, space, list(keys), list(runs), list(labels)))


def _move(
    instance: Instance, space: str, keys: list[str], runs: list[str], labels: list[str]
) -> int:
    from sqlalchemy import bindparam, text

    from lakeline.db.locks import lock_keys

    targets = (
        ("artifacts", "key IN :v OR uid IN :v OR stem IN :v", keys, "artifact"),
        ("runs", "uid IN :v", runs, "run"),
        ("ulabels", "name IN :v", labels, "label"),
    )
    moved = 0
    # SQLite: the write lock at BEGIN (a read snapshot cannot become a write once another
    # writer committed: the move failed "database is locked")
    with instance.engine.execution_options(lakeline_write=True).begin() as conn:
        target_id = space_ids(conn, [space])[space]
        for table, where, values, what in targets:
            if not values:
                continue
            names = {"artifacts": "key, uid, stem", "runs": "uid", "ulabels": "name"}[table]
            found = conn.execute(
                text(f"SELECT {names} FROM {table} WHERE {where}").bindparams(
                    bindparam("v", expanding=True)
                ),
                {"v": values},
            ).all()
            seen = {str(v) for row in found for v in row if v is not None}
            missing = [v for v in values if v not in seen]
            if missing:
                raise AccessError(f"no {what} {', '.join(map(repr, missing))} (that you can see)")
            if table == "artifacts":  # the statement below then sees their versions committed
                lock_keys(conn, "artifact", {str(row[0]) for row in found if row[0] is not None})
            result = conn.execute(
                text(f"UPDATE {table} SET space_id = :s WHERE {where}").bindparams(
                    bindparam("v", expanding=True)
                ),
                {"v": values, "s": target_id},
            )
            moved += result.rowcount
    return moved


def check_spaces(engine: Engine, spaces: list[str]) -> None:
    """AccessError unless every one of `spaces` exists and is not `all`."""
    with engine.connect() as conn:
        space_ids(conn, spaces)
    if DEFAULT_SPACE in spaces:
        raise AccessError(f"{DEFAULT_SPACE!r} is every space: grant without --space")


def set_membership(engine: Engine, role: str, spaces: list[str]) -> None:
    """Hold login role `role` to `spaces` (empty: every space again). PostgreSQL, admins."""
    if engine.dialect.name != "postgresql":
        raise AccessError(
            "space membership needs a PostgreSQL instance: on SQLite spaces only group records"
        )
    from sqlalchemy import text

    with engine.begin() as conn:
        ids = space_ids(conn, spaces) if spaces else {}
        if DEFAULT_SPACE in ids:
            raise AccessError(f"{DEFAULT_SPACE!r} is every space: grant without --space")
        conn.execute(text("DELETE FROM space_members WHERE role = :r"), {"r": role})
        for space_id in ids.values():
            conn.execute(
                text("INSERT INTO space_members (space_id, role) VALUES (:s, :r)"),
                {"s": space_id, "r": role},
            )


def memberships(conn: Connection) -> dict[str, list[str]]:
    """The spaces each role is held to, by role."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "SELECT m.role, s.name FROM space_members m JOIN spaces s ON s.id = m.space_id "
            "ORDER BY m.role, s.name"
        )
    ).all()
    result: dict[str, list[str]] = {}
    for role, name in rows:
        result.setdefault(str(role), []).append(str(name))
    return result


def listing(instance: Instance) -> list[SpaceInfo]:
    """Every space with what the caller sees of it."""
    from sqlalchemy import text

    with instance.engine.connect() as conn:
        counts = {
            table: dict(
                conn.execute(text(f"SELECT space_id, count(*) FROM {table} GROUP BY space_id"))
                .tuples()
                .all()
            )
            for table in ("artifacts", "runs", "ulabels")
        }
        members: dict[int, list[str]] = {}
        if instance.dialect == "postgresql":
            for space_id, role in conn.execute(
                text("SELECT space_id, role FROM space_members ORDER BY role")
            ):
                members.setdefault(int(space_id), []).append(str(role))
        spaces = conn.execute(text("SELECT id, name FROM spaces ORDER BY id")).all()
    return [
        SpaceInfo(
            str(name),
            int(counts["artifacts"].get(sid, 0)),
            int(counts["runs"].get(sid, 0)),
            int(counts["ulabels"].get(sid, 0)),
            members.get(int(sid), []),
        )
        for sid, name in spaces
    ]


def space_of(instance: Instance, table: str, uid: str) -> str:
    """The name of the space record `uid` of `table` (artifacts, runs, ulabels) belongs to."""
    from sqlalchemy import text

    if table not in ("artifacts", "runs", "ulabels"):
        raise AccessError(f"records of {table!r} do not belong to spaces")
    with instance.engine.connect() as conn:
        name = conn.execute(
            text(
                f"SELECT s.name FROM {table} t JOIN spaces s ON s.id = t.space_id WHERE t.uid = :u"
            ),
            {"u": uid},
        ).scalar()
    if name is None:
        raise AccessError(f"no record {uid!r} in {table} (that you can see)")
    return str(name)
