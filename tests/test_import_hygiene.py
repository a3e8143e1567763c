"""The structure drawn from the imports: no circle in app/ or pools/, every function-level import of
the project's own modules marked with its reason, and Textual only under app/tui/.

The graph is built with ``ast`` (module-level and function-level imports; ``if TYPE_CHECKING:``
blocks skipped), so a circle hidden inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "pools")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path):
    """``(target module, line number, in a function, the line)`` for every import of our own modules."""
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", getattr(child.test, "attr", "")) == "TYPE_CHECKING":
                for sub in child.orelse:
                    visit(sub, in_function)
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                targets = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in MODULES else child.module
                           for a in child.names]
            else:
                visit(child, inner)
                continue
            for target in targets:
                if target.split(".")[0] in PACKAGES and target in MODULES:
                    found.append((target, child.lineno, in_function, lines[child.lineno - 1]))
    visit(tree, False)
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {t for t, *_ in _imports(path) if t != name} for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, or None (an iterative DFS: white/grey/black)."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_the_checker_finds_a_circle_and_its_absence():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle_in_app_or_pools():
    cycle = _cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_function_level_imports_of_our_modules_say_why():
    unmarked = [f"{path.relative_to(ROOT)}:{line}: {text.strip()}"
                for path in MODULES.values() for _, line, in_function, text in _imports(path)
                if in_function and "# lazy:" not in text]
    assert not unmarked, "import at module level, or mark it '# lazy: <reason>':\n" + "\n".join(unmarked)


def test_no_module_is_too_long_to_read_in_one_sitting():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


@pytest.mark.parametrize("package", ["pools", "app.core", "app.commands", "app.hub"])
def test_only_the_tui_imports_textual(package):
    """Imported in a fresh interpreter with every module of ``package``: Textual stays unloaded."""
    names = [n for n in MODULES if n == package or n.startswith(package + ".")]
    names = [n for n in names if not n.startswith("pools.cluster")] + (
        ["pools.cluster.runner"] if package == "pools" else [])
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({n!r})\n" for n in names) + \
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"{package} loads Textual: {out.stdout[:300]}"
