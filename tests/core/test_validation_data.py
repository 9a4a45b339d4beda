"""validate / inspect / standardize on real single-cell data (../shared/data): outdated gene
symbols fixed through synonyms, hand-written cell-type labels checked against a registry."""

from __future__ import annotations

from typing import Any

import pytest
from validation_registries import CellType, Gene, create_registries, data_file, fill

anndata = pytest.importorskip("anndata")

# HGNC renames of symbols the oligodendroglioma data set still uses (old -> approved symbol).
RENAMES = {
    "FAM213B": "PRXL2B",
    "C1orf86": "FAAP20",
    "FAM73A": "MIGA1",
    "FAM63A": "MINDY1",
    "KIAA0907": "KHDC4",
    "C2orf44": "WDCP",
    "FAM208A": "TASOR",
    "KIAA1715": "LNPK",
    "FAM134A": "RETREG2",
    "KIAA0226": "RUBCN",
}


def _var_names(name: str) -> list[str]:
    adata = anndata.read_h5ad(data_file(name), backed="r")
    try:
        return list(adata.var_names)
    finally:
        adata.file.close()


@pytest.fixture
def oligo_genes(instance: Any) -> list[str]:
    """A gene registry built from the data set's own symbols, with the approved symbol as the
    name and the outdated one as its synonym for the renamed genes."""
    symbols = _var_names("oligodendroglioma.h5ad")
    assert set(RENAMES) <= set(symbols) and not set(RENAMES.values()) & set(symbols)
    create_registries(instance.engine)
    rows = [
        {"symbol": RENAMES[s], "synonyms": s} if s in RENAMES else {"symbol": s} for s in symbols
    ]
    fill(instance.engine, Gene, rows)
    return symbols


def test_outdated_gene_symbols_are_fixed_through_synonyms(oligo_genes: list[str]) -> None:
    symbols = oligo_genes
    valid = Gene.validate(symbols, mute=True)
    assert len(valid) == 9450
    assert sorted(s for s, ok in zip(symbols, valid, strict=True) if not ok) == sorted(RENAMES)

    report = Gene.inspect(symbols, mute=True)
    assert report.synonyms_mapper == {old: RENAMES[old] for old in symbols if old in RENAMES}
    assert report.not_found == []

    fixed = Gene.standardize(symbols)
    assert [f for s, f in zip(symbols, fixed, strict=True) if s != f] == [
        RENAMES[s] for s in symbols if s in RENAMES
    ]
    assert Gene.validate(fixed, mute=True).all()
    assert Gene.standardize(symbols, return_mapper=True) == report.synonyms_mapper
    records = Gene.from_values(["FAM213B", "KIAA0226", "HNRNPU-AS1"])
    assert [r.symbol for r in records] == ["PRXL2B", "RUBCN", "HNRNPU-AS1"]


# The registry a curator fills: hand labels as written, except a few that differ.
LABELS = [
    {"name": "CD14+ Monocyte"},
    {"name": "CD19+ B"},
    {"name": "CD4+/CD25+ T Reg"},  # the data writes "CD4+/CD25 T Reg"
    {"name": "CD8+ Cytotoxic T"},
    {"name": "CD8+/CD45RA+ Naive Cytotoxic"},
    {"name": "CD56+ NK"},
    {"name": "CD4+/CD45RO+ Memory"},
    {"name": "CD4+/CD45RA+/CD25- Naive T"},
    {"name": "Dendritic cell", "synonyms": "Dendritic|DC"},
    # no record for "CD34+"
]


@pytest.fixture
def pbmc_labels(instance: Any) -> Any:
    adata = anndata.read_h5ad(data_file("10x_pbmc68k_reduced.h5ad"))
    create_registries(instance.engine)
    fill(instance.engine, CellType, LABELS)
    return adata.obs["bulk_labels"]


def test_hand_written_cell_type_labels_against_a_label_registry(
    pbmc_labels: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = pbmc_labels
    assert len(labels) == 700 and str(labels.dtype) == "category"
    valid = CellType.validate(labels, mute=True)
    not_valid = labels[~valid]
    assert set(not_valid) == {"Dendritic", "CD4+/CD25 T Reg", "CD34+"}
    assert len(not_valid) == 240 + 68 + 13

    result = CellType.inspect(labels)
    assert result.synonyms_mapper == {"Dendritic": "Dendritic cell"}
    assert sorted(result.not_found) == ["CD34+", "CD4+/CD25 T Reg"]
    assert result.suggestions == {"CD4+/CD25 T Reg": ["CD4+/CD25+ T Reg"]}
    report = capsys.readouterr().err
    assert "7 of 10 distinct values validated (70.0%)" in report
    assert "'CD4+/CD25 T Reg' (close: 'CD4+/CD25+ T Reg')" in report

    standardized = CellType.standardize(labels)
    assert standardized.count("Dendritic cell") == 240
    assert "Dendritic" not in standardized
    assert int(CellType.validate(standardized, mute=True).sum()) == 700 - 68 - 13
