"""Plain files: text and JSON load into Python; everything opens as a binary file handle."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline.formats.registry import Format
from lakeline.hookspecs import hookimpl

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

TEXT_SUFFIXES = (".txt", ".md", ".log", ".fasta", ".fa", ".fastq", ".fq", ".bed", ".vcf", ".sam")


def _open_binary(path: str, fs: AbstractFileSystem) -> Any:
    return fs.open(path, "rb")


def json_bytes(obj: Any) -> bytes:
    """The exact bytes lakeline writes for a JSON artifact (sorted keys: stable hashes)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()


def _save_json(obj: Any, path: str) -> None:
    Path(path).write_bytes(json_bytes(obj))


def _load_json(path: str) -> Any:
    return json.loads(Path(path).read_text())


def _load_text(path: str) -> str:
    return Path(path).read_text()


def _describe_json(obj: Any) -> dict[str, Any]:
    return {"otype": type(obj).__name__, "n_observations": len(obj)}


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            name="json",
            suffixes=(".json",),
            types=("builtins.dict", "builtins.list"),
            save=_save_json,
            load=_load_json,
            open=_open_binary,
            describe=_describe_json,
        )
    )
    register(Format(name="text", suffixes=TEXT_SUFFIXES, load=_load_text, open=_open_binary))
