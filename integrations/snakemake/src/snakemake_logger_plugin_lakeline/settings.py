"""Settings of the lakeline logger plugin; Snakemake turns each field into a
`--logger-lakeline-<field>` flag.

No `from __future__ import annotations` here: Snakemake's argument builder reads the field
types at runtime, and it understands `Optional[X]` but not `X | None`.
"""

from dataclasses import dataclass, field
from typing import Optional

from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def parse_bool(value: object) -> bool:
    """`true`/`false` (also yes/no, on/off, 1/0) as a bool; anything else is an error."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def unparse_bool(value: object) -> str:
    """The flag value that `parse_bool` reads back."""
    return "true" if value else "false"


def _flag(help: str) -> dict[str, object]:
    return {
        "help": help,
        "parse_func": parse_bool,
        "unparse_func": unparse_bool,
        "metavar": "true|false",
    }


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    """`--logger-lakeline-instance`, `-upload`, `-strict`, `-pipeline`, `-journal`."""

    instance: Optional[str] = field(  # noqa: UP045 - Snakemake needs typing.Optional
        default=None,
        metadata={
            "help": "lakeline instance to record into (default: $LAKELINE_INSTANCE, "
            "else the current instance).",
        },
    )
    upload: Optional[bool] = field(  # noqa: UP045
        default=None,
        metadata=_flag(
            "Upload files outside the workflow folder into the instance's storage "
            "(default false: register them where they are)."
        ),
    )
    strict: Optional[bool] = field(  # noqa: UP045
        default=None,
        metadata=_flag(
            "Stop the workflow when lineage cannot be recorded (default false: warn once, "
            "keep running, list what was not recorded)."
        ),
    )
    pipeline: Optional[str] = field(  # noqa: UP045
        default=None,
        metadata={
            "help": "Key of the pipeline transform (default: the workflow folder's name).",
        },
    )
    journal: Optional[bool] = field(  # noqa: UP045
        default=None,
        metadata=_flag(
            "Keep a journal of the run in .snakemake/lakeline/ (default true) so that "
            "`lakeline snakemake import` can fill in what could not be recorded."
        ),
    )
