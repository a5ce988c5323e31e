"""No module of ours imports, directly or through others, a module that imports it back.

Read with ast, not by importing: every `import` counts, also one inside a function (a
"lazy" import hides a cycle from Python, not from a reader). A cycle means two modules
that cannot be understood, tested or changed one without the other.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("minqing_kernel", "services", "gateway", "tools", "tests", "deploy")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules(root: Path = ROOT) -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if not {".venv", "node_modules", ".run"} & set(path.parts):
                modules[module_name(path, root)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that `name` imports (a package's submodule when it names one)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as the path that closes it (a -> b -> a), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_given_two_modules_importing_each_other_when_walked_then_the_cycle_is_found(
        tmp_path):
    pkg = tmp_path / "services" / "demo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from services.demo import b\n")
    (pkg / "b.py").write_text("def f():\n    from services.demo.a import x\n")
    modules = {module_name(p, tmp_path): p for p in (tmp_path / "services").rglob("*.py")}

    cycle = find_cycle(import_graph(modules))

    assert cycle is not None and set(cycle) == {"services.demo.a", "services.demo.b"}


def test_given_a_chain_without_a_loop_when_walked_then_no_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"b", "c"}}) is None


def test_given_the_project_when_every_import_is_walked_then_no_module_imports_itself_back():
    modules = our_modules()
    assert "services.dispatch.service" in modules and "gateway.service" in modules

    cycle = find_cycle(import_graph(modules))

    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
