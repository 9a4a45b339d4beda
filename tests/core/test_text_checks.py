"""A row's text columns are checked in one call (`models.base.TextChecks`), not one call a
column: the same values refused, with the same error (the first bad column's, in the
columns' order), as each column's own check (`TextCheck`) refuses them."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lakeline as ll
import pytest
from lakeline.db.rows import insert_rows
from lakeline.errors import InvalidValue
from lakeline.instance import Instance
from lakeline.models import Artifact
from lakeline.models.base import TextCheck, TextChecks
from test_bulk_rows import _seed_row


def _error(check: Any, columns: list[list[Any]]) -> str | None:
    try:
        check(columns)
    except InvalidValue as exc:
        return str(exc)
    return None


def _one_by_one(checks: list[TextCheck]) -> Any:
    def check(columns: list[list[Any]]) -> None:
        for values, one in zip(columns, checks, strict=True):
            one(values)

    return check


@pytest.mark.parametrize("n", [1, 3])  # one row (a lone flush's), a few
@pytest.mark.parametrize(
    ("column", "bad", "said"),
    [
        ("stem", "s" * 13, "at most 12"),  # a short limit, longer texts in other columns
        ("uid", "u" * 17, "at most 16"),
        ("hash_type", "h" * 33, "at most 32"),
        ("description", "a\x00b", "NUL byte"),  # no limit
        ("kind", "k\udce9", "lone surrogate"),
    ],
)
def test_a_bad_text_in_any_column_of_a_row_is_refused_naming_it(
    instance: Instance, tmp_path: Path, column: str, bad: str, said: str, n: int
) -> None:
    table, row = _seed_row(tmp_path)
    rows = [
        {
            **row,
            "uid": f"t{i:011d}0000",
            "stem": f"t{i:011d}",
            "key": f"texts/{'long/' * 20}{i}.txt",  # longer than every short limit
            "store_key": f"texts/{'long/' * 20}{i}.txt",
        }
        for i in range(n)
    ]
    rows[n - 1][column] = bad
    with pytest.raises(InvalidValue, match=said) as raised, instance.sessions.write() as session:
        insert_rows(session, table, rows, unique="uid")
    assert repr(bad[:40])[1:-1] in str(raised.value)
    assert ll.Artifact.filter(key__startswith="texts/").count() == 0


def test_of_two_bad_columns_the_first_in_order_is_named(instance: Instance, tmp_path: Path) -> None:
    table, row = _seed_row(tmp_path)
    bad = {**row, "uid": "x" * 16, "stem": "y" * 12, "key": "two/bad.txt"}
    bad["suffix"] = "s" * 65  # before `stem` and `uid` among the columns, after `key`
    bad["version"] = "v\x00"
    names = [c.key for c in Artifact.__table__.columns]
    assert names.index("suffix") < names.index("version")
    with pytest.raises(InvalidValue, match="at most 64") as raised, instance.sessions.write() as s:
        insert_rows(s, table, [bad], unique="uid")
    assert "sss" in str(raised.value)


def test_checks_in_one_call_refuse_what_the_checks_one_by_one_refuse() -> None:
    """Random columns of texts, Nones and other values, good and bad: the same outcome."""
    pick = random.Random(19)
    pieces = ["a", "bc", "ü", "\x00", "\udce9", "🦆", "z" * 9, ""]
    for _ in range(3000):
        checks = [TextCheck(pick.choice([0, 1, 3, 8, 12])) for _ in range(pick.randint(2, 6))]
        rows = pick.randint(1, 3)
        columns: list[list[Any]] = []
        for _check in checks:
            values: list[Any] = []
            for _row in range(rows):
                kind = pick.random()
                if kind < 0.15:
                    values.append(None)
                elif kind < 0.2:
                    values.append(pick.choice([0, 7, b"x\x00", 1.5]))  # not a text: passed over
                else:
                    weights = [9, 9, 1, 0.3, 0.3, 1, 2, 1]
                    chosen = pick.choices(pieces, weights, k=pick.randint(0, 3))
                    values.append("".join(chosen))
            columns.append(values)
        assert _error(TextChecks(checks), columns) == _error(_one_by_one(checks), columns)
