"""The package's layering: the library never imports the CLI (the command sits on top of it)."""

from __future__ import annotations

import ast
from pathlib import Path

import reprolab

PACKAGE = Path(reprolab.__file__).parent


def _module_name(path: Path) -> str:
    return ".".join(("reprolab", *path.relative_to(PACKAGE).with_suffix("").parts))


def _imported_modules(path: Path, module: str) -> set[str]:
    """Every module a file imports, at the top or inside functions (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
    return names


def test_no_library_module_imports_the_cli():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "cli":
            continue
        cli_imports = sorted(n for n in _imported_modules(path, _module_name(path))
                             if n == "reprolab.cli" or n.startswith("reprolab.cli."))
        if cli_imports:
            offenders.append(f"reprolab/{relative}: {', '.join(cli_imports)}")
    assert not offenders, "library modules import the CLI:\n" + "\n".join(offenders)


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from reprolab.cli import main\n    from ..cli import runs\n"
                     "    importlib.import_module('reprolab.cli.data')\n")
    found = _imported_modules(probe, "reprolab.data.probe")
    assert {"reprolab.cli", "reprolab.cli.runs", "reprolab.cli.data"} <= found
