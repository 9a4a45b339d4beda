"""SQLite: a search word's prefix is read as the whole tokens the table's vocabulary holds
(`lakeline.search_vocab`), so a prefix that is no common whole word, and a common word paired
with a rare one, no longer make FTS5 merge every row holding the prefix nor bm25() count every
row holding a word (both linear: 0.35-1.0 s and 0.54-0.62 s at 10M artifacts). The results
are the prefix pool's, ranked as bm25 ranked it. PostgreSQL's search is unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from alembic import command
from lakeline.db.migrate import alembic_config, migrating, upgrade
from lakeline.instance import Instance
from sqlalchemy import select, text
from statements import recorded

# 40 records: 'sequencing' whole in all, a few rare words, lengths that make scores differ
NAMES = [
    f"{'sequencing ' * (1 + i % 3)}{'run ' * (i * 7 % 5)}sample{i:02d}"
    + (" zebrafish" if i % 9 == 0 else "")
    + (" sequel" if i % 4 == 0 else "")
    for i in range(40)
]


@pytest.fixture
def labels(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> Instance:
    from lakeline import query, search_vocab

    monkeypatch.setattr(query, "SEARCH_POOL", 5)  # pool = 10 x limit
    # every word here is rare: read through the vocabulary all the same (at 10M, past 20k rows)
    monkeypatch.setattr(search_vocab, "PREFIX_ROWS", -1)
    ll.save([ll.ULabel(name=name, description="a label" * (i % 2)) for i, name in
             enumerate(NAMES)])  # fmt: skip
    return instance


def _statements(instance: Instance, search: Any) -> tuple[list[Any], list[tuple[str, Any]]]:
    with recorded(instance.engine) as seen:
        found = [x.id for x in search]
    return found, seen


def _prefix_pool(instance: Instance, query: str, limit: int, pool: int) -> list[int]:
    """What every search ran before: the newest `pool` prefix matches ranked by bm25()."""
    search = ll.ULabel.search(query, limit=limit)
    with instance.sessions.read() as session:
        return [x.id for x in session.scalars(search._statement(select(ll.ULabel), pool=pool))]


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("seq", 3),  # a prefix of a word all hold, itself no record's word: a full pool
        ("seq", 5),  # pool 50: more than the 40 matches, the exact answer
        ("sequel", 2),  # a whole word only 10 hold: pool of 20, full
        ("sequencing zebra", 3),  # a common word and a rare prefix: 5 matches, exact
        ("seq zebrafish", 20),
        ("seq sam", 3),  # two prefixes
        ("seq nothing", 3),  # no token starts with `nothing`
    ],
)
def test_a_prefix_is_read_as_whole_tokens(labels: Instance, query: str, limit: int) -> None:
    found, seen = _statements(labels, ll.ULabel.search(query, limit=limit))
    if labels.dialect != "sqlite":  # PostgreSQL: unchanged (prefix matches, ts_rank)
        assert set(found) <= {x.id for x in ll.ULabel.search(query, limit=None)}
        return
    assert found == _prefix_pool(labels, query, limit, 10 * limit)
    matched = [str(p) for sql, params in seen if "MATCH" in sql for p in params]
    assert matched and not any("*" in p for p in matched), matched  # no prefix merge
    assert not any("bm25(" in sql for sql, _ in seen)  # no count of every row holding a word
    exact = [x.id for x in ll.ULabel.search(query, limit=None)]  # every match, bm25
    if len(exact) < 10 * limit:
        assert found == exact[:limit]


def test_the_pool_ranks_as_bm25_does(labels: Instance) -> None:
    """The Python ranking uses FTS5's own row count and average length: the whole pool's
    order is bm25's, and decided by the scores (not by ties broken newest first)."""
    if labels.dialect != "sqlite":
        pytest.skip("bm25 is FTS5's")
    from lakeline.search_vocab import vocab_pool

    with labels.sessions.read() as session:
        pool = vocab_pool(session, ll.ULabel, "seq", 100)
        scores = session.execute(
            text(
                "SELECT rowid, bm25(ulabels_fts) FROM ulabels_fts WHERE ulabels_fts MATCH "
                "'\"seq\"*' ORDER BY bm25(ulabels_fts), rowid DESC"
            )
        ).all()
    assert pool is not None and pool.exact
    assert json.loads(pool.ids) == [id_ for id_, _ in scores]
    assert len({score for _, score in scores}) > 10


def test_a_word_of_many_tokens_is_checked_on_the_rows(
    labels: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More whole tokens than one query ORs (`sample00`..`sample39`): few rows hold them, so
    FTS5's prefix term merges them (cheap); many do, and the word is checked in Python on the
    other words' matches, or on the newest rows. Same results either way."""
    if labels.dialect != "sqlite":
        pytest.skip("FTS5's vocabulary")
    from lakeline import search_vocab

    monkeypatch.setattr(search_vocab, "MAX_TERMS", 3)
    queries = (("sam", 2), ("sam", 5), ("zebra sam", 3), ("sequel sample1", 1), ("sam seq", 2))
    for count_rows in (50_000, 0):  # the prefix term of a rare word; checked in Python
        monkeypatch.setattr(search_vocab, "COUNT_ROWS", count_rows)
        for query, limit in queries:
            found, seen = _statements(labels, ll.ULabel.search(query, limit=limit))
            assert found == _prefix_pool(labels, query, limit, 10 * limit), query
            assert not any("bm25(" in sql for sql, _ in seen)
            prefixed = any("*" in str(p) for sql, ps in seen if "MATCH" in sql for p in ps)
            assert prefixed == bool(count_rows), query
    # too sparse to check (`sample0` at 10M: only old rows hold it): FTS5's prefix term of that
    # word alone, ranked in Python (was the prefix pool of every word, and bm25() counting)
    monkeypatch.setattr(search_vocab, "CHECK_ROWS", 5)
    for query, limit in (("sample3", 1), ("sam", 2), ("sequencing sam", 2), ("sam zebra", 1)):
        found, seen = _statements(labels, ll.ULabel.search(query, limit=limit))
        assert found == _prefix_pool(labels, query, limit, 10 * limit), query
        assert not any("bm25(" in sql for sql, _ in seen), query
        matched = [str(p) for sql, ps in seen if "MATCH" in sql for p in ps]
        assert not any('"sequencing"*' in p for p in matched), matched  # a whole token


def test_a_word_of_many_tokens_some_common_is_covered_by_terms(
    labels: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word standing for more tokens than one query ORs, some of them common (`q` before
    `qc` and 500 rare words at 10M): an OR of its common tokens whole and prefix terms of the
    rare ones (`s` -> sequel, sequencing, `"sample0"*`...), no merge of a common token's rows
    and no check in Python. Same results as the prefix pool."""
    if labels.dialect != "sqlite":
        pytest.skip("FTS5's vocabulary")
    from lakeline import search_vocab

    monkeypatch.setattr(search_vocab, "MAX_TERMS", 8)  # `s`: 42 tokens
    monkeypatch.setattr(search_vocab, "COUNT_ROWS", 10)  # sequencing (40), sequel (10) common
    checked: list[str] = []
    monkeypatch.setattr(search_vocab, "_checked", lambda *args: checked.append(args[4]))
    for query, limit in (("s", 2), ("s", 5), ("zebra s", 3), ("sequel s", 2), ("s sa", 2)):
        found, seen = _statements(labels, ll.ULabel.search(query, limit=limit))
        assert found == _prefix_pool(labels, query, limit, 10 * limit), query
        assert not any("bm25(" in sql for sql, _ in seen), query
        matched = [str(p) for sql, ps in seen if "MATCH" in sql for p in ps]
        assert any('"sample0"* OR "sample1"*' in p for p in matched), matched
        assert not any(f'"{w}"*' in p for w in ("s", "sequencing") for p in matched), matched
        assert not checked, query
    monkeypatch.setattr(search_vocab, "MERGE_ROWS", 39)  # its prefix terms merge 40 rows
    found, _ = _statements(labels, ll.ULabel.search("s", limit=2))
    assert checked and found == _prefix_pool(labels, "s", 2, 20)  # checked in Python instead


def _vocabulary(instance: Instance, table: str) -> tuple[dict[str, int], dict[str, int]]:
    """The vocabulary, and the tokens and row counts of the FTS5 index itself."""
    with instance.engine.connect() as conn:
        kept = dict(conn.execute(text(f"SELECT term, docs FROM {table}_fts_vocab")).all())
        conn.execute(text(f"CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, {table}_fts, row)"))
        index = dict(conn.execute(text("SELECT term, doc FROM temp.v")).all())
        conn.execute(text("DROP TABLE temp.v"))
    return kept, index


def test_the_vocabulary_follows_inserts_updates_and_deletes(
    instance: Instance, tmp_path: Path
) -> None:
    if instance.dialect != "sqlite":
        pytest.skip("SQLite's vocabulary")
    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text(f"content {i}")
    ll.save([ll.Artifact(tmp_path / f"f{i}.txt", key=f"raw/f{i}.txt",
                         description=f"Über run {i % 2}") for i in range(6)])  # fmt: skip
    first = ll.Artifact.get(key="raw/f0.txt")
    first.description = "changed words here"
    first.save()
    ll.Artifact.get(key="raw/f5.txt").delete()
    kept, index = _vocabulary(instance, "artifacts")
    assert kept == index and kept["uber"] == 4 and kept["changed"] == 1
    assert "f5" not in kept  # a token no row holds any more is dropped
    assert [a.key for a in ll.Artifact.search("chang")] == ["raw/f0.txt"]
    assert ll.Artifact.search("f5", limit=5).all() == []


def test_a_catalog_at_0014_gets_its_vocabulary(instance: Instance, tmp_path: Path) -> None:
    """0015 fills each table's vocabulary from its FTS5 index and makes its triggers keep it;
    its downgrade drops it (and the search falls back to the prefix pool)."""
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")
    ll.save([ll.ULabel(name=name) for name in NAMES[:12]])
    if instance.dialect == "sqlite":
        with instance.engine.connect() as conn:
            made = text("SELECT count(*) FROM sqlite_master WHERE name LIKE '%fts_vocab'")
            assert conn.execute(made).scalar_one() == 0
        assert len(ll.ULabel.search("seq", limit=3).all()) == 3  # the prefix pool, as before
    upgrade(instance.engine)
    ll.save([ll.ULabel(name=name) for name in NAMES[12:20]])
    assert len(ll.ULabel.search("seq", limit=30).all()) == 20
    if instance.dialect == "sqlite":
        kept, index = _vocabulary(instance, "ulabels")
        assert kept == index and kept["sequencing"] == 20
        assert _vocabulary(instance, "artifacts")[0] == _vocabulary(instance, "artifacts")[1]


def test_a_folded_prefix_finds_its_tokens(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vocabulary holds FTS5's folded tokens ('Über' is 'uber'), and a query word is folded
    the same way; a key range's end is a character, never a surrogate. Words few rows hold
    keep the prefix pool (cheap for them); read through the vocabulary, the same results."""
    from lakeline import search_vocab
    from lakeline.search_vocab import _upper

    ll.save([ll.ULabel(name=n) for n in ("Über Zola", "über alles", "uberall", "naïve")])
    for rare in (20_000, -1):
        monkeypatch.setattr(search_vocab, "PREFIX_ROWS", rare)
        for query, names in (("Üb", {"Über Zola", "über alles", "uberall"}), ("NAÏ", {"naïve"})):
            found, seen = _statements(instance, ll.ULabel.search(query, limit=2))
            assert {x.name for x in ll.ULabel.search(query, limit=2)} <= names
            if instance.dialect == "sqlite":
                assert found == _prefix_pool(instance, query, 2, 1000)
                assert any("bm25(" in sql for sql, _ in seen) == (rare > 0)
    assert _upper("a\ud7ff") == "a\ue000" and _upper("ab") == "ac"
    assert _upper("\U0010ffff") is None


def test_tokens_longer_than_fts5_keeps_are_whole_in_the_vocabulary(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FTS5 keeps a token's first 32 KiB (FTS5_MAX_TOKEN_SIZE bytes, cut anywhere in a
    character), a query's too. The vocabulary holds such tokens whole, filled (0015 on a
    catalog that has them) as kept by the triggers: a fill from FTS5's index held 'ア' x 12000
    cut mid-character, and every search of a prefix of it failed to decode the term (a raw
    OperationalError); a longer query word found nothing; a deleted row's cut token stayed."""
    if instance.dialect != "sqlite":
        pytest.skip("SQLite's vocabulary")
    from lakeline import search_vocab

    monkeypatch.setattr(search_vocab, "PREFIX_ROWS", -1)  # read through the vocabulary
    cfg = alembic_config()
    with migrating(instance.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")
    long = {"kana": "ア" * 12_000, "ascii": "x" * 40_000, "short": "アイ x"}
    ll.save([ll.ULabel(name=name, description=text_) for name, text_ in long.items()])
    upgrade(instance.engine)  # filled from the FTS5 index
    ll.save([ll.ULabel(name="later", description="x" * 40_000)])  # kept by the triggers
    for query in ("ア", "x", "x" * 33_000, "ア" * 11_000):
        found = [x.id for x in ll.ULabel.search(query, limit=1)]
        assert found == _prefix_pool(instance, query, 1, 10), len(query)
    with instance.engine.begin() as conn:
        conn.execute(text("DELETE FROM ulabels WHERE name IN ('kana', 'ascii', 'later')"))
        kept = conn.execute(text("SELECT term, docs FROM ulabels_fts_vocab")).all()
    assert sorted(kept) == [("short", 1), ("x", 1), ("アイ", 1)]  # the one row left
