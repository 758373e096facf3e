"""The module graph of ``pybokeh/`` and ``nets/``: no import cycles, no private names across modules.

Read from the source files (every ``import`` statement, also those inside functions,
which only postpone a cycle to the first call), not by importing anything.  ``nets/``
ships as ``pybokeh.nets``.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = {"pybokeh": REPO / "pybokeh", "pybokeh.nets": REPO / "nets"}


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()
# Compiled extension modules are named with an underscore but are the public face of C++ code.
COMPILED = {"_core", "_cuda", "_cuda_emu"}


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """Absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _owner(name: str) -> str | None:
    """The project module that defines ``name`` (itself, or the longest module prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """``(target module, attribute or None, line)`` for each project import of ``module``, and for
    each attribute read from an imported project module (``depth._load_model``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    out, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _owner(alias.name):
                    out.append((_owner(alias.name), None, node.lineno))
                    if alias.asname:
                        aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path.name == "__init__.py", node.level, node.module)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if alias.name in COMPILED:              # a compiled module: no Python imports of its own
                    continue
                if full in MODULES:                     # a submodule
                    out.append((full, None, node.lineno))
                    aliases[alias.asname or alias.name] = full
                elif _owner(base):                      # an attribute of a module
                    out.append((_owner(base), alias.name, node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            out.append((aliases[node.value.id], node.attr, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {target for target, _, _ in _imports(m) if target != m} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def test_the_graph_sees_the_package():
    graph = _graph()
    assert len(MODULES) > 40
    assert "pybokeh.lens" in graph["pybokeh"] and "pybokeh.renderer" in graph["pybokeh"]
    reads = {(target, name) for target, name, _ in _imports("pybokeh.renderer.device_inputs")}
    assert ("pybokeh.renderer.cuda_backend", "launch") in reads  # attributes of an imported module count
    assert ("pybokeh.inputs", "as_image") in reads               # and names imported from one
    # A package's __init__ is not an edge of its submodules: importing pybokeh.lens runs
    # pybokeh/__init__ first anyway, and every __init__ imports its submodules.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


#: Cycles waiting for a change elsewhere, each with the fix (none now: ImageFileError and the
#: EXIF orientations live in pybokeh.imagefile, which io and phone both import).
KNOWN_CYCLES: list[list[str]] = []
KNOWN_PRIVATE_IMPORTS: dict[str, set[str]] = {}


def test_no_import_cycles():
    # Exactly the known ones: a new cycle fails, and so does a fixed one left on the list.
    assert _cycles(_graph()) == KNOWN_CYCLES


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_imported_from_other_modules(module):
    bad = {f"{target}.{name}" for target, name, _ in _imports(module)
           if name and name.startswith("_") and not name.startswith("__") and target != module}
    assert bad == KNOWN_PRIVATE_IMPORTS.get(module, set()), f"{module} imports private names: {bad}"
