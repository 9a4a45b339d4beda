"""The duplicate safeguard: new names close to existing ones (case, punctuation, a typo),
found in one batched pass, warned about naming the existing record."""

from __future__ import annotations

import random
import string
import warnings
from typing import Any

import pytest
from lakeline.errors import QueryError, SimilarNameWarning
from lakeline.validation import check_new_names, similar_names, warn_similar
from lakeline.validation.similar import TYPO_MIN, match_similar, name_key
from rapidfuzz.distance import OSA
from validation_registries import CellType, Gene, QueryCounter, create_registries, fill

EXISTING = [
    "T cell",
    "B cell",
    "CD4+ T cell",
    "Astrocyte",
    "Microglial cell",
    "IL2",
    "CD14+ Monocyte",
]


@pytest.fixture
def cells(instance: Any) -> Any:
    create_registries(instance.engine)
    fill(instance.engine, CellType, [{"name": n} for n in EXISTING])
    return instance


def test_names_differing_in_case_punctuation_or_whitespace_are_similar(cells: Any) -> None:
    new = ["t cell", "T-cell", "T_cell", "Tcell", " T  cell ", "cd4+ t-cell", "ASTROCYTE"]
    assert similar_names(CellType, new, instance=cells) == {
        "t cell": "T cell",
        "T-cell": "T cell",
        "T_cell": "T cell",
        "Tcell": "T cell",
        " T  cell ": "T cell",
        "cd4+ t-cell": "CD4+ T cell",
        "ASTROCYTE": "Astrocyte",
    }


def test_a_typo_is_similar(cells: Any) -> None:
    new = ["Astrocyt", "Astrocytes", "Astorcyte", "Astrxcyte", "Microglia cell", "CD14+ Monocytes"]
    assert similar_names(CellType, new, instance=cells) == {
        "Astrocyt": "Astrocyte",  # deleted
        "Astrocytes": "Astrocyte",  # inserted
        "Astorcyte": "Astrocyte",  # swapped
        "Astrxcyte": "Astrocyte",  # replaced
        "Microglia cell": "Microglial cell",
        "CD14+ Monocytes": "CD14+ Monocyte",
    }


def test_different_things_are_not_typos(cells: Any) -> None:
    new = [
        "IL4",  # other digits
        "CD8+ T cell",  # other digits
        "CD4- T cell",  # '+' is kept: a marker's sign
        "NK cell",  # another first letter
        "Bstrocyte",  # another first letter
        "Astro",  # too short to call a typo
        "Neuron",
        "T cell",  # the registry holds it: a duplicate, not a near one
    ]
    assert similar_names(CellType, new, instance=cells) == {}


def test_similar_names_on_another_name_field(instance: Any) -> None:
    create_registries(instance.engine)
    fill(instance.engine, Gene, [{"symbol": "HNRNPU-AS1"}, {"symbol": "KIAA0319L"}])
    assert similar_names(Gene, ["hnrnpu-as1", "KIAA0319", "HNRNPU-AS2"], instance=instance) == {
        "hnrnpu-as1": "HNRNPU-AS1",
        "KIAA0319": "KIAA0319L",
    }
    with pytest.raises(QueryError, match="Gene has no field 'name'"):
        similar_names(Gene, ["x"], field="name", instance=instance)


def test_ten_thousand_new_names_take_one_query(cells: Any) -> None:
    new = [f"label {i:05d}" for i in range(10_000)] + ["T-Cell", "Astrocytes"]
    with QueryCounter(cells.engine) as counter:
        found = similar_names(CellType, new, instance=cells)
    assert found == {"T-Cell": "T cell", "Astrocytes": "Astrocyte"}
    assert len(counter.selects) == 1


def test_the_warning_names_the_existing_record_with_its_uid(cells: Any) -> None:
    (t_cell,) = CellType.from_values(["T cell"])
    with pytest.warns(SimilarNameWarning) as caught:
        found = check_new_names(CellType, ["T-cell", "Neuron", "Astrocytes"], instance=cells)
    assert found == {"T-cell": "T cell", "Astrocytes": "Astrocyte"}
    (warning,) = caught
    message = str(warning.message)
    assert message.startswith("2 new CellType record(s) resemble existing ones: ")
    assert f"'T-cell' is close to CellType 'T cell' (uid {t_cell.uid})" in message
    assert "'Astrocytes' is close to CellType 'Astrocyte' (uid " in message
    assert warning.filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_new_names(CellType, ["Neuron"], instance=cells) == {}
        warn_similar(CellType, {}, instance=cells)


def test_an_empty_registry_or_batch(instance: Any) -> None:
    create_registries(instance.engine)
    assert similar_names(CellType, ["T cell", "T-cell"], instance=instance) == {}
    assert similar_names(CellType, [], instance=instance) == {}


def _brute_force(new: list[str], existing: list[str]) -> dict[str, str]:
    """What match_similar must find, by comparing every pair (the definition, slowly)."""
    found: dict[str, str] = {}
    held = set(existing)
    for name in new:
        if name in held:
            continue
        key = name_key(name)
        for other in existing:
            if name_key(other) == key:
                found[name] = other
                break
        else:
            if len(key) < TYPO_MIN:
                continue
            digits = "".join(c for c in key if c.isdigit() or c == "+")
            for other in existing:
                other_key = name_key(other)
                if (
                    other_key[:1] == key[:1]
                    and "".join(c for c in other_key if c.isdigit() or c == "+") == digits
                    and OSA.distance(key, other_key) <= 1
                ):
                    found[name] = other
                    break
    return found


def _mutate(rng: random.Random, text: str) -> str:
    letters = string.ascii_lowercase
    position = rng.randrange(len(text))
    kind = rng.choice(["insert", "delete", "replace", "swap", "case", "dash"])
    if kind == "insert":
        return text[:position] + rng.choice(letters) + text[position:]
    if kind == "delete":
        return text[:position] + text[position + 1 :]
    if kind == "replace":
        return text[:position] + rng.choice(letters) + text[position + 1 :]
    if kind == "swap" and position < len(text) - 1:
        return text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    if kind == "case":
        return text.swapcase()
    return text[:position] + "-" + text[position:]


def test_the_pigeonhole_index_finds_what_comparing_every_pair_finds() -> None:
    """No typo is missed by the candidate index (at every position, every edit kind)."""
    rng = random.Random(13)
    alphabet = "abcdefgh12+"  # few letters: many near neighbours
    existing = list(
        dict.fromkeys(
            "".join(rng.choice(alphabet) for _ in range(rng.randint(4, 12))) for _ in range(400)
        )
    )
    new = [_mutate(rng, rng.choice(existing)) for _ in range(1500)]
    new += ["".join(rng.choice(alphabet) for _ in range(rng.randint(4, 12))) for _ in range(500)]
    expected = _brute_force(new, existing)
    found = match_similar(new, existing)
    assert len(expected) > 500  # the sample exercises the typo path
    assert found == expected  # the same names, and the same (oldest) existing match
