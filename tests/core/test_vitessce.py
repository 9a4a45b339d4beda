"""save_vitessce_config: Vitessce's schema, files that are artifacts, the run that links them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import anndata as ad
import lakeline as ll
import numpy as np
import pandas as pd
import pytest
from lakeline.errors import InvalidValue, UnsupportedObject
from lakeline.instance import Instance
from lakeline.integrations import save_vitessce_config
from lakeline.integrations.vitessce import TRANSFORM_KEY, vitessce_schema

# What vitessce 3.8.4 (the Python package, not a dependency) wrote for an AnnDataWrapper with a
# UMAP, cell sets and the expression matrix in three linked views (VitessceConfig.to_dict()).
VITESSCE_3_8_4 = Path(__file__).with_name("vitessce_3.8.4_config.json")


def _config(*urls: str, version: str = "1.0.15") -> dict[str, Any]:
    """A view config as vitessce.VitessceConfig(schema_version=...).to_dict() writes one."""
    files = [
        {
            "fileType": "anndata.zarr",
            "url": urls[0],
            "options": {"obsEmbedding": [{"path": "obsm/X_umap", "embeddingType": "UMAP"}]},
            "coordinationValues": {"obsType": "cell", "featureType": "gene"},
        },
        *({"fileType": "obsSets.json", "url": url} for url in urls[1:]),
    ]
    return {
        "version": version,
        "name": "pbmc",
        "description": "",
        "datasets": [{"uid": "A", "name": "pbmc", "files": files}],
        "coordinationSpace": {"dataset": {"A": "A"}, "embeddingType": {"A": "UMAP"}},
        "layout": [
            {
                "component": "scatterplot",
                "coordinationScopes": {"dataset": "A", "embeddingType": "A"},
                "x": 0,
                "y": 0,
                "w": 6,
                "h": 12,
            },
            {"component": "obsSets", "coordinationScopes": {"dataset": "A"}, "x": 6, "y": 0},
        ],
        "initStrategy": "auto",
    }


@pytest.fixture
def data() -> tuple[ll.Artifact, ll.Artifact]:
    rng = np.random.default_rng(0)
    adata = ad.AnnData(
        X=rng.random((4, 3), dtype="float32"),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(4)]),
        obsm={"X_umap": rng.random((4, 2))},
    )
    zarr = ll.Artifact.from_anndata(adata, key="sc/pbmc.zarr").save()
    sets = ll.Artifact({"version": "0.1.3", "tree": []}, key="sc/pbmc.sets.json").save()
    return zarr, sets


def test_config_is_stored_by_a_run_that_used_its_files(
    any_instance: Instance, data: tuple[ll.Artifact, ll.Artifact]
) -> None:
    zarr, sets = data
    config = _config(zarr.location + "/", sets.key)  # by location and by key
    script = ll.track(key="make-view")
    try:
        art = save_vitessce_config(config, description="pbmc view")
    finally:
        ll.finish()
    assert art.suffix == ".json" and art.description == "pbmc view" and art.kind == "vitessce"
    assert art.load() == config
    run = art.run
    assert run.transform.key == TRANSFORM_KEY and run.status == "completed"
    assert run.parent is not None and run.parent.uid == script.uid
    assert {a.key for a in run.inputs} == {"sc/pbmc.zarr", "sc/pbmc.sets.json"}


def test_config_object_and_http_url_of_an_s3_object(
    s3_instance: Instance, data: tuple[ll.Artifact, ll.Artifact]
) -> None:
    zarr, _ = data
    endpoint = s3_instance.config.storage_options["client_kwargs"]["endpoint_url"]
    https = f"{endpoint}/{zarr.location.removeprefix('s3://')}?X-Amz-Signature=abc"

    class ConfigLike:  # what vitessce.VitessceConfig offers
        def to_dict(self) -> dict[str, Any]:
            return _config(https, version="1.0.18")

    art = save_vitessce_config(ConfigLike(), description="remote view", key="views/pbmc.json")
    assert art.key == "views/pbmc.json"
    assert [a.key for a in art.run.inputs] == ["sc/pbmc.zarr"]


def test_a_config_written_by_the_vitessce_package(
    instance: Instance, data: tuple[ll.Artifact, ll.Artifact]
) -> None:
    zarr, _ = data
    config = json.loads(VITESSCE_3_8_4.read_text().replace("ADATA_URL", zarr.location))
    art = save_vitessce_config(config, description="written by vitessce 3.8.4")
    assert art.load()["datasets"][0]["files"][0]["url"] == zarr.location
    config["layout"][2]["w"] = 6.5  # Vitessce's grid takes whole numbers
    with pytest.raises(InvalidValue, match=r"at layout/2/w: 6.5 is not of type 'integer'"):
        save_vitessce_config(config, description="x")


def test_bad_configs_are_refused_and_nothing_is_saved(
    instance: Instance, data: tuple[ll.Artifact, ll.Artifact], tmp_path: Any
) -> None:
    zarr, _ = data
    n_artifacts, n_runs = ll.Artifact.filter().count(), ll.Run.filter().count()
    good = _config(zarr.location)
    no_type = copy.deepcopy(good)
    del no_type["datasets"][0]["files"][0]["fileType"]
    with pytest.raises(InvalidValue, match=r"at datasets/0/files/0: 'fileType' is a required"):
        save_vitessce_config(no_type, description="x")
    bad_layout = copy.deepcopy(good)
    bad_layout["layout"][0]["x"] = "left"
    with pytest.raises(InvalidValue, match=r"version 1.0.15\) .* at layout/0/x: 'left' is not"):
        save_vitessce_config(bad_layout, description="x")
    with pytest.raises(InvalidValue, match=r"version '2.0.0' is not one of the known versions"):
        save_vitessce_config(_config(zarr.location, version="2.0.0"), description="x")
    stray = tmp_path / "not-saved.zarr"
    with pytest.raises(InvalidValue, match=rf"file '{stray}' of Vitessce dataset 'A' is not an"):
        save_vitessce_config(_config(zarr.location, str(stray)), description="x")
    with pytest.raises(InvalidValue, match=r"'sc/missing.json' of Vitessce dataset 'A' is not"):
        save_vitessce_config(_config("sc/missing.json"), description="x")
    with pytest.raises(InvalidValue, match=r"the Vitessce config is not JSON: .*set"):
        save_vitessce_config({**good, "name": {"a set"}}, description="x")
    with pytest.raises(UnsupportedObject, match=r"config dict or an object with to_dict\(\)"):
        save_vitessce_config(["not", "a", "config"], description="x")
    assert (ll.Artifact.filter().count(), ll.Run.filter().count()) == (n_artifacts, n_runs)


def test_vendored_schema_names_its_source() -> None:
    schema = vitessce_schema()
    assert schema["x-source"]["package"] == "@vitessce/schemas"
    assert schema["x-source"]["license"] == "MIT"
    assert "1.0.0" in schema["definitions"] and "1.0.18" in schema["definitions"]
