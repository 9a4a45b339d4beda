"""Test-only registries that use `CanValidate`, on their own metadata (as a module would add).

`CellType`: name, synonyms, abbr, uid (plain SQLAlchemy types). `Gene`: the name-like field
is `symbol`; synonyms, no abbr (lakeline's `Str`/`LongText` types, as core models use).
`Plain`: a name and nothing else (no synonyms). Tables are created in the instance's database
by `create_registries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lakeline.ids import new_uid
from lakeline.models.base import LongText, Str
from lakeline.testing import unavailable
from lakeline.validation import CanValidate
from sqlalchemy import Integer, MetaData, String, Text, event, func, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class RegistryBase(DeclarativeBase):
    metadata = MetaData()


class CellType(RegistryBase, CanValidate):
    __tablename__ = "test_cell_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(16), unique=True, default=lambda: new_uid(16))
    name: Mapped[str] = mapped_column(String(255), index=True)
    synonyms: Mapped[str | None] = mapped_column(Text)
    abbr: Mapped[str | None] = mapped_column(String(32))
    n_cells: Mapped[int | None] = mapped_column(Integer)


class Gene(RegistryBase, CanValidate):
    __tablename__ = "test_genes"
    _name_field = "symbol"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(Str(64), index=True)  # lakeline's own column types
    ensembl_id: Mapped[str | None] = mapped_column(String(32))
    synonyms: Mapped[str | None] = mapped_column(LongText)


class Plain(RegistryBase, CanValidate):
    __tablename__ = "test_plain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)


def create_registries(engine: Any) -> None:
    RegistryBase.metadata.create_all(engine)


def fill(engine: Any, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows in one transaction (uids drawn for CellType)."""
    keys = dict.fromkeys(k for row in rows for k in row)
    rows = [{k: row.get(k) for k in keys} for row in rows]  # executemany: one set of keys
    if model is CellType:
        rows = [{"uid": new_uid(16), **row} for row in rows]
    with engine.begin() as conn:
        conn.execute(insert(model.__table__), list(rows))


def count(engine: Any, model: type[Any]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


class QueryCounter:
    """Counts the statements an engine executes while active."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> QueryCounter:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    @property
    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]


def data_file(name: str) -> Path:
    """A file of ../shared/data; skips (fails in CI) when it is not there."""
    path = DATA / name
    if not path.is_file():
        unavailable(f"real test data not found at {path}")
    return path


def names(rows: Iterable[dict[str, Any]], key: str = "name") -> list[str]:
    return [row[key] for row in rows]
