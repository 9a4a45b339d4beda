"""SQLAlchemy models, one entity per module.

Importing this package maps the records lineage is made of (artifacts, runs, transforms, run
inputs, storages, users, settings): what a workflow engine's recording needs, in a process that
often imports lakeline for nothing else (a Snakemake run). The annotation registries (features,
labels, schemas, collections and their link tables), which reference those but are referenced
by none of them, are mapped together on first use of any of their names here (~25 ms of
SQLAlchemy's class set-up). Code that reads `Base.metadata` or `Base.registry` whole calls
`load_all()` first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lakeline.models.artifact import Artifact
from lakeline.models.base import Base
from lakeline.models.run import Run
from lakeline.models.run_input import RunInput
from lakeline.models.setting import Setting
from lakeline.models.storage import Storage
from lakeline.models.transform import Transform
from lakeline.models.user import User

if TYPE_CHECKING:
    from lakeline.models.annotation import ArtifactSchema, ArtifactULabel, FeatureValue
    from lakeline.models.collection import Collection, CollectionArtifact
    from lakeline.models.feature import Feature
    from lakeline.models.schema import Schema, SchemaFeature
    from lakeline.models.ulabel import ULabel, ULabelParent

_LAZY = {
    "ArtifactSchema": "lakeline.models.annotation",
    "ArtifactULabel": "lakeline.models.annotation",
    "FeatureValue": "lakeline.models.annotation",
    "Collection": "lakeline.models.collection",
    "CollectionArtifact": "lakeline.models.collection",
    "Feature": "lakeline.models.feature",
    "Schema": "lakeline.models.schema",
    "SchemaFeature": "lakeline.models.schema",
    "ULabel": "lakeline.models.ulabel",
    "ULabelParent": "lakeline.models.ulabel",
}
# in dependency order: each one's foreign keys point at tables mapped before it
_REGISTRIES = (
    "lakeline.models.feature",
    "lakeline.models.ulabel",
    "lakeline.models.schema",
    "lakeline.models.collection",
    "lakeline.models.annotation",
)

__all__ = [
    "Artifact",
    "ArtifactSchema",
    "ArtifactULabel",
    "Base",
    "Collection",
    "CollectionArtifact",
    "Feature",
    "FeatureValue",
    "Run",
    "RunInput",
    "Schema",
    "SchemaFeature",
    "Setting",
    "Storage",
    "Transform",
    "ULabel",
    "ULabelParent",
    "User",
    "load_all",
]


def load_all() -> None:
    """Map every core model (the annotation registries too): `Base.metadata` and
    `Base.registry` then hold all of lakeline's own tables."""
    for name in _REGISTRIES:
        importlib.import_module(name)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lakeline.models' has no attribute {name!r}")
    load_all()  # the registries reference each other: mapped together
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
