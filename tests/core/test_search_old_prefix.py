"""A prefix standing for many rare tokens that only older records hold (`sample00` before 400k
numbered names at 1M artifacts): on PostgreSQL a limited search ranked every match when the
newest rows held fewer than asked for (0.1-0.6 s at 1M); it now ranks the first `pool` matches
in storage order, with the newest rows' matches (`lakeline.search_pg.pg_pool`). Fewer matches
than the pool: the exhaustive answer. count() and an unlimited search see every match."""

from __future__ import annotations

from pathlib import Path

import lakeline as ll
import pytest
from lakeline.instance import Instance
from sqlalchemy import text
from statements import recorded
from test_search_whole_words import _artifacts

OLD = 25  # zsample0000 ... zsample0024, the oldest records


@pytest.fixture
def old_names(instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    """25 old records with numbered names, then 40 newer ones holding none; pool 10 (limit 1),
    the newest 20 rows its window; ANALYZE (PostgreSQL reads the column's statistics)."""
    from lakeline import query, search, search_pg

    monkeypatch.setattr(query, "SEARCH_POOL", 5)  # pool = max(5, 10 x limit)
    for module in (search, search_pg):
        monkeypatch.setattr(module, "POOL_WINDOW", 2)
    old = [(f"raw/zsample{i:04d}/reads", "sequencing run") for i in range(OLD)]
    new = [(f"new/n{i:02d}", "sequencing reads of a sample") for i in range(40)]
    _artifacts(tmp_path, [*old, *new])
    if instance.dialect == "postgresql":
        with instance.engine.begin() as conn:  # only the frequent tokens are common (as
            # in a large catalog; a small one's statistics list every token)
            conn.execute(text("ALTER TABLE artifacts ALTER COLUMN search_vector SET STATISTICS 1"))
            conn.execute(text("ANALYZE artifacts"))
    return instance


def _keys(query: str, **kwargs: object) -> list[str]:
    return [a.key or "" for a in ll.Artifact.search(query, **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize("query", ["zsample00", "sequencing zsample00", "zsample00 run"])
def test_an_old_prefix_ranks_the_first_matches_on_postgresql(
    old_names: Instance, query: str
) -> None:
    every = _keys(query, limit=None)
    assert len(every) == ll.Artifact.search(query).count() == OLD  # every match, both DBs
    with recorded(old_names.engine) as seen:
        top = _keys(query, limit=1)
    if old_names.dialect == "sqlite":  # the newest matches (lakeline.search_vocab)
        assert top == every[:1] == ["raw/zsample0024/reads"]
        return
    # equal ranks, newest first, over the first 10 stored: before, over all 25 (zsample0024)
    assert top == ["raw/zsample0009/reads"]
    ranked = [sql for sql, _ in seen if "ts_rank" in sql]
    assert len(ranked) == 1 and ranked[0].startswith("WITH head"), ranked  # one bounded read


def test_fewer_matches_than_the_pool_rank_as_every_match(old_names: Instance) -> None:
    for query in ("zsample002", "zsample0013", "sequencing zsample002"):
        assert _keys(query, limit=1) == _keys(query, limit=1, exhaustive=True)
        assert _keys(query, limit=3) == _keys(query, limit=None)[:3]


def test_the_newest_rows_matches_join_the_pool(old_names: Instance, tmp_path: Path) -> None:
    (tmp_path / "more").mkdir()
    _artifacts(tmp_path / "more", [("late/zsample0099", "sequencing run")])
    assert _keys("zsample00", limit=1) == ["late/zsample0099"]
    assert len(_keys("zsample00", limit=None)) == ll.Artifact.search("zsample00").count() == 26


def test_a_pooled_search_the_server_stops_raises_the_servers_error(old_names: Instance) -> None:
    """The server stopping `pg_pool`'s statement (here: a lock it may not wait for) is the
    error raised, not a later "current transaction is aborted" (the setting's reset ran in
    the failed transaction; set_config(..., true) ends with the transaction anyway)."""
    if old_names.dialect == "sqlite":
        assert _keys("zsample00", limit=1)  # readers do not wait for a lock on SQLite
        return
    from sqlalchemy import event
    from sqlalchemy.exc import DBAPIError

    def no_lock_wait(dbapi_connection: object, record: object) -> None:
        with dbapi_connection.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SET lock_timeout = '100ms'")
        dbapi_connection.commit()  # type: ignore[attr-defined]

    old_names.engine.dispose()
    event.listen(old_names.engine, "connect", no_lock_wait)
    try:
        with old_names.engine.connect() as other, other.begin():
            other.execute(text("LOCK TABLE artifacts IN ACCESS EXCLUSIVE MODE"))
            with pytest.raises(Exception) as raised:
                _keys("zsample00", limit=1)
    finally:
        event.remove(old_names.engine, "connect", no_lock_wait)
        old_names.engine.dispose()
    cause = raised.value if isinstance(raised.value, DBAPIError) else raised.value.__cause__
    assert "lock timeout" in str(raised.value) + str(cause), repr(raised.value)
    assert "transaction is aborted" not in str(raised.value), repr(raised.value)
    assert _keys("zsample00", limit=1) == ["raw/zsample0009/reads"]  # and the next one works
