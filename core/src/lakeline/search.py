"""Full-text search with the database's own machinery, the same for every registry.

A registry declares the text fields it is searched by (`search_fields` on the model class, e.g.
`("key", "description")`); its migration creates the index with `search_index_ddl` (FTS5
table + three triggers on SQLite, a generated tsvector column with a GIN index on PostgreSQL).
A query ranks with bm25 (SQLite) or ts_rank (PostgreSQL), the same for artifacts, runs, labels
and the registries a module adds. Every word of the query must match, as a prefix (`read`
finds `reads.csv`). Words are extracted from the text, so no search syntax or SQL reaches the
database from user input.

Ranking every match of a common word costs time in proportion to the matches (~0.7 s for
700k of 1M artifacts). So a limited, ranked search ranks a pool: the newest `pool` matches (on
PostgreSQL: the matches among the newest `POOL_WINDOW * pool` records). On SQLite that is the
exact answer whenever fewer than `pool` match; on PostgreSQL whenever no match is older than
the window (a word of no common token: the first matches in storage order, `lakeline.search_pg`).
Pages (offsets) of a pooled search are ranked over pools of different sizes: page
with `exhaustive=True` for a consistent order. `QuerySet` runs the exhaustive query instead
when the pool yields fewer results than asked for, and `search(..., exhaustive=True)` always.

SQLite, a word many records hold: whole words first. FTS5 has no prefix index, so a prefix
term (`"word"*`) makes it build the list of every row holding a token with that prefix before
the first row comes out, and `bm25()` counts every row holding each word for its IDF on its
first call: both linear (~0.4 s and ~0.16 s for "sequencing" at 10M artifacts). So a limited
search first reads the newest `pool` records holding every word *whole* (`"word"`: FTS5 reads
that list newest first and stops, ~3 ms at 10M; `whole_word_pool`). Only if fewer than `pool`
records do is the pool the newest prefix matches, found as the whole tokens each prefix stands
for in the table's vocabulary (`lakeline.search_vocab`; FTS5's prefix query and bm25() when
that cannot serve), ranked as bm25 ranks them, so a rarer word's results are unchanged, and
`read` still finds `reads.csv` unless `pool` records or more hold the whole word `read` (then
`reads.csv` is ranked only by `exhaustive=True`, or when the pool yields fewer results than
asked for). A whole-word pool is ranked in Python (`_rank_pool`)
with FTS5's bm25 formula (k1 1.2, b 0.75, every field weighted 1) over the records' tokens as
FTS5's unicode61 tokenizer makes them, with two estimates instead of bm25()'s full counts: the
average record length is the pool's, and each word's IDF is counted over the newest
`POOL_WINDOW x pool` ids (clamped to 1e-6 like bm25's when the word is in half of them or
more). With one word the IDF is a constant factor, so only the average can reorder a close
call. On SQLite the pool is ranked before the statement runs (`sqlite_pool`: whole words, or
else the prefix pool's ids and bm25 scores) and its ids reach the statement as a JSON array
(`json_each`, in its order). A prefix pool with fewer than `pool` members held every match,
so its answer is the exhaustive one and `QuerySet` runs no second query when it yields fewer
results than asked for (that second query used to rank every prefix match again: a common
word paired with a rare one paid the linear prefix merge twice).

PostgreSQL reads text as FTS5's unicode61 tokenizer does, whatever the database's locale (the C
locale's `[:alnum:]` is ASCII only: 'über µl' was indexed as 'ber l'). The generated column
(`_pg_tokens`) lower-cases ASCII (`COLLATE "C"`), replaces FTS5's separators (every code point
it does not read as a letter or digit, a regular expression of code points) by spaces and folds
the rest with FTS5's own case and diacritic folds (translate()): 'Über' and 'über' are 'uber',
'µl' is 'μl', 'naïve' is 'naive', ASCII text takes an ASCII-only path. The tables are SQLite's
(`search_unicode61`, written by scripts/unicode61_table.py, Unicode 6.1). A non-ASCII query word
is folded the same way in Python (`_tsquery`, FTS5's tokens). to_tsvector('simple') then splits
on spaces; its parser reads any non-ASCII character as a letter under the C locale, so the
vector is FTS5's tokens exactly there. Under another locale (C.UTF-8, en_US.UTF-8) its parser
also drops the few FTS5 token characters that locale does not call letters or digits (`½`,
`²`, private-use characters) and lower-cases letters FTS5's Unicode 6.1 does not fold (scripts
added since): a query is parsed by the same locale, so it still finds what the column holds.
The database must be UTF8 (the expression names code points beyond Latin-1).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    column,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.orm import aliased

from lakeline.db.sqlite_functions import TOKEN as _TOKEN  # (registered as lakeline_tokens)
from lakeline.search_calls import pg_catalog as _pg_catalog

# searched with LIKE (no ranking) in a registry that declares no `search_fields`
LIKE_FIELDS = ("key", "description", "handle", "name", "root", "reference")
POOL_WINDOW = 20  # PostgreSQL: the pool's matches come from the newest POOL_WINDOW x pool rows
# PostgreSQL: each field's first characters are indexed (a tsvector must stay under 1 MB)
PG_FIELD_CHARS = 100_000
# PostgreSQL: a token of this many bytes or more is dropped from a tsvector and a tsquery alike
PG_MAX_TOKEN_BYTES = 2047
# PostgreSQL: the blocks of FTS5's folds (Latin-1, Latin Extended, diacritics, Greek, Cyrillic
# and Armenian, Georgian and Latin/Greek Extended, the rest of the BMP, beyond), each folded apart
PG_FOLD_BLOCKS = (0x100, 0x250, 0x370, 0x400, 0x1000, 0x2000, 0x10000, 0x110000)
_SEARCH_OBJECT = re.compile(r"\w+_fts(_\w+)?|ix_\w+_search_vector|search_vector")


def words(query: str) -> list[str]:
    """The words of a search query, lower-cased."""
    return [w.lower() for w in re.findall(r"\w+", query)][:32]


def search_fields(model: type[Any]) -> tuple[str, ...]:
    """The text fields `model` is searched by (empty: the registry is not searchable)."""
    return tuple(getattr(model, "search_fields", ()))


def like_fields(model: type[Any]) -> list[str]:
    """A registry without `search_fields` (and so without an index): its columns named like
    text fields (`LIKE_FIELDS`), matched case-insensitively without ranking."""
    return [c.name for c in model.__table__.columns if c.name in LIKE_FIELDS]


def is_search_object(name: str | None) -> bool:
    """Whether a database object is part of the search machinery (made by hand in
    migrations, so the model comparison leaves it out)."""
    return bool(name) and _SEARCH_OBJECT.fullmatch(name or "") is not None


def search_index_ddl(
    table_name: str, fields: Sequence[str], dialect: str, *, pg_function: bool = True
) -> list[str]:
    """Statements that create the search index of a table over `fields` and index the rows it
    already holds: what a migration (the core's or a module's) runs for a searchable registry.

    SQLite: an external-content FTS5 table `<table>_fts` and its vocabulary `<table>_fts_vocab`
    (`lakeline.search_vocab`) kept in step by three triggers (a migration that later rebuilds
    the table in batch mode must run them again, and the rebuild and fill). PostgreSQL:
    a generated column `search_vector` (punctuation read as spaces, as FTS5 does) with a GIN
    index `ix_<table>_search_vector`. Its expression calls `lakeline_search_<table>(text, ...)`,
    an IMMUTABLE plpgsql function holding `pg_search_expression` (since 0021; in the schema of
    lakeline's functions since 0022, `lakeline.db.pg_helpers`): PostgreSQL reads a generated
    column's stored expression at the start of every UPDATE of its table (0.4-0.6 ms for
    0013's 100k+ characters), a function's body once a session.
    `pg_function=False`: the expression inline (0010/0013's form, kept by those migrations).
    """
    fields = _quoted(table_name, fields, dialect)
    fts = f"{table_name}_fts"
    cols = ", ".join(fields)
    if dialect == "sqlite":
        from lakeline.search_vocab import vocab_ddl, vocab_fill

        return [
            f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table_name}', "
            "content_rowid='id')",
            *vocab_ddl(table_name, fields),
            f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
            *vocab_fill(table_name, fields),
        ]
    if dialect == "postgresql":
        index = (
            f"CREATE INDEX ix_{table_name}_search_vector ON {table_name} USING gin (search_vector)"
        )
        if not pg_function:
            return [
                f"ALTER TABLE {table_name} ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
                f"{pg_search_expression(fields)}) STORED",
                index,
            ]
        from lakeline.db.pg_helpers import locate_or_raise

        function = pg_search_function(table_name)
        arguments = ", ".join("text" for _ in fields)
        body = pg_search_expression([f"${i}" for i in range(1, len(fields) + 1)])
        # only built-ins, found in pg_catalog by the setting; made where lakeline's functions
        # are (0022: a schema only the owner may CREATE in; a function of the same signature
        # in the catalog's schema, which a writer may have made first, is none of its
        # business), which the column's call names. The CREATE as text: a $q$ literal
        create = (
            f".{function}({arguments}) RETURNS tsvector LANGUAGE plpgsql IMMUTABLE "
            "SET search_path = pg_catalog, pg_temp "
            f"AS $lakeline$ BEGIN RETURN {body}; END $lakeline$"
        )
        if "$q$" in create or "$do$" in create:
            raise ValueError(f"a search function for table {table_name!r} cannot be made")
        return [
            f"DO $do$ DECLARE h text; BEGIN {locate_or_raise('h')} "
            f"EXECUTE 'CREATE FUNCTION ' OPERATOR(pg_catalog.||) h OPERATOR(pg_catalog.||) "
            f"$q${create}$q$; "
            f"EXECUTE 'ALTER TABLE {table_name} ADD COLUMN search_vector "
            "tsvector GENERATED ALWAYS AS (' OPERATOR(pg_catalog.||) h "
            f"OPERATOR(pg_catalog.||) '.{function}({cols})) STORED'; END $do$",
            index,
        ]
    raise ValueError(f"no full-text search on {dialect}")


def pg_search_function(table_name: str) -> str:
    """PostgreSQL: the name of the function `search_vector` of `table_name` calls (0021):
    `lakeline_search_<table>`, a digest of the name in its place where that would pass
    PostgreSQL's 63 bytes (it cut the name: two tables sharing their first 47 characters got
    one function name, and 0021's downgrade did not find the table's)."""
    name = f"lakeline_search_{table_name}"
    if len(name.encode()) <= 63:
        return name
    return "lakeline_search_" + hashlib.sha256(table_name.encode()).hexdigest()[:32]


def pg_search_function_cut(table_name: str) -> str:
    """The name PostgreSQL gave `lakeline_search_<table>` before `pg_search_function`'s digest
    (cut to 63 bytes): 0021's made for a long module table name."""
    return f"lakeline_search_{table_name}".encode()[:63].decode(errors="ignore")


def pg_search_expression(fields: Sequence[str]) -> str:
    """PostgreSQL: the tsvector of `fields` (SQL expressions: quoted names, parameters)."""
    return f"to_tsvector('simple'::regconfig, {_pg_tokens(fields)})"


# FTS5's own columns (no quoting frees them; nor `<table>_fts`) and PostgreSQL's search column
_NOT_FIELDS = ("rowid", "rank", "search_vector")
# keywords the databases reserve that SQLAlchemy's preparers leave bare (SQLite 3.40's
# `returning`, `nothing`; PostgreSQL 15's `lateral`...; PostgreSQL 16's `system_user`)
_RESERVED_TOO = frozenset(
    ("returning", "nothing", "collation", "concurrently", "lateral", "tablesample", "system_user")
)


@functools.cache
def _preparer(dialect: str) -> Any:
    """SQLAlchemy's identifier preparer of `dialect` (it knows most of the dialect's keywords)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if dialect == "postgresql" else sqlite).dialect().identifier_preparer


def _quoted(table_name: str, fields: Sequence[str], dialect: str) -> list[str]:
    """`fields` as SQL names them, each quoted: whatever keywords a database's version has
    (`order`; PostgreSQL's `user`, which bare is the connected role's name; `lateral`, which
    SQLAlchemy's lists lack). InvalidValue for a name that is not plain lower-case SQL, a table
    named as a keyword, or a field that FTS5 or the search column reserve."""
    from lakeline.errors import InvalidValue

    for name in (table_name, *fields):
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise InvalidValue(f"not a plain SQL name (a-z, 0-9, _): {name!r}")
    if table_name in _RESERVED_TOO or any(
        _preparer(d).quote(table_name) != table_name for d in ("sqlite", "postgresql")
    ):
        raise InvalidValue(f"search index of table {table_name!r}: a table named as an SQL keyword")
    for field in fields:
        if field in _NOT_FIELDS or field == f"{table_name}_fts":  # FTS5's column of its table
            raise InvalidValue(f"search field {field!r}: a name the search index uses itself")
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"no full-text search on {dialect}")
    return [f'"{field}"' for field in fields]  # plain names: nothing to escape


def _pg_tokens(fields: Sequence[str]) -> str:
    """PostgreSQL: `fields` as FTS5's unicode61 tokens, folded and separated by spaces, whatever
    the database's locale (see the module doc). translate() reads its whole list for every
    character, so each block of FTS5's folds (`PG_FOLD_BLOCKS`) has its own translate(), which
    reads the block's list only when the text holds a character it folds."""
    from lakeline.search_unicode61 import FOLD_FROM, FOLD_TO, SEPARATORS

    text_ = " || ' ' || ".join(f"coalesce(left({f}, {PG_FIELD_CHARS}), '')" for f in fields)
    lowered = f'lower(({text_}) COLLATE "C")'  # ASCII letters only, in any locale
    ranges = (_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in SEPARATORS)
    read = f"regexp_replace({lowered}, '[{''.join(ranges)}]+', ' ', 'g')"
    mapped = list(zip(FOLD_FROM, FOLD_TO, strict=False))
    dropped = FOLD_FROM[len(FOLD_TO) :]  # diacritics FTS5 drops: beyond the target's length
    blocks = []  # (the block's sources as a regex class, its FROM, its TO)
    start = 0
    for end in PG_FOLD_BLOCKS:
        folds = [(c, t) for c, t in mapped if start <= ord(c) < end]
        source = "".join(c for c, _ in folds) + "".join(c for c in dropped if start <= ord(c) < end)
        if source:
            held = "".join(
                f"{_escape(a)}-{_escape(b)}" for a, b in _cover(sorted(ord(c) for c in source))
            )
            blocks.append((held, source, "".join(t for _, t in folds)))
        start = end
    each = read  # no fold's target is another's source: the blocks' order does not matter
    for held, source, target in blocks:
        each = (
            f"translate({each}, CASE WHEN {text_} ~ '[{held}]' THEN '{source}' ELSE '' END, "
            f"CASE WHEN {text_} ~ '[{held}]' THEN '{target}' ELSE '' END)"
        )
    first, *rest = blocks  # Latin-1 (most non-ASCII text): one translate(), one test
    beyond = "".join(held for held, _, _ in rest)
    return (
        f"CASE WHEN octet_length({text_}) = length({text_}) "
        f"THEN regexp_replace({lowered}, '[^0-9a-z]+', ' ', 'g') "
        f"WHEN {text_} !~ '[{beyond}]' THEN translate({read}, '{first[1]}', '{first[2]}') "
        f"ELSE {each} END"
    )


def _cover(points: list[int], gap: int = 256) -> list[tuple[int, int]]:
    """Ranges that hold every one of `points` (sorted), joined across gaps up to `gap`."""
    ranges: list[tuple[int, int]] = []
    for c in points:
        if ranges and c - ranges[-1][1] <= gap:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return ranges


def _escape(c: int) -> str:
    """A code point as an escape of PostgreSQL's regular expressions."""
    return f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}"


def drop_search_index_ddl(table_name: str, dialect: str) -> list[str]:
    """Statements that remove what `search_index_ddl` created."""
    fts = f"{table_name}_fts"
    if dialect == "sqlite":
        triggers = [f"DROP TRIGGER IF EXISTS {fts}_{suffix}" for suffix in ("ai", "ad", "au")]
        return [*triggers, f"DROP TABLE IF EXISTS {fts}_vocab", f"DROP TABLE IF EXISTS {fts}"]
    from lakeline.db.pg_helpers import locate_or_raise

    return [
        f"DROP INDEX IF EXISTS ix_{table_name}_search_vector",
        f"ALTER TABLE {table_name} DROP COLUMN IF EXISTS search_vector",
        # where lakeline's functions are (0022: a schema of their own); a long table name's
        # function as 0021 made it too (PostgreSQL cut its name)
        *(
            f"DO $lakeline$ DECLARE h text; BEGIN {locate_or_raise('h')} "
            "EXECUTE 'DROP FUNCTION IF EXISTS ' OPERATOR(pg_catalog.||) h "
            f"OPERATOR(pg_catalog.||) '.{function}'; END $lakeline$"
            for function in dict.fromkeys(
                (pg_search_function(table_name), pg_search_function_cut(table_name))
            )
        ),
    ]


def few_matches(session: Any) -> None:
    """PostgreSQL: the rest of this read transaction plans no parallel workers. Run before the
    exhaustive query that follows a pool with fewer matches than asked for (a rare word): its
    planner expects ~2% of the table to match and chose a Parallel Bitmap Heap Scan at 6.5M
    artifacts, whose workers took ~11 ms to start for 5 rows (1 ms without them)."""
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def _fts5_query(terms: list[str], *, whole: bool = False) -> str:
    return " ".join(f'"{term}"' if whole else f'"{term}"*' for term in terms)


@dataclass(frozen=True)
class RankedPool:
    """SQLite: a pool ranked, as a JSON array of ids best first; `exact`: it holds every
    match, so it ranks as ranking every match would."""

    ids: str
    exact: bool = False


def sqlite_pool(session: Any, model: type[Any], query: str, pool: int) -> RankedPool:
    """SQLite: the pool of a limited search, ranked: the newest `pool` records holding every
    word whole (`whole_word_pool`), or else the newest `pool` prefix matches, found through
    the vocabulary's whole tokens (`lakeline.search_vocab`) or else by FTS5's prefix query and
    ranked by bm25."""
    found = whole_word_pool(session, model, query, pool)
    if found is not None:
        return found
    from lakeline.search_vocab import vocab_pool

    found = vocab_pool(session, model, query, pool)
    if found is not None:
        return found
    fts = f"{model.__table__.name}_fts"
    scored = session.execute(
        text(
            f"SELECT rowid, bm25({fts}) FROM {fts} WHERE {fts} MATCH :q "
            "ORDER BY rowid DESC LIMIT :n"
        ),
        {"q": _fts5_query(words(query)), "n": pool},
    ).all()
    ranked = sorted(scored, key=lambda row: (row[1], -row[0]))  # bm25, then newest first
    return RankedPool(json.dumps([row[0] for row in ranked]), exact=len(scored) < pool)


def _tokens(value: Any) -> list[str]:
    """The tokens FTS5's default unicode61 tokenizer makes of `value`: runs of token
    characters, each folded as FTS5 folds it (`_fts5_folds`)."""
    if value is None:
        return []
    text_ = str(value)
    if text_.isascii():  # letters and digits, lower-cased: FTS5's ASCII tokens exactly
        return _TOKEN.findall(text_.lower())
    return text_.translate(_fts5_folds(text_)).split()


_FOLDS: dict[int, str] = {}  # a character: its folded form in a token; " " for a separator


def _fts5_folds(value: str) -> dict[int, str]:
    """How FTS5's unicode61 tokenizer reads each character of `value` (a character's fold may
    be empty: a diacritic inside a token). Its tables (Unicode 6.1, its own folding and
    diacritics) are not Python's, so each character not met before is asked of SQLite's FTS5
    once, through an in-memory table: ASCII as FTS5 reads it, the rest learned."""
    if not _FOLDS:
        _FOLDS.update({c: chr(c).lower() if chr(c).isalnum() else " " for c in range(128)})
    new = {c for c in value if ord(c) not in _FOLDS}
    if new:
        import sqlite3

        db = sqlite3.connect(":memory:")
        try:
            db.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
            db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
            db.executemany(
                "INSERT INTO t(rowid, x) VALUES (?, ?)", ((ord(c), f"q{c}q") for c in new)
            )
            tokens: dict[int, list[str]] = {ord(c): [] for c in new}
            for doc, term in db.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
                tokens[doc].append(term)
        finally:
            db.close()
        for c, found in tokens.items():  # one token `q...q`: a token character; two: a separator
            _FOLDS[c] = found[0][1:-1] if len(found) == 1 else " "
    return _FOLDS


def _occurrences(tokens: list[str], phrase: tuple[str, ...]) -> int:
    if len(phrase) == 1:
        return tokens.count(phrase[0])
    n, first = len(phrase), phrase[0]
    return sum(
        1 for i, token in enumerate(tokens) if token == first and tuple(tokens[i : i + n]) == phrase
    )


def whole_word_pool(session: Any, model: type[Any], query: str, pool: int) -> RankedPool | None:
    """SQLite: the newest `pool` records holding every word of `query` whole, ranked
    (`_rank_pool`); None when fewer than `pool` records do (then the prefix pool ranks)."""
    terms = words(query)
    phrases = [tuple(_tokens(term)) for term in terms]
    fields = search_fields(model)
    if not fields or not all(phrases):
        return None
    name = model.__table__.name
    fts = f"{name}_fts"
    ids = (
        session.execute(
            text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :q ORDER BY rowid DESC LIMIT :n"),
            {"q": _fts5_query(terms, whole=True), "n": pool},
        )
        .scalars()
        .all()
    )
    if len(ids) < pool:
        return None
    selected = ", ".join(f't."{f}"' for f in fields)  # quoted: perhaps a keyword (`order`)
    found = session.execute(
        text(
            f"SELECT t.id, {selected} FROM json_each(:ids) AS p JOIN {name} AS t ON t.id = p.value"
        ),
        {"ids": json.dumps(list(ids))},
    ).all()
    idf = [1.0] * len(phrases)  # one word: a constant factor of every score
    if len(phrases) > 1:
        newest = session.execute(text(f"SELECT max(id) FROM {name}")).scalar_one()
        low = max(newest - POOL_WINDOW * pool, 0)
        total = newest - low  # ids in the window (counting the rows read 20k of them from disk)
        for i, term in enumerate(terms):
            held = session.execute(
                text(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH :q AND rowid > :low"),
                {"q": _fts5_query([term], whole=True), "low": low},
            ).scalar_one()
            idf[i] = max(math.log((total - held + 0.5) / (held + 0.5)), 1e-6)
    scores = _rank_pool(found, phrases, idf)
    return RankedPool(json.dumps(sorted(scores, key=lambda id_: (scores[id_], -id_))))


def _rank_pool(
    rows: Sequence[Sequence[Any]], phrases: list[tuple[str, ...]], idf: list[float]
) -> dict[int, float]:
    """bm25 (FTS5's formula and sign: k1 1.2, b 0.75, every field weighted 1; lower is better)
    of each `(id, *fields)` row, with the pool's average length and the given IDFs."""
    k1, b = 1.2, 0.75
    counted = []
    for row in rows:
        fields = [_tokens(value) for value in row[1:]]
        freqs = [sum(_occurrences(tokens, phrase) for tokens in fields) for phrase in phrases]
        counted.append((row[0], sum(map(len, fields)), freqs))
    average = max(sum(length for _, length, _ in counted) / max(len(counted), 1), 1.0)
    scores = {}
    for id_, length, freqs in counted:
        norm = k1 * (1 - b + b * length / average)
        scores[id_] = -sum(w * f * (k1 + 1) / (f + norm) for w, f in zip(idf, freqs, strict=True))
    return scores


def _tsquery(terms: list[str]) -> str:
    """PostgreSQL: every word as a prefix, as FTS5 tokenizes it (folded as the indexed text
    is; several tokens a phrase whose last one is the prefix, as FTS5's `"v1_2"*`: to_tsquery
    made every part of 'v1_2:*' a prefix)."""
    phrases = [" <-> ".join(_tokens(term)) for term in terms]
    return " & ".join(f"{phrase}:*" for phrase in phrases if phrase)


def apply_search(
    stmt: Select[Any],
    model: type[Any],
    query: str,
    dialect: str,
    *,
    ordered: bool,
    pool: int | RankedPool | None = None,
    lead: str | None = None,
) -> Select[Any]:
    """`stmt` narrowed to records matching `query`, ranked best first when `ordered`; with
    `pool`, only the newest `pool` matching records are candidates, or the records of a
    `RankedPool` in its order (see the module doc). PostgreSQL, `lead` (`pg_lead`): the index
    is scanned for that word's tsquery and the query's checked on its rows."""
    terms = words(query)
    if not search_fields(model):  # no index declared (a module's registry): LIKE, newest first
        columns = like_fields(model)
        if not columns:
            raise ValueError(f"{model.__name__} has no text fields to search")
        table_: Any = model
        conditions = [
            or_(*(getattr(table_, c).icontains(term, autoescape=True) for c in columns))
            for term in terms
        ]
        stmt = stmt.where(and_(*conditions))
        return stmt.order_by(table_.id.desc()) if ordered else stmt
    name = model.__table__.name
    key: Any = model.id
    if dialect == "sqlite":
        fts_name = f"{name}_fts"
        if ordered and isinstance(pool, RankedPool):
            ranked = (
                text("SELECT value AS rid, key AS position FROM json_each(:ranked)")
                .bindparams(ranked=pool.ids)
                .columns(column("rid", Integer), column("position", Integer))
                .subquery("search_pool")
            )
            stmt = stmt.join(ranked, ranked.c.rid == key)
            return stmt.order_by(ranked.c.position)
        match = text(f"{fts_name} MATCH :fts_query").bindparams(fts_query=_fts5_query(terms))
        if ordered and isinstance(pool, int):
            rowid: Any = literal_column(f"{fts_name}.rowid")
            candidates = (
                select(rowid.label("rid"), literal_column(f"bm25({fts_name})").label("score"))
                .select_from(table(fts_name))
                .where(match)
                .order_by(rowid.desc())
                .limit(pool)
                .subquery("search_pool")
            )
            stmt = stmt.join(candidates, candidates.c.rid == key)
            return stmt.order_by(candidates.c.score, key.desc())
        fts = table(fts_name, column("rowid"))
        stmt = stmt.join(fts, literal_column(f"{fts_name}.rowid") == key).where(match)
        return stmt.order_by(text(f"bm25({fts_name})"), key.desc()) if ordered else stmt
    if any(len(t.encode()) >= PG_MAX_TOKEN_BYTES for term in terms for t in _tokens(term)):
        return stmt.where(false())  # no record holds it (to_tsquery would drop the word)
    if ordered and isinstance(pool, RankedPool):  # `search_pg.pg_pool`, in its order
        ranked = (
            text(
                "SELECT CAST(p.value AS bigint) AS rid, p.position FROM "
                "pg_catalog.jsonb_array_elements_text(CAST(:ranked AS pg_catalog.jsonb)) "
                "WITH ORDINALITY AS p(value, position)"
            )
            .bindparams(ranked=pool.ids)
            .columns(column("rid", Integer), column("position", Integer))
            .subquery("search_pool")
        )
        return stmt.join(ranked, ranked.c.rid == key).order_by(ranked.c.position)
    config: Any = literal_column("'simple'::regconfig")
    tsquery = _pg_catalog("to_tsquery", config, _tsquery(terms))  # a VARCHAR: pg_catalog's

    def matches(vector: Any) -> Any:
        if lead is None:
            return vector.op("@@")(tsquery)
        # ts_match_vq (what @@ calls) is no index condition: GIN reads the lead word alone
        return and_(
            vector.op("@@")(_pg_catalog("to_tsquery", config, lead)),
            _pg_catalog("ts_match_vq", vector, tsquery),
        )

    if ordered and isinstance(pool, int):
        pooled: Any = aliased(model, name=f"search_pool_{name}")
        vector: Any = literal_column(f"search_pool_{name}.search_vector")
        # newest matches among the newest rows: a primary-key range the planner scans
        # backwards; unbounded, a rare word made it walk the whole table (0.6 s at 1M)
        newest = select(func.max(key)).scalar_subquery()
        candidates = (
            select(pooled.id.label("rid"), _pg_catalog("ts_rank", vector, tsquery).label("score"))
            .where(matches(vector), pooled.id > newest - POOL_WINDOW * pool)
            .order_by(pooled.id.desc())
            .limit(pool)
            .subquery("search_pool")
        )
        stmt = stmt.join(candidates, candidates.c.rid == key)
        return stmt.order_by(candidates.c.score.desc(), key.desc())
    vector = literal_column(f"{name}.search_vector")
    stmt = stmt.where(matches(vector))
    rank = _pg_catalog("ts_rank", vector, tsquery)
    return stmt.order_by(rank.desc(), key.desc()) if ordered else stmt
