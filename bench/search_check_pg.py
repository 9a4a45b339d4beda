"""PostgreSQL: what `lakeline.search_pg.pg_pool` gives in a kept `bench/scale.py` catalog.

    uv run --frozen python bench/search_check_pg.py /tmp/pgpair/fill --queries 10

For each query (rare words, common words and prefixes, pairs, common word + letter, the old
prefixes of `search_old_prefix` and every prefix of `sample00123` and `reads_4`): the limited
search's top 20 against the exhaustive top 20, and for a word of no common token against the
rule computed here apart, in plain SQL: ts_rank over the first `pool` matches in storage order
(`ORDER BY ctid`) plus the matches among the newest 20 x pool rows (those alone when 20 of them
are there). `count()` must equal the unlimited search's length. Prints figures; asserts nothing
about time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

POOL, LIMIT = 1000, 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("keep", help="a bench/scale.py --keep folder with a PostgreSQL fill")
    parser.add_argument("--queries", type=int, default=10)
    args = parser.parse_args()
    keep = Path(args.keep)
    import scale_fill

    instance, server = scale_fill.open_instance("postgresql", keep, print, existing=True)
    try:
        check(instance, json.loads((keep / "state-postgresql.json").read_text())["artifacts"], args)
    finally:
        if server is not None:
            server.stop()


def check(instance: object, n: int, args: argparse.Namespace) -> None:
    import lakeline as ll
    from lakeline.search import _tsquery, words
    from lakeline.search_pg import pg_words
    from sqlalchemy import text

    A = ll.Artifact
    q, v = workload.queries(n, args.queries), workload.VOCABULARY
    queries = [*dict.fromkeys(q.rare_words), *v[:5], "seq", "spec", "tum", "norm"]
    queries += [f"{v[j % 5]} {v[5 + j * 7 % 30]}" for j in range(5)]
    queries += [f"{v[j % 5]} {r}" for j, r in enumerate(q.rare_words[:5])]
    queries += ["sequencing q", "tumor r", "reads_4", "counts_3", "aligned_2", "raw sample00"]
    queries += ["sample00123"[:k] for k in range(1, 12)] + ["reads_4"[:k] for k in range(4, 8)]
    window = f"id > (SELECT max(id) FROM artifacts) - {20 * POOL}"
    print(f"{'query':<24}{'path':>10}{'= exhaustive':>14}{'= rule':>8}{'count ok':>10}{'ms':>8}")
    for query in dict.fromkeys(queries):
        began = time.perf_counter()
        top = [a.id for a in A.search(query, limit=LIMIT)]
        took = (time.perf_counter() - began) * 1e3
        exhaustive = [a.id for a in A.search(query, limit=LIMIT, exhaustive=True)]
        counted = A.search(query).count() == len(A.search(query, limit=None).all())
        with instance.sessions.read() as session:  # type: ignore[attr-defined]
            few = pg_words(session, A, query, "postgresql", pooled=True).few
            rule = "-"
            if few:
                rank = "ts_rank(search_vector, to_tsquery('simple', :q))"
                scored = f"SELECT id, {rank} FROM artifacts"
                match = "search_vector @@ to_tsquery('simple', :q)"
                params = {"q": _tsquery(words(query)), "n": POOL}
                first = session.execute(
                    text(f"{scored} WHERE {match} ORDER BY ctid LIMIT :n"), params
                ).all()
                newest = session.execute(
                    text(f"{scored} WHERE {match} AND {window} ORDER BY id DESC LIMIT :n"), params
                ).all()
                pool = dict(newest) if len(newest) >= LIMIT else dict(first) | dict(newest)
                expected = sorted(pool, key=lambda id_: (-pool[id_], -id_))[:LIMIT]
                rule = "yes" if top == expected else "NO"
        path = "first" if few else "window"
        print(
            f"{query[:23]:<24}{path:>10}{top == exhaustive!s:>14}{rule:>8}{counted!s:>10}"
            f"{took:8.1f}"
        )


if __name__ == "__main__":
    main()
