"""The package's floors: imports go only down, no module-level cycle, a lazy root.

Read from the source (``ast``), so an upward import fails here even on a path
no other test executes. The floors and what each may import are the README's
layout table.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "academy_ml"

#: floor -> the floors it may import (besides itself).
ALLOWED = {
    "core": set(),
    "engine": {"core"},
    "messaging": {"core"},
    "compute": {"core", "engine"},
    "agents": {"core", "engine", "messaging", "compute"},
    "deploy": {"core", "engine", "messaging", "compute", "agents"},
}
#: Modules at the package root and their floor. ``academy_ml`` itself is the
#: public face: it names every floor, lazily (the light-import test keeps its
#: eager imports to core), and importing it from below is no edge (every
#: module loads it first, as its parent).
ROOT_MODULES = {
    "academy_ml": "deploy",
    "academy_ml.exceptions": "core",
    "academy_ml.__main__": "deploy",
}
#: Imports that must stay light: none of these loads the Rust extension or
#: the numerical stack.
LIGHT = [
    "academy_ml",
    "academy_ml.messaging",
    "academy_ml.agents",
    "academy_ml.agents.knowledge",
    "academy_ml.agents.strategies",
    "academy_ml.deploy.launch",
]
HEAVY = ["academy_ml._runtime", "sklearn", "pandas", "pyarrow", "scipy"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def floor(module: str) -> str:
    if module in ROOT_MODULES:
        return ROOT_MODULES[module]
    assert module.startswith("academy_ml."), module
    top = module.split(".")[1]
    assert top in ALLOWED or top == "_runtime", f"{module} is in no floor"
    return "engine" if top == "_runtime" else top


def targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The academy_ml modules an import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("academy_ml")]
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    if not base.startswith("academy_ml"):
        return []
    submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    # ``from package import module`` loads the package only as the module's
    # parent, which is no edge; a name defined in the package is one.
    takes_names = len(submodules) < len(node.names)
    return submodules + ([base] if takes_names and base != "academy_ml" else [])


def imports(module: str, *, eager_only: bool) -> set[str]:
    """What ``module`` imports: every import, or only those run when it loads."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()

    def deferred(node: ast.stmt) -> bool:
        """Runs after the module loaded (a function body) or never (typing only)."""
        if isinstance(node, ast.If):
            return "TYPE_CHECKING" in ast.unparse(node.test)
        return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(targets(module, node))
            elif not (eager_only and deferred(node)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit(getattr(node, field, []))

    visit(tree.body)
    found.discard(module)
    return found


def test_every_import_goes_down_the_floors() -> None:
    upward = [
        f"{module} ({floor(module)}) imports {target} ({floor(target)})"
        for module in MODULES
        for target in sorted(imports(module, eager_only=False))
        if floor(target) != floor(module) and floor(target) not in ALLOWED[floor(module)]
    ]
    assert not upward, "\n".join(upward)


def test_no_module_level_import_cycle() -> None:
    graph = {m: imports(m, eager_only=True) & set(MODULES) for m in MODULES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", LIGHT)
def test_light_imports_load_no_engine(module: str) -> None:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    assert not [m for m in HEAVY if m in loaded], f"import {module} loads the engine"


def lazy_names(package: str) -> list[str]:
    """The names ``package`` exports lazily (the keys of its ``lazy_exports`` call)."""
    for node in ast.walk(ast.parse(MODULES[package].read_text())):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "lazy_exports":
            mapping = node.args[1]
            assert isinstance(mapping, ast.Dict)
            return [ast.literal_eval(key) for key in mapping.keys if key is not None]
    return []


@pytest.mark.parametrize("package", [m for m in MODULES if lazy_names(m)])
def test_lazy_exports_resolve_and_never_name_a_submodule(package: str) -> None:
    module = importlib.import_module(package)
    names = lazy_names(package)
    assert set(names) <= set(module.__all__)
    for name in names:
        # A submodule's import would replace the attribute with the module.
        assert f"{package}.{name}" not in MODULES, f"{package}.{name} is an export and a module"
        assert getattr(module, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = module.missing
