"""SQLite: a word held by at least a pool's worth of records fills the pool from its whole-word
matches, ranked in Python with bm25's formula; a rarer word keeps the prefix pool ranked by
bm25. PostgreSQL's pool is unchanged (prefix matches among the newest rows, ts_rank)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.instance import Instance
from lakeline.search import _rank_pool, _tokens, whole_word_pool
from sqlalchemy import text
from statements import recorded


def _artifacts(tmp_path: Path, described: list[tuple[str, str | None]]) -> None:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    artifacts = []
    for i, (key, description) in enumerate(described):
        path = folder / f"f{i:03d}"
        path.write_text(f"content {i}")
        artifacts.append(ll.Artifact(path, key=key, description=description))
    ll.save(artifacts)


@pytest.fixture
def common_read(instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    """25 older records holding the whole word `read` in a longer text, then 3 newer ones
    holding only `reads` (the best bm25 matches of `read*`: a short text). Pool 20."""
    from lakeline import query

    monkeypatch.setattr(query, "SEARCH_POOL", 5)  # pool = max(5, 10 x limit) = 20 for limit 2
    whole = [(f"w/{i:02d}", "read me later on a slow day please") for i in range(25)]
    _artifacts(tmp_path, [*whole, *((f"reads{i}", None) for i in range(3))])
    return instance


def test_a_common_word_pools_its_whole_word_matches(common_read: Instance) -> None:
    found = [a.key for a in ll.Artifact.search("read", limit=2)]
    if common_read.dialect == "sqlite":  # 25 records hold `read` whole: the pool is theirs
        assert found == ["w/24", "w/23"]  # equal scores: newest first
    else:  # PostgreSQL: the newest prefix matches, ranked by ts_rank
        assert all(key.startswith("reads") for key in found)
    # every match, ranked: the prefix still finds `reads`, and ranks it first
    ranked = [a.key for a in ll.Artifact.search("read", limit=2, exhaustive=True)]
    assert all(key.startswith("reads") for key in ranked)
    assert ll.Artifact.search("read", limit=2).count() == 28  # counting is never bounded
    # a filter the pool's members miss: the search runs again over every (prefix) match
    assert ll.Artifact.search("read", limit=2).filter(key__startswith="reads").count() == 3
    other = ll.Artifact.search("read", limit=2).filter(key__startswith="reads").all()
    assert len(other) == 2 and all(a.key.startswith("reads") for a in other)


def test_a_word_fewer_records_hold_whole_keeps_the_prefix_pool(common_read: Instance) -> None:
    """`rea` is no record's whole word, `slow` is 25's (more than the pool of 20 for limit
    2, fewer than the pool of 1000 for limit 20): both rank the newest prefix matches."""
    assert {a.key for a in ll.Artifact.search("rea", limit=2)} <= {"reads0", "reads1", "reads2"}
    assert len(ll.Artifact.search("slow", limit=20).all()) == 20
    # a full prefix pool whose members a filter discards: the search runs over every match
    assert [a.key for a in ll.Artifact.search("sl", limit=2).filter(key="w/00")] == ["w/00"]
    assert [a.key for a in ll.Artifact.search("slow", limit=30)] == [
        a.key for a in ll.Artifact.search("slow", limit=30, exhaustive=True)
    ]


def test_a_common_word_runs_no_prefix_term_and_no_bm25(common_read: Instance) -> None:
    """At 10M artifacts a prefix term made FTS5 merge every row holding a token with that
    prefix (~0.4 s) and bm25() counted every row holding the word (~0.16 s) before the pool's
    first row: a whole-word pool does neither."""
    if common_read.dialect != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    with recorded(common_read.engine) as seen:
        assert len(ll.Artifact.search("read", limit=2).all()) == 2
    assert seen and not any("bm25(" in sql for sql, _ in seen)
    matched = [str(p) for sql, params in seen if "MATCH" in sql for p in params]
    assert matched and not any("*" in p for p in matched), matched


def test_a_pool_holding_every_match_is_the_answer(common_read: Instance) -> None:
    """SQLite: fewer matches than the pool and fewer than the limit: the pool held every
    match, so the search does not rank every match again (before: a second, exhaustive
    query, linear for a common word paired with a rare one)."""
    if common_read.dialect != "sqlite":
        pytest.skip("PostgreSQL's pool is a window of the newest rows: it may miss matches")
    with recorded(common_read.engine) as statements:
        found = [a.key for a in ll.Artifact.search("reads", limit=20)]
    seen = [sql for sql, _ in statements]
    assert found == [a.key for a in ll.Artifact.search("reads", limit=20, exhaustive=True)]
    assert sorted(found) == ["reads0", "reads1", "reads2"]
    assert not any("ORDER BY bm25(" in sql for sql in seen), seen


def test_a_whole_word_pool_ranks_as_bm25_does(instance: Instance) -> None:
    """When the pool holds every record of the registry, its average length is the table's:
    the Python ranking of a one-word pool gives bm25's exact order."""
    if instance.dialect != "sqlite":
        pytest.skip("bm25 is FTS5's; PostgreSQL ranks its pool with ts_rank as before")
    names = [f"{'sample ' * (1 + i % 3)}{'filler ' * (i * 7 % 5)}x{i}" for i in range(30)]
    ll.save([ll.ULabel(name=name.strip(), description="a label" * (i % 2)) for i, name in
             enumerate(names)])  # fmt: skip
    exact = [x.id for x in ll.ULabel.search("sample", limit=None)]  # every match, bm25
    with instance.sessions.read() as session:
        pool = whole_word_pool(session, ll.ULabel, "sample", 30)
        assert pool is not None and whole_word_pool(session, ll.ULabel, "sample", 31) is None
    assert json.loads(pool.ids) == exact
    with instance.sessions.read() as session:
        rows = session.execute(text("SELECT id, name, synonyms, abbr, description FROM ulabels"))
        scores = _rank_pool(rows.all(), [("sample",)], [1.0])
    assert len(set(scores.values())) > 5  # the order is decided by the scores, not ties


def test_multi_word_pool_weights_the_rarer_word(instance: Instance, monkeypatch: Any) -> None:
    """Two words held together by a pool's worth: each word's IDF comes from the newest rows;
    a record repeating the rarer word ranks above one repeating the word nearly all hold."""
    from lakeline import query

    if instance.dialect != "sqlite":
        pytest.skip("ts_rank (PostgreSQL) weighs no word by its rarity")
    monkeypatch.setattr(query, "SEARCH_POOL", 5)
    names = [f"alpha beta {i}" for i in range(25)] + [f"alpha {i}" for i in range(60)]
    names += ["alpha beta beta beta z", "alpha alpha alpha beta z"]
    ll.save([ll.ULabel(name=n) for n in names])
    found = [x.name for x in ll.ULabel.search("alpha beta", limit=2)]
    assert found[0] == "alpha beta beta beta z"


@pytest.mark.parametrize(
    "text",
    [
        "Café_déjà-vu ÆON",
        "x²y ﬁne",
        "naïve Ünïcode 東京 data_2024-01",
        "İstanbul straße",
        "",
        "5 µl, 5 μl",  # the micro sign: FTS5 folds it to the Greek mu
        "Việt Nam tiếng",  # two diacritics: FTS5 (remove_diacritics=1) keeps them
        "أحمد إبراهيم",  # Arabic hamza: FTS5 keeps it
        "ᾀ \u017f ǖ",  # prosgegrammeni, long s, u with two diacritics
        "q\u0305q a \u0301 b",  # a combining overline parts a token, an acute alone is none
        "data\U0001f9ecset \ue000x 한국어",  # an emoji newer than FTS5's tables, private use
    ],
)
def test_tokens_are_fts5s(text: str) -> None:
    """The tokens the Python ranking counts are the ones FTS5's unicode61 tokenizer made."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    db.execute("INSERT INTO t VALUES (?)", (text,))
    fts5 = [term for (term,) in db.execute("SELECT term FROM v ORDER BY offset")]
    assert _tokens(text) == fts5


def test_a_folded_character_ranks_as_bm25_does(instance: Instance, monkeypatch: Any) -> None:
    """FTS5 reads the micro sign as the Greek mu, so `µl` matches both spellings; the Python
    ranking of the pool must count both too (it counted the Greek one as no match: last)."""
    from lakeline import query

    if instance.dialect != "sqlite":
        pytest.skip("FTS5's tokenizer: PostgreSQL's pool is ranked by ts_rank")
    monkeypatch.setattr(query, "SEARCH_POOL", 5)  # pool = 20 for limit 2
    names = [f"5 \u00b5l sample {i:02d}" for i in range(25)]  # the micro sign
    names += [f"5 \u03bcl sample {i:02d}" for i in range(25, 28)]  # the Greek mu, newest
    ll.save([ll.ULabel(name=n) for n in names])
    exact = [x.name for x in ll.ULabel.search("\u00b5l", limit=2, exhaustive=True)]
    assert exact == ["5 \u03bcl sample 27", "5 \u03bcl sample 26"]  # ties: newest first
    assert [x.name for x in ll.ULabel.search("\u00b5l", limit=2)] == exact
