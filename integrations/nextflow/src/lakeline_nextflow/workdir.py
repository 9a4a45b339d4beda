"""Task work directories: `.command.run` (header, `nxf_stage`), `.command.sh`, `.exitcode`.

Inputs are the files `nxf_stage` links or copies in; outputs are the declared patterns of the
`### outputs:` header (Nextflow >= 24.04) matched against the directory, or else everything in
it except the staged inputs and Nextflow's own `.command.*` / `.exitcode` files.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from lakeline_nextflow.model import StagedInput

OWN_FILES = re.compile(r"^(\.command\..*|\.exitcode)$")
_OLD_HEADER = re.compile(r"^# NEXTFLOW TASK: (?P<name>.*)$")
_DOWNLOAD = re.compile(r'downloads\+=\("(?P<cmd>[^"]*)"\)')


@dataclass
class WorkDir:
    """What a task's work dir says about the task."""

    path: Path
    hash: str
    name: str | None = None
    container: str | None = None
    declared: list[str] | None = None  # output patterns (None: an older header without them)
    staged: list[StagedInput] = field(default_factory=list)
    script: str | None = None
    exit_code: int | None = None
    began: bool = False
    outputs: list[str] = field(default_factory=list)  # relative paths, present on disk
    unmatched: list[str] = field(default_factory=list)  # declared patterns that matched nothing
    log: Path | None = None
    metrics: dict[str, str] = field(default_factory=dict)
    wrapper: bool = False  # .command.run was read


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def read_header(text: str) -> tuple[str | None, str | None, list[str] | None]:
    """(task name, container, declared output patterns) from a `.command.run` header."""
    name = container = None
    outputs: list[str] | None = None
    in_block = in_outputs = False
    for line in text.splitlines()[:200]:
        if (found := _OLD_HEADER.match(line)) is not None:
            name = found["name"].strip()
            continue
        if not line.startswith("###"):
            if in_block:
                break
            continue
        body = line[3:].strip()
        if body == "---":
            in_block = True
            continue
        if body == "...":
            break
        if body.startswith("- ") and in_outputs:
            assert outputs is not None
            outputs.append(_unquote(body[2:]))
            continue
        in_outputs = False
        key, _, value = body.partition(":")
        if key == "name":
            name = _unquote(value)
        elif key == "container":
            container = _unquote(value)
        elif key == "outputs":
            outputs, in_outputs = [], True
    return name, container, outputs


def _function_body(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"{name}() {{":
            body: list[str] = []
            for inner in lines[i + 1 :]:
                if inner.startswith("}"):
                    return body
                body.append(inner)
            return body
    return []


def read_staging(lines: list[str], problems: list[str], where: str) -> list[StagedInput]:
    """Staged inputs from `nxf_stage` lines: `ln -s SRC NAME`, `ln`, `cp -fRL`, downloads."""
    staged = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#") or line in ("true",):
            continue
        download = _DOWNLOAD.search(line)
        try:
            words = shlex.split(download["cmd"] if download else line)
        except ValueError:
            problems.append(f"{where}: unreadable staging line {line!r}: skipped")
            continue
        if not words:
            continue
        command, args = words[0], [w for w in words[1:] if not w.startswith("-")]
        if command in ("rm", "mkdir", "true", "bash", "set", "local", "IFS=$'\\n'"):
            continue
        if len(args) < 2:
            continue
        source, name = args[-2], args[-1]
        if command == "ln":
            relative = not source.startswith("/") and "://" not in source
            mode = ("rellink" if relative else "symlink") if "-s" in words else "link"
        elif command in ("cp", "rsync", "mv"):
            mode = "copy"
        elif command.startswith("nxf_") and "download" in command:
            mode = "download"
        else:
            continue
        staged.append(StagedInput(name=name.rstrip("/"), source=source, mode=mode))
    return staged


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_workdir(path: Path, full_hash: str, problems: list[str]) -> WorkDir:
    """Everything a work dir tells about its task (missing wrapper files are simply absent)."""
    info = WorkDir(path=path, hash=full_hash)
    run = _read_text(path / ".command.run")
    if run is None:
        problems.append(f"{path}: no readable .command.run: inputs and declared outputs unknown")
    else:
        info.wrapper = True
        info.name, info.container, info.declared = read_header(run)
        stage = _function_body(run, "nxf_stage")
        if any(".command.stage" in line for line in stage):
            extra = _read_text(path / ".command.stage")
            if extra is None:
                problems.append(f"{path}: inputs are staged by a missing .command.stage")
            else:
                stage = [*stage, *extra.splitlines()]
        info.staged = read_staging(stage, problems, f"{path}/.command.run")
    info.script = _read_text(path / ".command.sh")
    code = _read_text(path / ".exitcode")
    if code is not None and code.strip():
        try:
            info.exit_code = int(code.strip())
        except ValueError:
            problems.append(f"{path}/.exitcode: not a number: {code.strip()!r}")
    info.began = (path / ".command.begin").exists()
    if (path / ".command.log").is_file():
        info.log = path / ".command.log"
    trace = _read_text(path / ".command.trace")
    if trace:
        for line in trace.splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                info.metrics[key.strip()] = value.strip()
    info.outputs, info.unmatched = list_outputs(path, info)
    return info


def list_outputs(path: Path, info: WorkDir) -> tuple[list[str], list[str]]:
    """Outputs present in the work dir: declared patterns matched, or the dir minus inputs."""
    staged = {s.name.split("/", 1)[0] for s in info.staged}
    try:
        entries = sorted(p.name for p in path.iterdir())
    except OSError:
        return [], []
    if info.declared is None:
        found = [
            name
            for name in entries
            if not OWN_FILES.match(name) and name not in staged and not name.startswith(".")
        ]
        return found, []
    found, unmatched = [], []
    for pattern in info.declared:
        hits = []
        for hit in sorted(path.glob(pattern)) if pattern else []:
            rel = hit.relative_to(path).as_posix()
            if ".." in rel.split("/"):  # outputs live inside the work dir
                continue
            top = rel.split("/", 1)[0]
            hidden = any(part.startswith(".") for part in rel.split("/"))
            if top in staged or OWN_FILES.match(top) or (hidden and not pattern.startswith(".")):
                continue
            hits.append(rel)
        if not hits:
            unmatched.append(pattern)
        found.extend(h for h in hits if h not in found)
    # a file inside a matched folder is part of that folder's artifact
    folders = [f for f in found if (path / f).is_dir()]
    found = [f for f in found if not any(f.startswith(d + "/") for d in folders)]
    return found, unmatched


def find_task_dirs(work_root: Path) -> dict[str, Path]:
    """Every task work dir (`xx/yyyy...` with a `.command.run`) under a work root."""
    found = {}
    for prefix in sorted(work_root.glob("[0-9a-f][0-9a-f]")):
        for task in prefix.iterdir() if prefix.is_dir() else []:
            name = task.name
            if re.fullmatch(r"[0-9a-f]{30}", name) and (task / ".command.run").is_file():
                found[prefix.name + name] = task
    return found


def resolve_short(work_root: Path, short: str) -> Path | None:
    """The work dir whose hash starts with `xx/yyyyyy`, when exactly one does."""
    head, _, tail = short.partition("/")
    hits = [p for p in (work_root / head).glob(f"{tail}*") if p.is_dir()]
    return hits[0] if len(hits) == 1 else None
