"""SQLite: what the whole-word pool changes in a kept `bench/scale.py` catalog's search results.

    uv run --frozen python bench/search_check.py /tmp/lakeline-scale-sqlite --queries 20

Rare words (fewer whole-word matches than the pool): the results are compared with the prefix
pool ranked by bm25 (what every search ran before); they must be the same. Prefixes that are no
common whole word and common words paired with rare ones (read through the vocabulary,
`lakeline.search_vocab`): the whole ranked pool is compared with the prefix pool FTS5 ranks by
bm25; they must be the same. Common words and
pairs of them: the top 20 of the Python-ranked whole-word pool is compared with FTS5's own
bm25 order of the same pool (bm25 over exactly those records, its IDF and average length
from the whole table), and with the prefix pool's top 20 (which rows change). Prints figures;
asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("keep", help="a bench/scale.py --keep folder with a SQLite fill")
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    os.environ["LAKELINE_HOME"] = str(Path(args.keep) / "home")
    os.environ["LAKELINE_LOAD_PLUGINS"] = ""
    import lakeline as ll
    import lakeline.instance as li
    from lakeline.search import whole_word_pool
    from sqlalchemy import select, text

    instance = li.connect("scale_sqlite")
    n = json.loads((Path(args.keep) / "state-sqlite.json").read_text())["artifacts"]
    q = workload.queries(n, args.queries)
    A = ll.Artifact
    same = 0
    rare = sorted(set(q.rare_words))
    for word in rare:
        query = A.search(word).limit(20)
        with instance.sessions.read() as session:
            prefix = [a.id for a in session.scalars(query._statement(select(A), pool=1000))]
        same += [a.id for a in query] == prefix
    print(f"rare words: {same} of {len(rare)} give the prefix pool's bm25 results")
    vocabulary_check(instance, q)
    v = workload.VOCABULARY
    common = [*v[:5], *(f"{v[i]} {v[j]}" for i, j in ((0, 1), (0, 5), (2, 9), (4, 20), (1, 30)))]
    print(
        f"{'query':<22}{'pool':>6}{'top20 = bm25':>14}{'overlap':>9}{'vs prefix':>11}"
        f"{'py ms':>8}{'bm25 ms':>9}"
    )
    for words in common:
        with instance.sessions.read() as session:
            began = time.perf_counter()
            pool = whole_word_pool(session, A, words, 1000)
            ours = time.perf_counter() - began
            if pool is None:
                print(f"{words:<22} fewer whole-word matches than the pool")
                continue
            ids = json.loads(pool.ids)
            began = time.perf_counter()
            scored = session.execute(
                text(
                    "SELECT rowid, bm25(artifacts_fts) FROM artifacts_fts WHERE artifacts_fts "
                    "MATCH :q AND rowid >= :low"
                ),
                {"q": " ".join(f'"{w}"' for w in words.split()), "low": min(ids)},
            ).all()
            members = set(ids)
            ranked = sorted((score, -id_) for id_, score in scored if id_ in members)
            bm25 = [-negative for _, negative in ranked[:20]]
            theirs = time.perf_counter() - began
            prefix = [a.id for a in session.scalars(
                A.search(words).limit(20)._statement(select(A), pool=1000)
            )]  # fmt: skip
        top = ids[:20]
        print(
            f"{words:<22}{len(ids):>6}{top == bm25!s:>14}"
            f"{len(set(top) & set(bm25)):>9}{len(set(top) & set(prefix)):>11}"
            f"{ours * 1e3:>8.1f}{theirs * 1e3:>9.1f}"
        )


def vocabulary_check(instance: Any, q: Any) -> None:
    """Prefixes and common + rare pairs: the vocabulary's ranked pool against FTS5's prefix
    pool ranked by bm25 (every member, in order)."""
    import lakeline as ll
    from lakeline.search_vocab import vocab_pool
    from sqlalchemy import text

    v = workload.VOCABULARY
    queries = ["seq", "spec", "tum", "norm", "sequenc", "rn", "qba", "sa", "q", "4937"]
    queries += ["sequencing q", "tumor 49"]  # a word of many tokens checked on another's rows
    queries += ["tumor q", "s"]  # a word of many tokens, some common: covered by FTS5 terms
    # many rare tokens only old rows hold (at 10M): FTS5 merges that word's rows alone
    queries += ["sample0", "sample00", "reads_4", "reads_4 sequencing"]
    rare = sorted(set(q.rare_words))
    queries += [f"{v[j % 5]} {word}" for j, word in enumerate(rare[:6])]  # common + rare
    queries += [f"{v[j % 5][:3]} {word[:5]}" for j, word in enumerate(rare[:3])]  # prefixes
    print(f"{'query':<26}{'pool':>6}{'exact':>7}{'= bm25':>8}{'ms':>8}{'bm25 ms':>9}")
    for words in queries:
        with instance.sessions.read() as session:
            began = time.perf_counter()
            pool = vocab_pool(session, ll.Artifact, words, 1000)
            ours = time.perf_counter() - began
            began = time.perf_counter()
            scored = session.execute(
                text(
                    "SELECT rowid, bm25(artifacts_fts) FROM artifacts_fts WHERE artifacts_fts "
                    "MATCH :q ORDER BY rowid DESC LIMIT 1000"
                ),
                {"q": " ".join(f'"{w}"*' for w in words.split())},
            ).all()
            theirs = time.perf_counter() - began
        bm25 = [id_ for id_, _ in sorted(scored, key=lambda row: (row[1], -row[0]))]
        if pool is None:
            print(f"{words:<26} the prefix pool ranks ({theirs * 1e3:.0f} ms)")
            continue
        ids = json.loads(pool.ids)
        print(
            f"{words:<26}{len(ids):>6}{pool.exact!s:>7}{ids == bm25!s:>8}"
            f"{ours * 1e3:>8.1f}{theirs * 1e3:>9.1f}"
        )


if __name__ == "__main__":
    main()
