"""lakeline: a lineage-aware data catalog for files, tables and arrays.

    import lakeline as ll
    ll.init(storage="./data")                       # or ll.connect("team")
    ll.Artifact("reads.csv", key="raw/reads.csv").save()
    ll.Artifact.filter(key__startswith="raw/").to_dataframe()

Names resolve lazily: `import lakeline` stays fast; SQLAlchemy and the models load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Artifact": "lakeline.models",
    "Collection": "lakeline.models",
    "Feature": "lakeline.models",
    "Run": "lakeline.models",
    "Schema": "lakeline.models",
    "RunInput": "lakeline.models",
    "Storage": "lakeline.models",
    "Transform": "lakeline.models",
    "ULabel": "lakeline.models",
    "User": "lakeline.models",
    "Instance": "lakeline.instance",
    "init": "lakeline.instance",
    "connect": "lakeline.instance",
    "disconnect": "lakeline.instance",
    "save": "lakeline.bulk",
    "duckdb": "lakeline.tables",
    "track": "lakeline.lineage.track",
    "finish": "lakeline.lineage.track",
    "tracked": "lakeline.lineage.tracked",
    "errors": "lakeline",
    "curators": "lakeline",
}

if TYPE_CHECKING:
    from lakeline import curators, errors
    from lakeline.bulk import save
    from lakeline.instance import Instance, connect, disconnect, init
    from lakeline.lineage.track import finish, track
    from lakeline.lineage.tracked import tracked
    from lakeline.models import (
        Artifact,
        Collection,
        Feature,
        Run,
        RunInput,
        Schema,
        Storage,
        Transform,
        ULabel,
        User,
    )
    from lakeline.tables import duckdb

__all__ = [
    "Artifact",
    "Collection",
    "Feature",
    "Instance",
    "Run",
    "RunInput",
    "Schema",
    "Storage",
    "Transform",
    "ULabel",
    "User",
    "__version__",
    "connect",
    "curators",
    "disconnect",
    "duckdb",
    "errors",
    "finish",
    "init",
    "save",
    "track",
    "tracked",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lakeline' has no attribute {name!r}")
    value = (
        import_module(f"lakeline.{name}")
        if module == "lakeline"
        else getattr(import_module(module), name)
    )
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
