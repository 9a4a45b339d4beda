"""PostgreSQL: a search's calls of pg_catalog's functions by their qualified name, whatever a
writer defined in `public` (moved out of `lakeline.search`, which stays under 600 lines)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


def pg_catalog(name: str, *arguments: Any) -> Any:
    """`pg_catalog.<name>(arguments)`: pg_catalog's function whatever a writer defined in
    `public` (a better match for a VARCHAR parameter, say: it would run as the searcher)."""
    from sqlalchemy.sql.functions import Function

    if name == "to_tsquery":  # SQLAlchemy compiles that name its own way: no schema
        return _ToTsquery(*arguments)
    return Function(name, *arguments, packagenames=("pg_catalog",))


class _ToTsquery(FunctionElement[Any]):
    """`pg_catalog.to_tsquery(config, query)`."""

    name = "lakeline_to_tsquery"
    inherit_cache = True


@compiles(_ToTsquery)
def _to_tsquery_sql(element: _ToTsquery, compiler: Any, **kw: Any) -> str:
    return f"pg_catalog.to_tsquery({compiler.process(element.clauses, **kw)})"
