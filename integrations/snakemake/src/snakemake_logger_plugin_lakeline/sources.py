"""Source code of a workflow: the Snakefile, each rule's block, the scripts rules run."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.M)
_INCLUDE = re.compile(r"^\s*include\s*:\s*[\"']([^\"']+)[\"']", re.M)
_PIPE = re.compile(r"\b(?:pipe|service)\(\s*[rf]?[\"']([^\"']+)[\"']")
_WILDCARD = re.compile(r"\{\s*\w+\s*(?:,\s*([^{}]*(?:\{[^{}]*\}[^{}]*)*))?\}")
_SCRIPT = re.compile(r"^\s+(script|notebook)\s*:\s*(?:\n\s*)?[rf]?[\"']([^\"']+)[\"']", re.M)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pipeline_key(snakefile: str | None, workdir: str) -> str:
    """The workflow's name: its folder (the parent of a `workflow/` folder), else the workdir's."""
    if snakefile:
        folder = Path(snakefile).resolve().parent
        if folder.name == "workflow" and folder.parent.name:
            folder = folder.parent
        if folder.name:
            return folder.name
    return Path(workdir).resolve().name or "snakemake"


def block_at(text: str, line: int, name: str) -> str | None:
    """Rule `name`'s block if it starts on (1-based) `line`: until the next unindented line."""
    lines = text.splitlines()
    match = _RULE.match(lines[line - 1]) if 0 < line <= len(lines) else None
    if match is None or match.group(1) != name:
        return None
    end = line
    while end < len(lines):
        current = lines[end]
        if current.strip() and not current[0].isspace() and not current.startswith("#"):
            break
        end += 1
    return "\n".join(lines[line - 1 : end]).rstrip() + "\n"


def smk_files(base: Path) -> list[str]:
    """The `.smk` files under `base`, never inside `.snakemake/` or other hidden folders
    (Snakemake deletes its locks there while it runs); a folder that cannot be listed is
    skipped, not an error."""
    found = []
    for root, folders, names in os.walk(base):  # errors while listing are ignored
        folders[:] = [f for f in folders if not f.startswith(".")]
        found += [os.path.join(root, n) for n in names if n.endswith(".smk")]
    return found


@dataclass
class Sources:
    """Reads and caches Snakefiles, rule blocks and script hashes of one workflow."""

    snakefile: str | None
    _texts: dict[str, str | None] = field(default_factory=dict)
    _rules: dict[tuple[Any, ...], RuleSource] = field(default_factory=dict)
    _index: dict[str, tuple[str, int]] | None = None

    def text(self, path: str | None) -> str | None:
        if path is None:
            return None
        path = os.path.abspath(path)
        if path not in self._texts:
            try:
                self._texts[path] = Path(path).read_text(errors="replace")
            except OSError:
                self._texts[path] = None
        return self._texts[path]

    def _snakefiles(self) -> list[str]:
        """The main Snakefile, the files it includes (transitively), then other .smk files."""
        if self.snakefile is None:
            return []
        found: list[str] = []
        todo = [os.path.abspath(self.snakefile)]
        while todo:
            path = todo.pop(0)
            if path in found:
                continue
            found.append(path)
            for include in _INCLUDE.findall(self.text(path) or ""):
                todo.append(os.path.abspath(os.path.join(os.path.dirname(path), include)))
        extra = sorted(smk_files(Path(self.snakefile).resolve().parent))
        return found + [p for p in extra if p not in found]

    def pipes(self) -> list[re.Pattern[str]]:
        """What the workflow's `pipe()`/`service()` outputs match (wildcards as regexes), for
        imports: Snakemake's metadata does not say what was a pipe."""
        patterns = []
        for path in self._snakefiles():
            for pattern in _PIPE.findall(self.text(path) or ""):
                parts, end = [], 0
                for match in _WILDCARD.finditer(pattern):
                    parts += [re.escape(pattern[end : match.start()]), f"({match[1] or '.+'})"]
                    end = match.end()
                patterns.append(re.compile("".join([*parts, re.escape(pattern[end:])])))
        return patterns

    def _find(self, rule: str) -> tuple[str, int] | None:
        if self._index is None:
            self._index = {}
            for path in self._snakefiles():
                text = self.text(path) or ""
                for match in _RULE.finditer(text):
                    line = text.count("\n", 0, match.start()) + 1
                    self._index.setdefault(match.group(1), (path, line))
        return self._index.get(rule)

    def rule(
        self, name: str, path: str | None = None, line: int | None = None, script: str | None = None
    ) -> RuleSource:
        """The rule's block (from its file and line when known, else searched by name) and
        the script it runs (`script` as the live rule names it, else read from the block)."""
        cache_key = (name, path, line, script)
        if cache_key not in self._rules:
            block = None
            if path is not None and line is not None:
                block = block_at(self.text(path) or "", line, name)
            if block is None:
                located = self._find(name)
                if located is not None:
                    path, line = located
                    block = block_at(self.text(path) or "", line, name)
            self._rules[cache_key] = RuleSource.of(block, path, line, script)
        return self._rules[cache_key]


@dataclass
class RuleSource:
    """A rule's code as recorded on its transform: the block plus the script it runs."""

    code: str | None
    reference: str | None
    script: dict[str, Any] | None = None

    @classmethod
    def of(
        cls, block: str | None, path: str | None, line: int | None, script: str | None = None
    ) -> RuleSource:
        if block is None:
            return cls(None, None)
        reference = f"{path}:{line}"
        match = _SCRIPT.search(block)
        name = script or (match.group(2) if match else None)
        if name is None or path is None or "://" in name:
            return cls(block, reference)
        script_path = os.path.normpath(os.path.join(os.path.dirname(path), name))
        try:
            data = Path(script_path).read_bytes()
        except OSError:
            return cls(block, reference, {"path": script_path, "sha256": None})
        code = f"{block}\n# --- {name} ---\n{data.decode(errors='replace')}"
        return cls(code, reference, {"path": script_path, "sha256": sha256_of(data)})


def load_config(configfiles: list[str]) -> dict[str, Any] | None:
    """The merged config of the given YAML/JSON files (for imports, where no live config is)."""
    import yaml  # type: ignore[import-untyped]

    config: dict[str, Any] = {}
    for path in configfiles:
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            config.update(data)
    return config or None
