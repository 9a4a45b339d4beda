"""Artifact-level feature values a curator saves with the data (`features={...}`): checked
against their features' dtypes and registries when the curator validates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lakeline.curators.problems import Problem

if TYPE_CHECKING:
    from lakeline.instance import Instance


def check_features(values: Mapping[str, Any], instance: Instance) -> list[Problem]:
    """One problem per value that does not fit (or names no feature, no label)."""
    from lakeline.annotations.dtypes import values_of
    from lakeline.annotations.registries import check_records
    from lakeline.annotations.values import resolve_labels
    from lakeline.errors import AnnotationError
    from lakeline.models import Feature

    if not values:
        return []
    problems: list[Problem] = []
    with instance.sessions.read() as session:
        from sqlalchemy import select

        stmt = select(Feature).where(Feature.name.in_(list(values)))
        found = {f.name: f for f in session.scalars(stmt)}
        for name, value in values.items():
            where = f"feature value {name!r}"
            feature = found.get(name)
            if feature is None:
                problems.append(
                    Problem(where, "no such feature", f"no feature is named {name!r}",
                            f"create it with ll.Feature(name={name!r}, dtype=...).save()")
                )  # fmt: skip
                continue
            dtype = feature.parsed_dtype
            try:
                items = values_of(name, dtype, value)
                if dtype.is_label:
                    resolve_labels(session, feature, dtype, items)
                elif dtype.base == "cat":
                    check_records(session, feature, dtype, items)
            except AnnotationError as error:
                text = str(error)
                detail, _, fix = text.partition(": ")
                problems.append(Problem(where, "value does not fit", detail, fix or text))
    return problems
