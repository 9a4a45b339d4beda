"""The code base stays lint-clean, formatted and (for the core) strictly typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)],
    ids=["ruff-check", "ruff-format", "mypy-core"],
)
def test_tool_is_clean(command: tuple[str, ...]) -> None:
    result = run(*command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_is_light() -> None:
    """`import lakeline` must not pull in SQLAlchemy, pandas, pyarrow, anndata or fsspec."""
    code = (
        "import sys, lakeline; heavy = [m for m in ('sqlalchemy', 'pandas', 'pyarrow', "
        "'anndata', 'fsspec', 'alembic', 'rich', 'starlette', 'jinja2', 'uvicorn') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_cli_start_up_does_not_import_the_web_ui() -> None:
    """`lakeline --help` (the CLI's start-up, every command registered) loads no web stack."""
    code = (
        "import sys\nfrom lakeline.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\nheavy = [m for m in ('starlette', 'jinja2', 'uvicorn', "
        "'lakeline.ui') if m in sys.modules]\nprint('HEAVY:' + ','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "ui " in result.stdout  # the command is listed...
    assert result.stdout.strip().endswith("HEAVY:")  # ...without loading its libraries


def test_modules_stay_small() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.glob("*/**/src/**/*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    big |= {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "core" / "src").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert big == {}, f"split these modules: {big}"


def test_every_core_module_is_public_or_forbidden_to_integrations() -> None:
    """A new core module must be named in the integrations' contract or be public on purpose."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["name"].startswith("Integrations and")]
    forbidden = contract["forbidden_modules"]
    public = {
        "lakeline",
        "lakeline.errors",
        "lakeline.gc_pause",
        "lakeline.hookspecs",
        "lakeline.instance",
        "lakeline.lineage",
        "lakeline.lineage.recorder",
        "lakeline.modules",
        "lakeline.testing",
        "lakeline.testing_servers",
        "lakeline.cli",
        "lakeline.cli.group",
        "lakeline.cli.output",
    }
    src = ROOT / "core" / "src"
    unlisted = []
    for path in (src / "lakeline").rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        covered = name in public or any(name == f or name.startswith(f + ".") for f in forbidden)
        if not covered:
            unlisted.append(name)
    assert unlisted == [], "add these to the integrations' contract in pyproject.toml"


def test_import_contracts_are_kept() -> None:
    """The layering of docs/architecture.md: lint-imports with the contracts in pyproject.toml."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_integrations_import_no_private_names_across_modules() -> None:
    """`from module import _name` across modules is a private helper used as an API."""
    import ast

    found = []
    sources = [*ROOT.glob("integrations/*/src/**/*.py"), *ROOT.glob("modules/*/src/**/*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and node.module != "__future__":
                    found.append(f"{path.relative_to(ROOT)}: {node.module} {private}")
    assert found == []


# private helpers one core package still takes from another (this list may only shrink)
_PRIVATE_ACROSS_CORE = {
    ("lakeline.search_pg", "lakeline.search"),
    ("lakeline.query", "lakeline.query_conditions"),
    ("lakeline.search_vocab", "lakeline.search"),
    ("lakeline.ui.notes", "lakeline.query"),
    ("lakeline.annotations.lookups", "lakeline.query_conditions"),
}


def test_core_packages_import_no_private_names_of_other_packages() -> None:
    """`from lakeline.x import _name` in another package than x's: a private helper used as
    an API (e.g. the BatchRecorder's retries took save.py's `_retryable`): shared helpers are
    public, in the package both use (`lakeline.db.errors.retryable`)."""
    import ast

    core = ROOT / "core" / "src"
    found = []
    for path in core.glob("lakeline/**/*.py"):
        module = ".".join(path.relative_to(core).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "lakeline."
            ):
                continue
            assert node.module is not None
            private = [a.name for a in node.names if a.name.startswith("_")]
            package, other = module.split(".")[:2], node.module.split(".")[:2]
            if private and package != other and (module, node.module) not in _PRIVATE_ACROSS_CORE:
                found.append(f"{module}: {node.module} {private}")
    assert found == []


def test_bench_scripts_import_names_that_exist() -> None:
    """Every `from lakeline... import name` in bench/ resolves: a helper moved or renamed in
    the core must take its benchmarks along (bench/ has no tests of its own, and a script
    that fails at its first import measures nothing)."""
    import ast
    import importlib

    found = []
    for path in sorted(ROOT.glob("bench/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or node.module is None:
                continue
            module = node.module
            if module.split(".")[0] != "lakeline":
                continue
            loaded = importlib.import_module(module)
            for alias in node.names:
                if hasattr(loaded, alias.name):
                    continue
                try:
                    importlib.import_module(f"{module}.{alias.name}")
                except ImportError:
                    found.append(f"{path.name}: {module} {alias.name}")
    assert found == []
