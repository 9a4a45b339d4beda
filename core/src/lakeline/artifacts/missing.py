"""A save a foreign key refused: the record it names that does not exist, as one clear error."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lakeline.db.errors import foreign_key_violation, reason_of
from lakeline.errors import MissingReference, PermissionDenied

if TYPE_CHECKING:
    from lakeline.instance import Instance
    from lakeline.models import Artifact

# a new record's references: column -> (table, what it names)
REFERENCES = {
    "run_id": ("runs", "run"),
    "storage_id": ("storages", "storage"),
    "created_by_id": ("users", "user"),
}
# PostgreSQL's detail of an insert's refusal (the foreign key's, or 0019's trigger's)
_DETAIL = re.compile(
    r'Key \((?P<column>\w+)\)=\((?P<value>[^)]*)\) is not present in table "(?P<table>[^"]+)"'
)


def missing_reference(
    instance: Instance, artifacts: Sequence[Artifact], exc: BaseException
) -> MissingReference | None:
    """The error for `exc` if it is a foreign key's refusal of a save of `artifacts` (their
    objects as the failed attempt filled them), naming the column, the id and an artifact
    that names it; None for any other error."""
    if not foreign_key_violation(exc):
        return None
    orig = getattr(exc, "orig", None) or exc
    detail = getattr(getattr(orig, "diag", None), "message_detail", None) or ""
    found = _DETAIL.search(detail)
    if found is not None:  # PostgreSQL says which
        missing = [(found["column"], found["value"])]
    else:  # SQLite does not: look the new records' references up
        try:
            missing = _absent(instance, artifacts)
        except Exception:  # the save's own error is the one to raise
            missing = []
    if not missing:
        error = MissingReference(
            f"cannot save: a record it names does not exist ({reason_of(orig)}); nothing was saved"
        )
    else:
        column, value = missing[0]
        what = REFERENCES.get(column, (None, column))[1]
        naming = [a for a in artifacts if str(vars(a).get(column)) == value]
        who = f"artifact {_label(naming[0])}" if naming else "a record of this save"
        error = MissingReference(
            f"cannot save: {who} names {what} id {value} ({column}), which does not exist "
            "(never saved, or deleted since this process read it); nothing was saved"
        )
    return error


def hidden_key(
    instance: Instance, artifacts: Sequence[Artifact], exc: BaseException
) -> PermissionDenied | None:
    """The error for `exc`, a save's last attempt's, if it is PostgreSQL's refusal of a new
    latest version under a key another artifact's latest holds, for a role held to spaces
    that does not see that artifact (row security: it is in another space; no retry gets
    past it); None for any other error or role (other writers kept winning: the driver's
    error stands)."""
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    if getattr(diag, "constraint_name", None) != "uq_artifacts_latest_key":
        return None
    from sqlalchemy import column, select, table, text, true

    from lakeline.db.pg_helpers import helpers

    keys = {str(k) for a in artifacts if (k := vars(a).get("key")) is not None}
    try:
        with instance.sessions.read() as session:
            conn = session.connection()
            spaces, role = conn.execute(
                text(f"SELECT {helpers(conn)}.lakeline_spaces(), session_user")
            ).one()
            if spaces is None:
                return None  # the role sees every row
            rows = table("artifacts", column("key"), column("is_latest"))
            latest = rows.c.key.in_(sorted(keys)), rows.c.is_latest == true()
            hidden = sorted(keys - set(session.scalars(select(rows.c.key).where(*latest))))
    except Exception:  # the save's own error is the one to raise
        return None
    if not hidden:
        return None
    # row security hides which: the keys this save makes that the role sees no artifact under
    which = (
        f"key {hidden[0]!r}"
        if len(hidden) == 1
        else (
            f"one of the {len(hidden)} keys it makes new ({', '.join(map(repr, hidden[:3]))}, ...)"
        )
    )
    return PermissionDenied(
        f"cannot save: {which} names an artifact whose latest version role "
        f"{role!r} cannot see (it is in a space the role is not a "
        "member of): save under another key, or ask an admin to move that artifact "
        "(`lakeline space add`); nothing was saved"
    )


def _absent(instance: Instance, artifacts: Sequence[Artifact]) -> list[tuple[str, str]]:
    """(column, id) of the references of `artifacts` no row holds."""
    from sqlalchemy import column, select, table

    absent: list[tuple[str, str]] = []
    with instance.sessions.read() as session:
        for name, (target, _) in REFERENCES.items():
            ids = {v for a in artifacts if (v := vars(a).get(name)) is not None}
            if not ids:
                continue
            rows = table(target, column("id"))
            present = set(session.scalars(select(rows.c.id).where(rows.c.id.in_(sorted(ids)))))
            absent.extend((name, str(i)) for i in sorted(ids - present))
    return absent


def _label(artifact: Any) -> str:
    own = vars(artifact)
    if own.get("key") is not None:
        return repr(own["key"])
    return repr(own.get("_source") or own.get("uid") or "(new)")
