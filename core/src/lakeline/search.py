"""Full-text search with the database's own machinery.

Artifacts: SQLite FTS5 (bm25 ranking) or a PostgreSQL tsvector with a GIN index (ts_rank).
Other registries: case-insensitive matching over their text fields. Every word of the query
must match, as a prefix (`read` finds `reads.csv`). Words are extracted from the text, so
no search syntax or SQL reaches the database from user input.

Ranking every match of a common word costs time in proportion to the matches (~0.7 s for
700k of 1M artifacts). So a limited, ranked artifact search ranks a pool: the newest `pool`
matches (on PostgreSQL: the matches among the newest `POOL_WINDOW * pool` artifacts). On
SQLite that is the exact answer whenever fewer than `pool` match; on PostgreSQL whenever no
match is older than the window. Pages (offsets) of a pooled search are ranked over pools of
different sizes: page with `exhaustive=True` for a consistent order. `QuerySet` runs the
exhaustive query instead when the pool yields fewer results than asked for, and
`search(..., exhaustive=True)` always.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, and_, column, func, literal_column, or_, select, table, text
from sqlalchemy.orm import aliased

from lakeline.models import Artifact

TEXT_FIELDS = ("key", "description", "handle", "name", "root", "reference")
POOL_WINDOW = 20  # PostgreSQL: the pool's matches come from the newest POOL_WINDOW x pool rows


def words(query: str) -> list[str]:
    """The words of a search query, lower-cased."""
    return [w.lower() for w in re.findall(r"\w+", query)][:32]


def _fts5_query(terms: list[str]) -> str:
    return " ".join(f'"{term}"*' for term in terms)


def _tsquery(terms: list[str]) -> str:
    return " & ".join(f"{term}:*" for term in terms)


def apply_search(
    stmt: Select[Any],
    model: type[Any],
    query: str,
    dialect: str,
    *,
    ordered: bool,
    pool: int | None = None,
) -> Select[Any]:
    """`stmt` narrowed to records matching `query`, ranked best first when `ordered`; with
    `pool`, only the newest `pool` matching artifacts are candidates (see the module doc)."""
    terms = words(query)
    if model is Artifact and dialect == "sqlite":
        match = text("artifacts_fts MATCH :fts_query").bindparams(fts_query=_fts5_query(terms))
        if ordered and pool is not None:
            rowid: Any = literal_column("artifacts_fts.rowid")
            candidates = (
                select(rowid.label("rid"), literal_column("bm25(artifacts_fts)").label("score"))
                .select_from(table("artifacts_fts"))
                .where(match)
                .order_by(rowid.desc())
                .limit(pool)
                .subquery("search_pool")
            )
            stmt = stmt.join(candidates, candidates.c.rid == Artifact.id)
            return stmt.order_by(candidates.c.score, Artifact.id.desc())
        fts = table("artifacts_fts", column("rowid"))
        stmt = stmt.join(fts, literal_column("artifacts_fts.rowid") == Artifact.id).where(match)
        return stmt.order_by(text("bm25(artifacts_fts)")) if ordered else stmt
    if model is Artifact and dialect == "postgresql":
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), _tsquery(terms))
        if ordered and pool is not None:
            pooled: Any = aliased(Artifact, name="search_pool_artifacts")
            vector: Any = literal_column("search_pool_artifacts.search_vector")
            # newest matches among the newest rows: a primary-key range the planner scans
            # backwards; unbounded, a rare word made it walk the whole table (0.6 s at 1M)
            newest = select(func.max(Artifact.id)).scalar_subquery()
            candidates = (
                select(pooled.id.label("rid"), func.ts_rank(vector, tsquery).label("score"))
                .where(vector.op("@@")(tsquery), pooled.id > newest - POOL_WINDOW * pool)
                .order_by(pooled.id.desc())
                .limit(pool)
                .subquery("search_pool")
            )
            stmt = stmt.join(candidates, candidates.c.rid == Artifact.id)
            return stmt.order_by(candidates.c.score.desc(), Artifact.id.desc())
        vector = literal_column("artifacts.search_vector")
        stmt = stmt.where(vector.op("@@")(tsquery))
        return stmt.order_by(func.ts_rank(vector, tsquery).desc()) if ordered else stmt
    columns = [c for c in model.__table__.columns if c.name in TEXT_FIELDS]
    if not columns:
        raise ValueError(f"{model.__name__} has no text fields to search")
    table_: Any = model
    conditions = [
        or_(*(getattr(table_, c.name).icontains(term, autoescape=True) for c in columns))
        for term in terms
    ]
    stmt = stmt.where(and_(*conditions))
    return stmt.order_by(table_.id.desc()) if ordered else stmt
