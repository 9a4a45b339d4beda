"""SQLite: a search word's prefix read as the whole tokens it stands for, from a vocabulary.

FTS5 has no prefix index: a prefix term (`"seq"*`) makes it merge the list of every row holding
a token with that prefix before the first row comes out, and `bm25()` counts every row holding
each word for its IDF (0.35-1.0 s for `seq` at 10M artifacts; a common word paired with a rare
one 0.54-0.62 s). Whole tokens cost neither: FTS5 reads `"sequencing" OR "sequel"` newest
first and stops at the limit, and an AND of a rare and a common token skips along the rare
one's rows (< 1 ms at 10M). So each searchable table has a vocabulary `<table>_fts_vocab`
(term, docs): every token its FTS5 index holds and how many rows hold it, kept by the search
triggers (`lakeline_tokens()`, registered on every lakeline connection, gives a row's tokens
as FTS5's unicode61 tokenizer makes them; `search.search_index_ddl`). A limited search whose
words fewer than a pool's worth of records hold whole (`search.whole_word_pool` first) reads
each word's last token as a key range of the vocabulary (`seq` -> `sequencing`, at most
`SCAN_TERMS` tokens with their counts). When every word's tokens are in fewer than `PREFIX_ROWS`
rows, FTS5's prefix query and bm25() cost little and rank the pool as before. Otherwise:

- a word of at most `MAX_TERMS` tokens is the OR of those tokens; a word of more, all of them
  rare (`COUNT_ROWS`), FTS5's prefix term (it merges few rows); a word of at most `SCAN_TERMS`
  tokens, some common (`q`: `qc` in 2M rows and 500 rare words at 10M), the OR of its common
  tokens whole and prefix terms of the longest prefixes holding only rare ones (`_cover`:
  `"qc" OR "qb"* OR "qk"*`...; at most `MAX_TERMS` terms, their prefix terms of at most
  `MERGE_ROWS` rows). Words ANDed, FTS5 gives the newest
  `pool` rows: the same rows as the prefix query, without the merge of common tokens. A word
  with no token: nothing matches.
- a word of more tokens, some common (`sa` before millions of `sample0001234`), is checked in
  Python on candidate rows, newest first: the rows matching the other words, or else the
  table's newest rows, at most `CHECK_ROWS` of them (ASCII text with one regular expression).
  The matches found are the pool when there are `pool` of them or the candidates ran out
  (every match seen). Otherwise (or when the matches so far are too sparse to reach `pool`
  within the budget: `sample0` when the newest rows are `sample24…`) FTS5 reads those words as
  prefix terms (it merges their rows: linear in them, 0.1-0.2 s for 1M tokens in 4M rows at
  10M) and the others as above; their IDF is FTS5's count of their rows (once more the merge).
  Before, the prefix pool of every word ranked by bm25() merged every word's rows twice.

The pool is ranked in Python with bm25's arithmetic and FTS5's own figures: the row count and
average length of the averages record FTS5 keeps (`_averages`), each word's IDF from the
vocabulary (one whole token: its count; FTS5's count of its rows when its tokens' counts sum
to at most `COUNT_ROWS`; bm25's floor when one token is in half the rows or more). So a pool
ranks as bm25 ranked the prefix pool, except that, in a query of several words, the IDF of a
word standing for several common tokens is estimated (the sum of their counts), and of a word
standing for more than `SCAN_TERMS` taken as half the rows.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lakeline.db.errors import translate
from lakeline.search import RankedPool, _preparer, _tokens, search_fields, words

MAX_TERMS = 64  # a word's whole tokens ORed in one FTS5 query
SCAN_TERMS = 4096  # a word's tokens read from the vocabulary with their counts
CHECK_ROWS = 10_000  # candidate rows a word of more tokens is checked on, in Python
COUNT_ROWS = 50_000  # a word of several tokens: FTS5 counts its rows when they are fewer
MERGE_ROWS = 50_000  # a word's cover: rows its prefix terms make FTS5 merge, at most
PREFIX_ROWS = 20_000  # every word's tokens in fewer rows: the prefix pool, as before
CHUNK = 1_000  # candidate rows read at a time
MAX_TOKEN_BYTES = 32_768  # FTS5_MAX_TOKEN_SIZE: FTS5 keeps the first bytes of a longer token


def tokens_json(*values: Any) -> str:
    """`lakeline_tokens(...)`: the distinct FTS5 tokens of `values`, a JSON array, as FTS5's
    unicode61 tokenizer folds them (the function registered is `db.sqlite_functions`', which
    takes ASCII text itself)."""
    joined = " ".join(str(value) for value in values if value is not None)
    return json.dumps(list(set(_tokens(joined))))


def register_sqlite(dbapi_conn: Any) -> None:
    """Give a SQLite connection the function the search triggers call."""
    from lakeline.db.sqlite_functions import tokens_json as tokens

    dbapi_conn.create_function("lakeline_tokens", -1, tokens, deterministic=True)


def vocab_ddl(table_name: str, fields: Sequence[str]) -> list[str]:
    """The vocabulary of `table_name`'s search index: its table and the three triggers that keep
    it and the FTS5 index (replacing the FTS5-only ones), without filling it (`vocab_fill`)."""
    fts, vocab = f"{table_name}_fts", f"{table_name}_fts_vocab"
    cols = ", ".join(fields)
    new = ", ".join(f"new.{f}" for f in fields)
    old = ", ".join(f"old.{f}" for f in fields)
    add = (
        f"INSERT INTO {vocab}(term, docs) SELECT value, 1 FROM json_each(lakeline_tokens({new})) "
        "WHERE true ON CONFLICT(term) DO UPDATE SET docs = docs + 1;"
    )
    held = f"(SELECT value FROM json_each(lakeline_tokens({old})))"
    remove = (
        f"UPDATE {vocab} SET docs = docs - 1 WHERE term IN {held}; "
        f"DELETE FROM {vocab} WHERE docs <= 0 AND term IN {held};"
    )
    return [
        *(f"DROP TRIGGER IF EXISTS {fts}_{suffix}" for suffix in ("ai", "ad", "au")),
        f"CREATE TABLE IF NOT EXISTS {vocab} (term TEXT PRIMARY KEY, docs INTEGER NOT NULL) "
        "WITHOUT ROWID",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table_name} BEGIN "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); {add} END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table_name} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); {remove} END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {cols} ON {table_name} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old}); {remove} "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new}); {add} END",
    ]


def vocab_fill(table_name: str, fields: Sequence[str]) -> list[str]:
    """The vocabulary filled from the FTS5 index itself (its `fts5vocab` rows: each token and
    the rows holding it), replacing what it held. FTS5 keeps a token's first `MAX_TOKEN_BYTES`
    bytes (cut anywhere, even inside a character: not text Python can read), the triggers the
    whole token: tokens that long are counted from the rows holding them, as the triggers do."""
    fts, cols = f"{table_name}_fts", ", ".join(f"t.{f}" for f in fields)
    long_rows = " OR ".join(f"length(CAST(t.{f} AS BLOB)) >= {MAX_TOKEN_BYTES}" for f in fields)
    return [
        f"DELETE FROM {fts}_vocab",
        f"CREATE VIRTUAL TABLE temp.{fts}_terms USING fts5vocab(main, {fts}, row)",
        f"INSERT INTO {fts}_vocab(term, docs) SELECT term, doc FROM temp.{fts}_terms "
        f"WHERE length(CAST(term AS BLOB)) < {MAX_TOKEN_BYTES}",
        f"DROP TABLE temp.{fts}_terms",
        f"INSERT INTO {fts}_vocab(term, docs) SELECT j.value, count(*) FROM {table_name} AS t, "
        f"json_each(lakeline_tokens({cols})) AS j WHERE ({long_rows}) "
        f"AND length(CAST(j.value AS BLOB)) >= {MAX_TOKEN_BYTES} GROUP BY j.value",
    ]


def _varints(blob: bytes) -> list[int]:
    """SQLite's varints (FTS5's averages record): 7 bits a byte, high bit set to go on, the
    ninth byte whole."""
    out, i = [], 0
    while i < len(blob):
        value = 0
        for n in range(9):
            byte = blob[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        out.append(value)
    return out


def _averages(session: Any, fts: str) -> tuple[int, float]:
    """The rows FTS5 indexes and their average length in tokens, as bm25() reads them."""
    blob = session.execute(text(f"SELECT block FROM {fts}_data WHERE id = 1")).scalar()
    numbers = _varints(bytes(blob or b""))
    rows, tokens = (numbers[0], sum(numbers[1:])) if numbers else (0, 0)
    return rows, (tokens / rows if rows else 1.0)


def _quoted(phrase: Sequence[str]) -> str:
    return '"' + " ".join(phrase) + '"'  # tokens hold no quote: FTS5 reads a quote as a separator


def _upper(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (None: none exists)."""
    last = ord(prefix[-1]) + 1
    last = 0xE000 if 0xD800 <= last < 0xE000 else last  # no surrogate is UTF-8
    return None if last > 0x10FFFF else prefix[:-1] + chr(last)


def vocab_pool(session: Any, model: type[Any], query: str, pool: int) -> RankedPool | None:
    """The pool of a limited search over whole tokens (see the module doc): a `RankedPool`, or
    None when the prefix pool must rank (no vocabulary, or every word's tokens in few rows)."""
    name, fields = model.__table__.name, search_fields(model)
    fts, vocab = f"{name}_fts", f"{name}_fts_vocab"
    phrases = [tuple(_tokens(term)) for term in words(query)]
    if not fields or not phrases or not all(phrases):
        return None
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :v"
    if not _fetch(session, sql, {"v": vocab}):
        return None
    groups: list[list[tuple[str, int]] | None] = []  # per word: its whole tokens, None: many
    ors: list[str | None] = []  # per word: its FTS5 term, None: checked in Python
    held: list[int | None] = []  # per word: the sum of its tokens' counts, when read
    for phrase in phrases:
        upper = _upper(phrase[-1])
        if upper is None:
            return None
        found = _fetch(
            session,
            f"SELECT term, docs FROM {vocab} WHERE term >= :lo AND term < :hi ORDER BY term "
            "LIMIT :n",
            {"lo": phrase[-1], "hi": upper, "n": SCAN_TERMS + 1},
        )
        if not found:  # no row holds a token with this prefix: nothing matches
            return RankedPool("[]", exact=True)
        counted = sum(d for _, d in found) if len(found) <= SCAN_TERMS else None
        held.append(counted)
        if len(found) <= MAX_TERMS:
            groups.append([(t, d) for t, d in found])
            ors.append("(" + " OR ".join(_quoted((*phrase[:-1], t)) for t, _ in found) + ")")
        else:  # rare tokens: FTS5's prefix term merges few rows; else their cover, or
            groups.append(None)  # checked in Python
            rare = counted is not None and counted <= COUNT_ROWS
            cover = None if rare or counted is None else _cover(phrase, found)
            ors.append(_quoted(phrase) + "*" if rare else cover)
    if all(counted is not None and counted <= PREFIX_ROWS for counted in held):
        return None  # few rows hold each prefix: FTS5's prefix query and bm25() cost little
    quote = _preparer("sqlite").quote  # a field named as a keyword (`order`)
    columns = ", ".join(f"t.{quote(f)}" for f in fields)
    merged = [False] * len(phrases)  # per word: its FTS5 prefix term merges every row
    checked = None
    if any(q is None for q in ors):
        narrow = " AND ".join(q for q in ors if q is not None)
        checked = _checked(session, name, fts, columns, narrow, phrases, pool)
        if checked is None:  # too sparse to check: FTS5 merges those words' rows (only theirs)
            merged = [q is None for q in ors]
            ors = [_quoted(p) + "*" if q is None else q for p, q in zip(phrases, ors, strict=True)]
    if checked is None:
        ids = session.execute(
            text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :q ORDER BY rowid DESC LIMIT :n"),
            {"q": " AND ".join(q for q in ors if q is not None), "n": pool},
        ).scalars()
        rows = _fetch(
            session,
            f"SELECT t.id, {columns} FROM json_each(:ids) AS p JOIN {name} AS t ON t.id = p.value",
            {"ids": json.dumps(list(ids))},
        )
        exact = len(rows) < pool
    else:
        rows, exact = checked
    total, average = _averages(session, fts)
    idf = [1.0]  # one word: a constant factor of every score
    if len(phrases) > 1:
        idf = _idf(session, fts, total, phrases, groups, ors, held, merged)
    scores = _bm25(rows, phrases, groups, idf, average)
    return RankedPool(json.dumps(sorted(scores, key=lambda id_: (scores[id_], -id_))), exact)


def _cover(phrase: tuple[str, ...], found: list[Any]) -> str | None:
    """A word of many tokens, some common: an OR of FTS5 terms matching exactly its tokens
    (`found`: every token starting with its last token, sorted), each common token whole and
    the rare ones as prefix terms of the longest prefixes holding no common token (`q` ->
    `"qc" OR "qb"* OR "qk"* ...`: no merge of `qc`'s rows). None: more than `MAX_TERMS` terms,
    or prefix terms of more than `MERGE_ROWS` rows (the Python check reads the newest rows)."""
    head = phrase[:-1]
    out: list[str] = []
    merged = 0  # rows the prefix terms make FTS5 merge
    stack = [list(found)]  # groups of tokens sharing a prefix, in reverse order
    while stack and len(out) <= MAX_TERMS:
        tokens = stack.pop()
        prefix = os.path.commonprefix([tokens[0][0], tokens[-1][0]])  # noqa: RUF071 (of all: sorted)
        if len(tokens) == 1:
            out.append(_quoted((*head, prefix)))
        elif sum(d for _, d in tokens) <= COUNT_ROWS:
            out.append(_quoted((*head, prefix)) + "*")
            merged += sum(d for _, d in tokens)
        else:
            if tokens[0][0] == prefix:  # the prefix is itself a token (sorted first)
                out.append(_quoted((*head, prefix)))
                tokens = tokens[1:]
            at = len(prefix)
            groups = [list(g) for _, g in itertools.groupby(tokens, key=lambda t: t[0][at])]
            stack.extend(reversed(groups))
    if stack or len(out) > MAX_TERMS or merged > MERGE_ROWS:
        return None
    return "(" + " OR ".join(out) + ")"


def _checked(
    session: Any,
    name: str,
    fts: str,
    columns: str,
    narrow: str,
    phrases: list[tuple[str, ...]],
    pool: int,
) -> tuple[list[Any], bool] | None:
    """A word of many tokens: the newest `pool` candidates (rows matching `narrow`, the other
    words; or the table's rows) holding every word, checked in Python, and whether they are
    every match; None when `CHECK_ROWS` candidates gave fewer, or will at the rate so far."""
    if narrow:
        source = (
            f"SELECT t.id, {columns} FROM {fts} JOIN {name} AS t ON t.id = {fts}.rowid "
            f"WHERE {fts} MATCH :q AND {fts}.rowid < :below ORDER BY {fts}.rowid DESC LIMIT :n"
        )
    else:
        source = f"SELECT t.id, {columns} FROM {name} AS t WHERE t.id < :below "
        source += "ORDER BY t.id DESC LIMIT :n"
    found: list[Any] = []
    below, seen = 2**63 - 1, 0
    patterns = [_pattern(p) for p in phrases]
    while seen < CHECK_ROWS:
        n = min(CHUNK, CHECK_ROWS - seen)
        chunk = _fetch(session, source, {"q": narrow, "below": below, "n": n})
        for row in chunk:
            joined = "\x00".join(str(v) for v in row[1:] if v is not None).lower()
            if joined.isascii():  # ASCII: FTS5's tokens are runs of [0-9a-z], lower-cased
                held = all(pattern.search(joined) for pattern in patterns)
            else:
                tokens = [_tokens(value) for value in row[1:]]
                held = all(any(_count(t, p) for t in tokens) for p in phrases)
            if held:
                found.append(row)
                if len(found) == pool:
                    return found, False
        seen += len(chunk)
        if len(chunk) < n:  # every candidate seen: these are every match
            return found, True
        if len(found) * CHECK_ROWS < pool * seen:  # at this rate the budget finds too few
            return None
        below = chunk[-1][0]
    return None


def _pattern(phrase: tuple[str, ...]) -> re.Pattern[str]:
    """`phrase` in lower-cased ASCII text whose fields are joined by NUL: its tokens in a row
    within one field, the first starting a token, the last a prefix."""
    return re.compile("(?<![0-9a-z])" + "[^0-9a-z\x00]+".join(map(re.escape, phrase)))


def _fetch(session: Any, sql: str, params: dict[str, Any]) -> list[Any]:
    """The rows of `sql` as the driver gives them (tuples: many rows, no result objects); its
    errors as SQLAlchemy's statements give them (a damaged file: `DatabaseCorrupted`)."""
    connection = session.connection()
    try:
        return list(connection.connection.driver_connection.execute(sql, params).fetchall())
    except sqlite3.Error as exc:
        error = DBAPIError.instance(sql, params, exc, sqlite3.Error)
        raise (translate(error, connection.engine, sql) or error) from exc


def _count(tokens: list[str], phrase: tuple[str, ...]) -> int:
    """How often `phrase` occurs in `tokens`, its last token a prefix (FTS5's `"a b"*`)."""
    n = len(phrase)
    head, last = phrase[:-1], phrase[-1]
    return sum(
        1
        for i in range(len(tokens) - n + 1)
        if tokens[i + n - 1].startswith(last) and tuple(tokens[i : i + n - 1]) == head
    )


def _idf(
    session: Any,
    fts: str,
    total: int,
    phrases: list[tuple[str, ...]],
    groups: list[list[tuple[str, int]] | None],
    ors: list[str | None],
    held: list[int | None],
    merged: list[bool],
) -> list[float]:
    """Each word's IDF as bm25 computes it: its rows are the vocabulary's count of one whole
    token, FTS5's count when its tokens' counts sum to at most `COUNT_ROWS`, all the rows when
    one token is in half the rows (bm25's floor either way); else estimated (the sum, or half
    the rows for a word of more tokens than read)."""
    out = []
    for phrase, group, q, counted, merge in zip(phrases, groups, ors, held, merged, strict=True):
        if group is not None and len(phrase) == 1 and len(group) == 1:
            rows = group[0][1]
        elif q is not None and (merge or (counted is not None and counted <= COUNT_ROWS)):
            rows = session.execute(
                text(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH :q"), {"q": q}
            ).scalar_one()
        elif group is not None and len(phrase) == 1 and max(d for _, d in group) * 2 >= total:
            rows = total  # in half the rows or more: bm25's floor, whatever the union's count
        elif counted is not None:
            rows = min(counted, total)  # estimated: an upper bound
        else:
            rows = total // 2 + 1  # estimated: more tokens than read, taken as half the rows
        idf = math.log((total - rows + 0.5) / (rows + 0.5))
        out.append(idf if idf > 0.0 else 1e-6)
    return out


def _bm25(
    rows: Sequence[Sequence[Any]],
    phrases: list[tuple[str, ...]],
    groups: list[list[tuple[str, int]] | None],
    idf: list[float],
    avgdl: float,
) -> dict[int, float]:
    """FTS5's bm25() of each `(id, *fields)` row, its arithmetic in its order (k1 1.2, b 0.75,
    every field weighted 1; lower is better), each word's last token a prefix (`groups`: the
    whole tokens it stands for, None: too many to list)."""
    k1, b = 1.2, 0.75
    single = all(len(phrase) == 1 for phrase in phrases)  # no phrase spans two fields
    terms = [None if group is None else [t for t, _ in group] for group in groups]
    scores = {}
    for row in rows:
        if single:  # the fields' tokens as one list: a token never spans a separator
            fields = [_tokens(" ".join(str(v) for v in row[1:] if v is not None))]
        else:
            fields = [_tokens(value) for value in row[1:]]
        length = sum(map(len, fields))
        score = 0.0
        for weight, phrase, listed in zip(idf, phrases, terms, strict=True):
            if single and listed is not None:
                freq = float(sum(map(fields[0].count, listed)))
            else:
                freq = float(sum(_count(tokens, phrase) for tokens in fields))
            score += weight * ((freq * (k1 + 1.0)) / (freq + k1 * (1 - b + b * length / avgdl)))
        scores[row[0]] = -1.0 * score
    return scores
