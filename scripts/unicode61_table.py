"""Write core/src/lakeline/search_unicode61.py: how SQLite's FTS5 unicode61 tokenizer reads every
code point, asked of SQLite itself (one row per code point in an in-memory FTS5 table, ~6 s).

Run from the repository: `uv run --frozen python scripts/unicode61_table.py`. The tables are
FTS5's own (Unicode 6.1, remove_diacritics 1), fixed since SQLite 3.9; the file is written again
only to change its form. PostgreSQL's search column is built from it (`lakeline.search`), so a
change to its content needs a migration that recreates the column.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lakeline.search import _cover, _escape

OUT = Path(__file__).resolve().parents[1] / "core/src/lakeline/search_unicode61.py"
WIDTH = 96


def read_all() -> dict[int, str | None]:
    """Each non-ASCII code point: its fold in a token ('' for a diacritic), None: a separator."""
    points = [c for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    db.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", ((c, f"q{chr(c)}q") for c in points))
    tokens: dict[int, list[str]] = {}
    for doc, term in db.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
        tokens.setdefault(doc, []).append(term)
    db.close()
    found = {c: tokens.get(c, []) for c in points}  # one token `q...q`: a token character
    return {c: t[0][1:-1] if len(t) == 1 else None for c, t in found.items()}


def lines(pieces: list[str], prefix: str) -> list[str]:
    """`pieces` joined into string literal lines of at most WIDTH characters."""
    out, line = [], ""
    for piece in pieces:
        if len(line) + len(piece) > WIDTH - 8:
            out.append(f'    {prefix}"{line}"')
            line = ""
        line += piece
    return [*out, f'    {prefix}"{line}"']


def main() -> None:
    read = read_all()
    ascii_separators = [c for c in range(1, 0x80) if not chr(c).isalnum()]
    separators = _cover(ascii_separators + [c for c, fold in read.items() if fold is None], gap=1)
    folded = [(c, fold) for c, fold in read.items() if fold is not None and fold != chr(c)]
    folded.sort(key=lambda item: (item[1] == "", item[0]))  # removed diacritics last
    assert all(len(fold) <= 1 for _, fold in folded)  # translate(): one character for one
    pairs = [f"({a:#x}, {b:#x}), " for a, b in separators]
    source = [_escape(c) for c, _ in folded]
    target = [_escape(ord(fold)) for _, fold in folded if fold]
    text = [
        '"""How SQLite\'s FTS5 unicode61 tokenizer (remove_diacritics 1) reads each code point,',
        "for PostgreSQL's search column (`lakeline.search`). Written by scripts/unicode61_table.py",
        'from SQLite\'s FTS5 itself: do not edit."""',
        "",
        "# every code point that separates tokens, as (first, last) ranges",
        "# fmt: off",
        "SEPARATORS = (",
        *(line.replace('"', "").rstrip() for line in lines(pairs, "")),
        ")",
        "# fmt: on",
        "# translate(text, FOLD_FROM, FOLD_TO): each token character FTS5 folds to another, the",
        "# last ones (diacritics FTS5 drops) beyond FOLD_TO's length, so translate() drops them",
        "FOLD_FROM = (",
        *lines(source, ""),
        ")",
        "FOLD_TO = (",
        *lines(target, ""),
        ")",
        "",
    ]
    OUT.write_text("\n".join(text))
    print(f"{OUT}: {len(separators)} separator ranges, {len(folded)} folds")


if __name__ == "__main__":
    main()
