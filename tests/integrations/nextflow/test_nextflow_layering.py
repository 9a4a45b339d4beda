"""lakeline_nextflow imports only lakeline's public surfaces, and no module of it reaches into
another's private names (the weblog receiver uses the importer's public entry points)."""

from __future__ import annotations

import ast
from pathlib import Path

import lakeline_nextflow

PACKAGE = Path(lakeline_nextflow.__file__).parent
# module -> the names an integration may take from it (None: any name)
ALLOWED: dict[str, set[str] | None] = {
    "lakeline": None,  # the public API
    "lakeline.errors": None,  # `lakeline.errors` (ll.errors)
    "lakeline.instance": {"Instance"},  # the type ll.connect() returns, for annotations
    "lakeline.lineage.recorder": None,
    "lakeline.testing": None,
    "lakeline.hookspecs": {"hookimpl"},  # the plugin surface
    "lakeline.cli.group": {"use_instance"},  # the CLI surface for plugin commands
    "lakeline.cli.output": {"console"},
}


def imports() -> list[tuple[str, str, str]]:
    """(file, module, name) for every `from X import name` / `import X` in the package."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [(path.name, node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                found += [(path.name, alias.name, "") for alias in node.names]
    return found


def test_only_public_lakeline_surfaces() -> None:
    bad = []
    for file, module, name in imports():
        if module != "lakeline" and not module.startswith("lakeline."):
            continue
        allowed = ALLOWED.get(module, set())
        if allowed is not None and name not in allowed:
            bad.append(f"{file}: {module}.{name or '*'}")
    assert bad == []


def test_no_private_names_across_modules() -> None:
    bad = [
        f"{file}: {module}.{name}"
        for file, module, name in imports()
        if module.startswith("lakeline_nextflow.") and name.startswith("_")
    ]
    assert bad == []
