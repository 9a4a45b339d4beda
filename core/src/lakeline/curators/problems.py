"""What a curator found: one `Problem` per column, index or set rule that fails, every one
reported at once as a rich table (where, what, which values, the fix)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeline.errors import CurationError

if TYPE_CHECKING:
    from rich.table import Table

SHOWN = 5  # values named per problem


@dataclass
class Problem:
    """One problem: `where` (e.g. "obs column 'cell_type'"), `what` (short kind), `detail`
    (the values and suggestions), `fix` (what makes it go away)."""

    where: str
    what: str
    detail: str
    fix: str
    values: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The problem as one line."""
        return f"{self.where}: {self.what}: {self.detail}; {self.fix}"


def shown(values: Sequence[object], limit: int = SHOWN) -> str:
    """`'a', 'b', ... (+N more)`."""
    text = ", ".join(repr(v) for v in values[:limit])
    more = len(values) - limit
    return text + (f", ... (+{more:,} more)" if more > 0 else "")


def table(problems: Sequence[Problem], title: str) -> Table:
    """The problems as a rich table (cells are plain text: `cat[lab.Biosample]` is no
    markup)."""
    from rich.table import Table
    from rich.text import Text

    out = Table(title=Text(title), show_lines=True, title_justify="left")
    out.add_column("where", style="bold", overflow="fold")
    out.add_column("problem", style="red", overflow="fold")
    out.add_column("values / suggestions", overflow="fold")
    out.add_column("fix", style="green", overflow="fold")
    for problem in problems:
        out.add_row(*map(Text, (problem.where, problem.what, problem.detail, problem.fix)))
    return out


def error(problems: Sequence[Problem], subject: str) -> CurationError:
    """A CurationError naming every problem (one line each after the summary)."""
    if len(problems) == 1:
        return CurationError(f"{subject}: {problems[0].line()}", list(problems))
    count = f"{len(problems)} problems"
    lines = "\n".join(f"  - {p.line()}" for p in problems)
    return CurationError(f"{subject}: {count}\n{lines}", list(problems))
