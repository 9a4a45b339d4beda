"""A value with no truth value (pandas' NA, a numpy array) in a text column is passed over by
the text columns' checks, as each column's own check (`TextCheck`) passes over any value that
is not a text: the save fails as it did before the checks were grouped (the database driver
refuses to bind it, nothing saved), never with a TypeError or ValueError from a truth test
inside lakeline ("boolean value of NA is ambiguous")."""

from __future__ import annotations

from typing import Any

import lakeline as ll
import numpy as np
import pandas as pd
import pytest
from lakeline.instance import Instance
from lakeline.models.base import TextCheck, TextChecks
from sqlalchemy.exc import DBAPIError


@pytest.mark.parametrize("odd", [pd.NA, np.array(["a", "b"])], ids=["NA", "array"])
def test_checks_in_one_call_pass_over_a_value_without_a_truth_value(odd: Any) -> None:
    checks = [TextCheck(8), TextCheck(0)]
    TextChecks(checks)([[odd, "a"], ["b", None]])  # no error, as one by one:
    for check, values in zip(checks, [[odd, "a"], ["b", None]], strict=True):
        check(values)
    with pytest.raises(ll.errors.InvalidValue, match="at most 8"):  # a bad text still found
        TextChecks(checks)([[odd, "a" * 9], ["b", None]])


@pytest.mark.parametrize("odd", [pd.NA, np.array(["a", "b"])], ids=["NA", "array"])
def test_a_record_with_such_a_value_is_refused_by_the_database_as_before(
    instance: Instance, odd: Any
) -> None:
    label = ll.ULabel(name="truthless", description=odd)
    with pytest.raises(DBAPIError):
        ll.save([label])
    assert ll.ULabel.filter(name="truthless").count() == 0
