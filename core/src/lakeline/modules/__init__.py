"""Schema modules: distributions that add registries (see docs/modules.md).

What a module's code uses: `SchemaModule` (registered through the `register_modules` hook),
`Base`, `Record`, `LabelRecord`, `CanValidate` and the column types for its models,
`create_link_table`/`drop_link_table` in its migrations, `bulk_insert`, `new_record_stamp` and
`new_uids` for bulk imports; `current_run` (the run a bulk import is attributed to). For
validating against other sources with the registries' semantics: `InspectResult`, `Snapshot`
(names and synonyms to resolve against), `distinct`, `name_field`, `one_param_in` and
`summary_line`. `add`/`mounted`/`installed` mount and list modules. Names resolve lazily: a
plugin importing `SchemaModule` loads no SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lakeline.modules.spec import SchemaModule, installed, registry

if TYPE_CHECKING:
    from lakeline.ids import new_uids
    from lakeline.lineage.context import current_run
    from lakeline.models.base import Base, JSONType, KeyString, LongText, Str
    from lakeline.modules.api import add, mounted
    from lakeline.modules.records import (
        LabelRecord,
        Record,
        bulk_insert,
        create_link_table,
        drop_link_table,
        new_record_stamp,
    )
    from lakeline.validation import CanValidate
    from lakeline.validation.inspecting import InspectResult, summary_line
    from lakeline.validation.lookup import Snapshot, distinct, name_field, one_param_in

_LAZY = {
    "Base": "lakeline.models.base",
    "JSONType": "lakeline.models.base",
    "KeyString": "lakeline.models.base",
    "LongText": "lakeline.models.base",
    "Str": "lakeline.models.base",
    "add": "lakeline.modules.api",
    "mounted": "lakeline.modules.api",
    "LabelRecord": "lakeline.modules.records",
    "Record": "lakeline.modules.records",
    "create_link_table": "lakeline.modules.records",
    "drop_link_table": "lakeline.modules.records",
    "bulk_insert": "lakeline.modules.records",
    "new_record_stamp": "lakeline.modules.records",
    "new_uids": "lakeline.ids",
    "CanValidate": "lakeline.validation",
    "current_run": "lakeline.lineage.context",
    "InspectResult": "lakeline.validation.inspecting",
    "summary_line": "lakeline.validation.inspecting",
    "Snapshot": "lakeline.validation.lookup",
    "distinct": "lakeline.validation.lookup",
    "name_field": "lakeline.validation.lookup",
    "one_param_in": "lakeline.validation.lookup",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lakeline.modules' has no attribute {name!r}")


__all__ = [
    "Base",
    "CanValidate",
    "InspectResult",
    "JSONType",
    "KeyString",
    "LabelRecord",
    "LongText",
    "Record",
    "SchemaModule",
    "Snapshot",
    "Str",
    "add",
    "bulk_insert",
    "create_link_table",
    "current_run",
    "distinct",
    "drop_link_table",
    "installed",
    "mounted",
    "name_field",
    "new_record_stamp",
    "new_uids",
    "one_param_in",
    "registry",
    "summary_line",
]
