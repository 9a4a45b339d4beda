"""Curators with lakeline-bio's registries: a column of dtype cat[bio.CellType] validates
against the instance's cell types (synonyms too), add_new_from saves new ones, save_artifact
links them, on SQLite and PostgreSQL."""

from __future__ import annotations

import lakeline as ll
import pandas as pd
import pytest
from lakeline.errors import CurationError
from lakeline.instance import Instance


def test_dataframe_column_of_bio_cell_types(bio_instance: Instance) -> None:
    from lakeline_bio.models import CellType

    ll.save([CellType(name="T cell"), CellType(name="B cell", synonyms="B-cell")])
    ll.Feature(name="cell_type", dtype="cat[bio.CellType]").save()
    schema = ll.Schema(name="cells", features=["cell_type"]).save()
    frame = pd.DataFrame({"cell_type": pd.Categorical(["T cell", "B-cell", "NK cell"])})
    curator = ll.curators.DataFrameCurator(frame, schema)
    with pytest.raises(CurationError, match=r"1 not in bio.CellType.name: 'NK cell'"):
        curator.validate()
    assert curator.standardize("cell_type") == {"B-cell": "B cell"}
    assert curator.cat.add_new_from("cell_type") == ["NK cell"]
    artifact = curator.save_artifact(key="cells")
    assert artifact.features.get_values() == {"cell_type": ["B cell", "NK cell", "T cell"]}
    nk = CellType.get(name="NK cell")
    assert [a.uid for a in nk.artifacts] == [artifact.uid]
    assert [a.uid for a in ll.Artifact.filter(cell_type="NK cell")] == [artifact.uid]
