"""PostgreSQL's choices for a search: which word GIN scans (`pg_words().lead`) and, for words
the column's statistics count no common token of, the pool a limited search ranks
(`pg_pool`); docs/architecture.md (search) has the figures.

GIN reads a prefix term by collecting every row holding a token with that prefix before the
first row comes out, and it yields rows in the table's storage order, never newest first. A
limited search ranks the matches among the newest `POOL_WINDOW x pool` rows (`apply_search`);
when fewer than asked for are there it ranked every match, so a prefix standing for many rare
tokens that only older rows hold (`sample00`: 100k tokens in 400k rows of 1M, `reads_4`) had
GIN collect the prefix twice (the window, then every match) and every match read from the
table and ranked (0.1-0.6 s at 1M). `pg_pool` is the pool of such a word instead: the first
`pool` matches in storage order (roughly the oldest; read from the table's first pages when
they hold that many, else from GIN's bitmap, stopped at `pool`), plus the window's matches
(read walking the newest rows) when fewer than `limit` of those. Fewer than `pool` matches:
the pool holds every match, and the answer is the exhaustive one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from lakeline.search import (
    PG_MAX_TOKEN_BYTES,
    POOL_WINDOW,
    RankedPool,
    _tokens,
    _tsquery,
    search_fields,
    words,
)

# pages read from the table's start before asking GIN (~16 artifacts a page: ~2k rows, ~1 ms)
FIRST_PAGES = 128


@dataclass(frozen=True)
class PgWords:
    """`lead`: the tsquery of the word the fewest records hold (several words; else None);
    `few`: the statistics count no common token of that word (its pool is `pg_pool`'s)."""

    lead: str | None = None
    few: bool = False


def pg_words(
    session: Any, model: type[Any], query: str | None, dialect: str, *, pooled: bool = False
) -> PgWords:
    """PostgreSQL: the rarest word of `query` as the column's statistics tell. GIN reads a
    prefix term by collecting every row holding a token with that prefix before it intersects,
    so `common:* & rare:*` cost as much as the common word (and the planner's estimate of a
    prefix term is a constant). So with several words the index is scanned for the lead word
    alone and the whole query checked on its rows (`apply_search`). A word's count: the
    frequencies of the most common tokens it matches (whole, or the prefix of its last token),
    summed; 0 when none is one (`few`, asked only for a `pooled` search). Nothing without
    statistics (before ANALYZE)."""
    if dialect != "postgresql" or not query:
        return PgWords()
    phrases = [tokens for tokens in (_tokens(term) for term in words(query)) if tokens]
    if len(phrases) < (1 if pooled else 2) or not search_fields(model):
        return PgWords()
    tsqueries = [f"{' <-> '.join(tokens)}:*" for tokens in phrases]
    stats = session.execute(
        text(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, "
            "(SELECT pg_catalog.array_agg(pg_catalog.numnode(pg_catalog.to_tsquery("
            "'simple'::pg_catalog.regconfig, q)) ORDER BY i) FROM pg_catalog.unnest("
            "CAST(:q AS pg_catalog.text[])) WITH ORDINALITY AS u(q, i)) FROM pg_stats s "
            "JOIN pg_namespace n ON n.nspname = s.schemaname JOIN pg_class c ON "
            "c.relnamespace = n.oid AND c.relname = s.tablename "
            "WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(:t)::pg_catalog.oid "
            "AND s.attname = 'search_vector'"
        ),
        {"t": model.__table__.name, "q": tsqueries},
    ).first()
    if stats is None or stats[0] is None:
        return PgWords()
    common: dict[str, float] = dict(zip(stats[0], stats[1], strict=False))
    # a word the tsquery drops a token of (2047 bytes or more; a character the locale's parser
    # reads as no letter): alone its tsquery would be another (empty: it matched nothing)
    kept = [t for t, nodes in zip(phrases, stats[2], strict=True) if nodes == 2 * len(t) - 1]
    if not kept:
        return PgWords()

    def held(tokens: list[str]) -> float:
        *whole, last = tokens
        prefix = sum(f for token, f in common.items() if token.startswith(last))
        return min([common.get(token, 0.0) for token in whole] + [prefix])

    lead = min(kept, key=held)
    few = held(lead) == 0.0 and len(kept) == len(phrases)
    return PgWords(f"{' <-> '.join(lead)}:*" if len(phrases) > 1 else None, few)


def pg_lead(session: Any, model: type[Any], query: str | None, dialect: str) -> str | None:
    """PostgreSQL, a query of several words: the tsquery of the word the fewest records hold
    (`pg_words`; None: SQLite, one word, or no statistics yet)."""
    return pg_words(session, model, query, dialect).lead


def pg_pool(
    session: Any, model: type[Any], query: str, pool: int, limit: int, lead: str | None
) -> RankedPool:
    """PostgreSQL, a limited search whose words the statistics count no common token of: the
    first `pool` matches in storage order, ranked by ts_rank then newest first (see the module
    doc); with `pool` of them, also the matches among the newest `POOL_WINDOW x pool` rows
    unless `limit` of them are there (then those alone: the window's pool). One statement, each
    step gated on the one before (a one-time filter: a step not needed never runs); leaves this
    read transaction planning no parallel workers, as `few_matches`."""
    terms = words(query)
    if any(len(t.encode()) >= PG_MAX_TOKEN_BYTES for term in terms for t in _tokens(term)):
        return RankedPool("[]", exact=True)  # no record holds it (as `apply_search`)
    name = model.__table__.name
    tsquery = "pg_catalog.to_tsquery('simple'::pg_catalog.regconfig, :q)"
    # ts_match_vq (what @@ calls) is no index condition: the first pages and the newest rows
    # are walked; GIN serves `@@` (the lead word's tsquery with several words)
    checked = f"pg_catalog.ts_match_vq(search_vector, {tsquery})"
    gin = f"search_vector @@ {tsquery}"
    if lead is not None:
        lead_query = "pg_catalog.to_tsquery('simple'::pg_catalog.regconfig, :lead)"
        gin = f"search_vector @@ {lead_query} AND {checked}"
    scored = f"SELECT id, pg_catalog.ts_rank(search_vector, {tsquery}) AS score"
    sql = (
        f"WITH head AS MATERIALIZED ({scored} FROM {name} WHERE ctid < '({FIRST_PAGES},0)'::tid "
        f"AND {checked} LIMIT :n), "
        f"gin AS MATERIALIZED ({scored} FROM {name} WHERE {gin} "
        "AND (SELECT count(*) FROM head) < :n LIMIT :n), "
        "first AS MATERIALIZED (SELECT * FROM head WHERE (SELECT count(*) FROM head) = :n "
        "UNION ALL SELECT * FROM gin) "
        f"SELECT id, score, true FROM first UNION ALL SELECT * FROM ({scored}, false FROM {name} "
        f"WHERE {checked} AND id > (SELECT max(id) FROM {name}) - {POOL_WINDOW * pool} "
        "AND (SELECT count(*) FROM first) = :n ORDER BY id DESC LIMIT :n) AS newest"
    )
    setting = "SELECT current_setting('enable_seqscan')"
    was = session.execute(
        text(
            f"{setting}, set_config('max_parallel_workers_per_gather', '0', true), "
            "set_config('enable_seqscan', 'off', true)"
        )  # GIN's bitmap, not a seq scan
    ).scalar_one()
    found = session.execute(text(sql), {"q": _tsquery(terms), "lead": lead, "n": pool}).all()
    # not in a `finally`: a failed statement aborts the transaction, which ends the setting
    # (is_local), and a reset there would raise "transaction is aborted" over the real error
    session.execute(text("SELECT set_config('enable_seqscan', :was, true)"), {"was": was})
    first = {id_: score for id_, score, head in found if head}
    window = {id_: score for id_, score, head in found if not head}
    scores = window if len(window) >= limit else first | window
    ranked = sorted(scores, key=lambda id_: (-scores[id_], -id_))
    return RankedPool(json.dumps(ranked), exact=len(first) < pool)
