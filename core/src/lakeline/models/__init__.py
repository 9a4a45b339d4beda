"""SQLAlchemy models, one entity per module; importing this package maps them all."""

from lakeline.models.annotation import ArtifactSchema, ArtifactULabel, FeatureValue
from lakeline.models.artifact import Artifact
from lakeline.models.base import Base
from lakeline.models.collection import Collection, CollectionArtifact
from lakeline.models.feature import Feature
from lakeline.models.run import Run
from lakeline.models.run_input import RunInput
from lakeline.models.schema import Schema, SchemaFeature
from lakeline.models.setting import Setting
from lakeline.models.storage import Storage
from lakeline.models.transform import Transform
from lakeline.models.ulabel import ULabel, ULabelParent
from lakeline.models.user import User

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
]
