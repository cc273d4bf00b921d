"""Imports point one way, cli -> domain -> nn -> core (DESIGN.md §1), read from the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dltool"
DOMAINS = ("vision", "text", "audio", "cluster", "reduce", "generate", "tune", "series")


def _imports() -> list[tuple[str, str, int]]:
    """(file relative to dltool/, imported dltool module, line) for every import of a dltool module."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        package = ["dltool", *rel.parent.parts]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                # `from dltool import vision` imports the module dltool.vision
                names = [f"{module}.{a.name}" for a in node.names] if module == "dltool" else [module]
            else:
                continue
            found += [(str(rel), n, node.lineno) for n in names if n == "dltool" or n.startswith("dltool.")]
    return found


def _layer(module: str) -> str | None:
    """dltool.vision.data -> 'vision'; the package root (dltool, dltool.__version__) -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else None


def test_the_walk_sees_the_imports():
    imports = _imports()
    assert ("cli/tune.py", "dltool.cli.app") in {i[:2] for i in imports}  # inside a function too
    assert any(f.startswith("vision/") and m.startswith("dltool.core.") for f, m, _ in imports)


def test_only_the_command_layer_imports_it():
    # __main__.py is `python -m dltool`: the entry point that calls the command layer
    offending = [f"{f}:{line} imports {m}" for f, m, line in _imports()
                 if _layer(m) == "cli" and not f.startswith("cli/") and f != "__main__.py"]
    assert not offending


def test_core_and_nn_import_no_domain():
    allowed = {"core": {"core"}, "nn": {"core", "nn"}}
    offending = [f"{f}:{line} imports {m}" for f, m, line in _imports()
                 if f.split("/")[0] in allowed and _layer(m) not in allowed[f.split("/")[0]] | {None}]
    assert not offending


def test_no_domain_imports_another():
    offending = [f"{f}:{line} imports {m}" for f, m, line in _imports()
                 if f.split("/")[0] in DOMAINS and _layer(m) in DOMAINS and _layer(m) != f.split("/")[0]]
    assert not offending
