"""The library's shape: no import cycles, no printing outside the command line, modules of a readable size."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "fraudlab"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every fraudlab module a file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fraudlab"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fraudlab")}
    return {m for m in found if m in known}


def import_graph() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for target in _imports(path, set(modules)):
            if target != name and not name.startswith(target + "."):  # a package's own __init__ is not a cycle
                graph.add_edge(name, target)
    return graph


def test_the_library_has_no_import_cycle():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_only_the_command_line_prints():
    printing = []
    for name, path in _modules().items():
        if name == "fraudlab.cli" or name.startswith("fraudlab.cli_"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                printing.append(f"{name}:{node.lineno}")
    assert not printing, f"print() outside fraudlab/cli.py: {printing}"


def test_no_module_is_past_the_size_a_reader_can_hold():
    big = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split along their sections): {big}"


def test_the_library_never_imports_streamlit():
    offenders = [name for name, path in _modules().items()
                 if any(isinstance(n, (ast.Import, ast.ImportFrom)) and "streamlit" in ast.unparse(n)
                        for n in ast.walk(ast.parse(path.read_text())))]
    assert not offenders, offenders


def test_ruff_is_clean_with_the_project_rules():
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    assert ruff, "ruff is installed by requirements.txt"
    result = subprocess.run([ruff, "check", "--no-cache", "."], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
