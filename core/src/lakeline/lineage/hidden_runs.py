"""Runs a role held to spaces no longer sees: moved since to a space it is not in (PostgreSQL
row security), told apart from runs deleted since (a flush's look-up after it failed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.orm import Session

    from lakeline.errors import LakelineError
    from lakeline.models import Run


def hidden_runs(session: Session, ids: Collection[int]) -> set[int]:
    """Those of `ids` (runs the connected role does not see) that exist and that it created:
    hidden by space rules, not deleted (migration 0026's `lakeline_own_runs`). Empty on
    SQLite, for a role held to no space, or when `ids` is."""
    if not ids or session.get_bind().dialect.name != "postgresql":
        return set()
    from sqlalchemy import text

    from lakeline.db.pg_helpers import helpers

    conn = session.connection()
    found = conn.execute(
        text(f"SELECT {helpers(conn)}.lakeline_own_runs(:ids)"), {"ids": sorted(ids)}
    ).scalar()
    return set(found or ())


def unseen_runs(session: Session, ids: Collection[int]) -> set[int]:
    """Those of `ids` (runs the connected role does not see, of other roles or of unknown
    creator: `hidden_runs` cannot answer for them) that may be hidden by space rules rather
    than deleted: all of them when the role is held to spaces (PostgreSQL), else none."""
    if not ids or session.get_bind().dialect.name != "postgresql":
        return set()
    from sqlalchemy import text

    from lakeline.db.pg_helpers import helpers

    conn = session.connection()
    spaces = conn.execute(text(f"SELECT {helpers(conn)}.lakeline_spaces()")).scalar()
    return set(ids) if spaces is not None else set()


def role_of(session: Session) -> str:
    """The role connected (`session_user`, whom space rules and `created_by` go by), as the
    server says: the URL may name none (PGUSER, the OS user, a service file)."""
    from sqlalchemy import text

    return str(session.connection().execute(text("SELECT session_user")).scalar_one())


def unseen_reason(what: str, role: str | None) -> str:
    """Why a step naming a run (`what`) that `unseen_runs` returned is left out: deleted, or
    moved to a space the role is not in; which of the two, the role cannot know."""
    return (
        f"{what} is not visible to role {role!r} (deleted, or in a space it is not a member "
        "of: its spaces hide what others recorded elsewhere)"
    )


def hidden_reason(what: str, role: str | None) -> str:
    """Why a step naming a run (`what`: "its parent run id 7") hidden by space rules is left
    out."""
    return (
        f"{what} is hidden by space rules (in a space role {role!r} is not a member of: "
        "moved since it was recorded)"
    )


def gone_error(session: Session, run: Run, doing: str) -> LakelineError:
    """The error for `run`, not found by a write of its row (`doing`: "finish"): hidden by
    space rules (moved since to a space the role is not in: PermissionDenied) or deleted
    since ("no longer exists")."""
    from lakeline.errors import LakelineError, PermissionDenied

    if hidden_runs(session, {run.id}):
        return PermissionDenied(
            f"cannot {doing} run {run.uid}: it is in a space role {role_of(session)!r} is not "
            "a member of (moved since it was recorded); nothing was recorded"
        )
    return LakelineError(f"run {run.uid} no longer exists")
