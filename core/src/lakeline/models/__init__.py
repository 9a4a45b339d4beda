"""SQLAlchemy models, one entity per module; importing this package maps them all."""

from lakeline.models.artifact import Artifact
from lakeline.models.base import Base
from lakeline.models.collection import Collection, CollectionArtifact
from lakeline.models.run import Run
from lakeline.models.run_input import RunInput
from lakeline.models.setting import Setting
from lakeline.models.storage import Storage
from lakeline.models.transform import Transform
from lakeline.models.user import User

__all__ = [
    "Artifact",
    "Base",
    "Collection",
    "CollectionArtifact",
    "Run",
    "RunInput",
    "Setting",
    "Storage",
    "Transform",
    "User",
]
