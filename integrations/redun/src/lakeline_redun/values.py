"""redun values as lakeline sees them: JSON params and the files inside nested values."""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from typing import Any

MAX_REPR = 200


@dataclass(frozen=True)
class FileRef:
    """A File or Dir found in a redun value: its path and redun's (stat) hash."""

    path: str
    redun_hash: str
    is_dir: bool = False


_TYPES: tuple[type, type] | None = None  # redun's File and Dir, imported at the first use


def _types() -> tuple[type, type]:
    global _TYPES
    if _TYPES is None:
        from redun.file import Dir, File

        _TYPES = (File, Dir)
    return _TYPES


def _is_file(value: Any) -> bool:
    return isinstance(value, _types())


def file_ref(value: Any) -> FileRef:
    return FileRef(str(value.path), str(value._hash or ""), isinstance(value, _types()[1]))


# `File("-")` is a process's standard output in redun's `script()`, not a file
STREAMS = frozenset({"-"})


def files_in(value: Any) -> list[FileRef]:
    """Every File/Dir/ContentFile/S3 file in a (nested) value, in a stable order (standard
    streams left out)."""
    found: dict[tuple[str, str], FileRef] = {}
    files = _types()
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) in _SCALARS:  # most arguments: nothing inside
            continue
        if isinstance(item, files):
            ref = file_ref(item)
            if ref.path not in STREAMS:
                found.setdefault((ref.path, ref.redun_hash), ref)
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    if len(found) < 2:
        return list(found.values())
    return sorted(found.values(), key=lambda r: (r.path, r.redun_hash))


_SCALARS = frozenset({type(None), bool, int, float, str, bytes})


def jsonable(value: Any) -> Any:
    """A JSON-safe rendering of a redun argument (files keep path and redun hash)."""
    if type(value) in _PLAIN or value is None or isinstance(value, bool | int | float | str):
        return value
    if _is_file(value):
        return _file_json(value, file_ref(value))
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    text = repr(value)
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


_PLAIN = frozenset({bool, int, float, str})
_JSON = _PLAIN | {type(None)}


def _file_json(value: Any, ref: FileRef) -> dict[str, str]:
    return {"redun_type": type(value).__name__, "path": ref.path, "redun_hash": ref.redun_hash}


def arguments(
    positional: tuple[Any, ...], keywords: dict[str, Any], names: list[str]
) -> tuple[dict[str, Any], list[FileRef]]:
    """`params_from_args` and `files_in` of a job's evaluated arguments in one pass: a File
    argument (most) described once for both."""
    params: dict[str, Any] = {}
    found: dict[tuple[str, str], FileRef] = {}
    nested: list[Any] = []
    files = _types()
    items = [(names[i] if i < len(names) else f"arg{i}", v) for i, v in enumerate(positional)]
    for name, value in [*items, *keywords.items()]:
        if type(value) in _JSON:  # as jsonable renders it
            params[name] = value
        elif isinstance(value, files):
            ref = file_ref(value)
            params[name] = _file_json(value, ref)
            if ref.path not in STREAMS:
                found.setdefault((ref.path, ref.redun_hash), ref)
        else:
            params[name] = jsonable(value)
            nested.append(value)
    if nested:  # files inside lists, dicts, ...: walked as files_in walks them
        for ref in files_in(nested):
            found.setdefault((ref.path, ref.redun_hash), ref)
    refs = list(found.values())
    if len(refs) > 1:
        refs.sort(key=lambda r: (r.path, r.redun_hash))
    return dict(sorted(params.items())), refs


def positional_names(source: str | None, name: str) -> list[str]:
    """The parameter names of task function `name`, read from its source (no import)."""
    if not source:
        return []
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            args = node.args
            return [a.arg for a in [*args.posonlyargs, *args.args]]
    return []


def params_from_args(
    args: list[tuple[int | None, str | None, Any]], names: list[str]
) -> dict[str, Any]:
    """Params from (position, keyword, value) arguments; positions named from the signature."""
    params: dict[str, Any] = {}
    for position, keyword, value in args:
        if keyword is not None:
            name = keyword
        elif position is not None and position < len(names):
            name = names[position]
        else:
            name = f"arg{position}"
        params[name] = jsonable(value)
    return dict(sorted(params.items()))
