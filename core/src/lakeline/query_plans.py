"""SQLite: the plan of a limited query in id order, chosen by what it costs as it runs.

SQLite keeps no statistics of how many rows a filter matches, so for `filter(...)` with the
default `ORDER BY id` and a LIMIT it reads the filter's index and sorts every match before
taking the first n: fast when the filter is selective, linear in the matches when it is not
(7.5 s for 10k rows of a top-level key prefix at 10M artifacts). Walking the table in id order
and stopping after n matches costs about n x rows / matches instead. Which of the two is
cheaper depends on the matches, which are not known in advance; so the query runs

1. as SQLite plans it, for at most `bound / INDEX_SHARE` rows' worth of work, where
   bound = sqrt(needed x max(id)) (needed = limit + offset): a selective filter ends here, at
   no cost beyond a progress handler;
2. else as a walk in id order (each filter term wrapped in `likely()`, which makes SQLite
   prefer the order of the primary key, and `id IN (subquery)` turned into a correlated
   EXISTS), for at most `INDEX_SHARE x bound` rows' worth: ends here when the matches are
   spread over the table;
3. else (the matches are few, or bunched at the far end of the id order) as in 1, to the end.

Work is counted in SQLite virtual-machine steps (`set_progress_handler`), not time, so the plan
a query takes does not depend on the machine's load. Every step runs the same query: the rows,
their order, limit and offset are the same whichever step answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Select, func
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lakeline.query import QuerySet

OPS_PER_ROW = 10  # virtual-machine steps per row read (6-12 measured on the 10M catalog)
INDEX_SHARE = 8  # the index plan gets bound / INDEX_SHARE rows, the walk INDEX_SHARE x bound
START_STEPS = 200  # opening a statement's tables and indexes, reading a short IN list
MAX_ID_SECONDS = 10.0
_MAX_IDS: dict[tuple[str, str], tuple[float, int]] = {}
_POINT_FIELDS = frozenset({"id", "uid", "stem", "key"})  # equality: a unique index answers


def eligible(query: QuerySet[Any]) -> bool:
    """Whether `query` is a filtered, limited SQLite query in id order that is not a lookup of
    one record by a unique field."""
    if query.instance.dialect != "sqlite" or query._limit is None or query._search is not None:
        return False
    if query._order not in ([], ["id"], ["-id"]) or not hasattr(query.model, "id"):
        return False
    if not (query._lookups or query._expressions):
        return False  # nothing to choose: SQLite walks the primary key already
    return not any(
        include and any(name in _POINT_FIELDS for name in lookups)
        for include, lookups in query._lookups
    )


def budgets(needed: int, max_id: int, width: int) -> tuple[int, int]:
    """Virtual-machine steps for the index plan and for the walk: their share of the rows
    read, and what both spend anyway (starting; writing `needed` rows of `width` columns)."""
    bound = math.sqrt(max(needed, 1) * max(max_id, 1))
    anyway = START_STEPS + needed * (OPS_PER_ROW + width)
    return (
        anyway + int(OPS_PER_ROW * bound / INDEX_SHARE),
        anyway + int(OPS_PER_ROW * bound * INDEX_SHARE),
    )


def planned_rows(
    query: QuerySet[Any],
    session: Session,
    columns: Select[Any],
    run: Callable[[Session, Any], Any],
) -> list[Any] | None:
    """The rows of `query` (as `run(session, statement)` gives them), by the cheaper plan;
    None when `query` is not `eligible` (the caller runs it as it is)."""
    if not eligible(query):
        return None
    conn: Any = session.connection().connection.driver_connection
    max_id = _max_id(conn, query.instance.uid, query.model.__table__.name)
    needed = (query._limit or 0) + (query._offset or 0)
    for_index, for_walk = budgets(needed, max_id, len(columns.selected_columns))
    as_planned = query._statement(columns)
    for walk, steps in ((False, for_index), (True, for_walk)):
        statement = query._statement(columns, walk=True) if walk else as_planned
        with _budget(conn, steps) as state:
            try:
                return list(run(session, statement))
            except Exception:
                if not state["stopped"]:
                    raise
    return list(run(session, as_planned))


def _max_id(conn: Any, instance_uid: str, table: str) -> int:
    """The table's largest id, read again after `MAX_ID_SECONDS` (it only sets the budgets)."""
    now = time.monotonic()
    known = _MAX_IDS.get((instance_uid, table))
    if known is not None and now - known[0] < MAX_ID_SECONDS:
        return known[1]
    found = conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0
    _MAX_IDS[(instance_uid, table)] = (now, found)
    return int(found)


@contextmanager
def _budget(conn: Any, steps: int) -> Iterator[dict[str, Any]]:
    """Stop the statement run inside after about `steps` virtual-machine steps. A progress
    handler set on the connection (remembered by lakeline's connections, `db/engine.py`) is
    called meanwhile (every n steps, at most once per tick), its stop is the statement's
    error, and it is set back after."""
    import sqlite3

    every = max(1, min(1000, steps // 16))
    state = {"left": steps // every, "stopped": False}
    theirs = getattr(conn, "progress_handler", None)
    # SQLite never calls a handler set with n < 1 (disabled): nor does the tick
    handler, n = theirs if theirs is not None and theirs[1] >= 1 else (None, 0)
    due = [n]

    def tick() -> int:
        if handler is not None:
            due[0] -= every
            if due[0] <= 0:
                due[0] += n
                if handler():
                    return 1  # their stop, not the budget's: the error is raised
        state["left"] -= 1
        if state["left"] < 0:
            state["stopped"] = True
            return 1
        return 0

    sqlite3.Connection.set_progress_handler(conn, tick, every)  # not remembered as theirs
    try:
        yield state
    finally:
        sqlite3.Connection.set_progress_handler(conn, *(theirs or (None, 0)))


def walk_terms(model: Any, conditions: Sequence[Any]) -> list[Any]:
    """`conditions` as terms SQLite checks row by row while walking `model` in id order."""
    terms: list[Any] = []
    for condition in conditions:
        if isinstance(condition, BooleanClauseList) and condition.operator is operators.and_:
            terms += walk_terms(model, condition.clauses)
        else:
            terms.append(func.likely(_correlated(model, condition)))
    return terms


def _correlated(model: Any, condition: Any) -> Any:
    """`model.id IN (SELECT x FROM other ...)` as `EXISTS (... AND x = model.id)`: an IN list
    drives SQLite's plan (it reads every id of the list first). Only where both mean the same:
    a plain select of a column of another table (no LIMIT, OFFSET, GROUP BY or aggregate, and
    `model`'s table nowhere in its FROM, also not inside a JOIN: it would not correlate). NOT IN
    stays: `id NOT IN (... NULL ...)` matches no row, `NOT EXISTS` every row without a match."""
    if not isinstance(condition, BinaryExpression) or condition.operator is not operators.in_op:
        return condition
    left, right = condition.left, condition.right
    if getattr(left, "table", None) is not model.__table__ or left.key != "id":
        return condition
    inner: Any = getattr(right, "element", right)  # ScalarSelect -> its Select
    if not isinstance(inner, Select) or not _plain(inner, model.__table__):
        return condition
    return inner.where(inner.selected_columns[0] == model.id).exists()


def _plain(inner: Select[Any], table: Any) -> bool:
    """Whether `inner` selects one column of a table other than `table` and nothing else
    (filtered, joined, ordered) changes which values it yields when filtered by that column."""
    columns = list(inner.selected_columns)
    if len(columns) != 1 or not isinstance(columns[0], Column):
        return False  # an expression, an aggregate, a literal: not one row's value
    if inner._limit_clause is not None or inner._offset_clause is not None:
        return False
    if inner._group_by_clauses or inner._having_criteria:
        return False
    return not any(f.is_derived_from(table) for f in inner.get_final_froms())
