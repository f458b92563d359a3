"""Print the project's import graph between its top-level packages, and any package that imports one that
imports it back.

    python tools/import_graph.py [--root DIR] [--modules]

Reads every ``.py`` file of ``envs/``, ``callbacks/`` and ``resdex_sb3/`` with ``ast`` (nothing is imported),
counting imports inside functions too: a lazy import is still a dependency. Each edge lists the modules that
make it. ``--modules`` prints the module-level edges instead. Exits 1 when a package cycle exists.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGES = ("envs", "callbacks", "resdex_sb3")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str) -> set[str]:
    """Absolute names of the project modules that ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def module_edges(root: Path) -> dict[str, set[str]]:
    modules = {module_name(root, p): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for target in imports_of(path, module):
            while target not in modules and "." in target:  # `from pkg.mod import name`: the module is pkg.mod
                target = target.rpartition(".")[0]
            if target in modules and target != module:
                edges[module].add(target)
    return edges


def package_cycles(package_edges: dict[str, dict[str, set[str]]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a in package_edges for b in package_edges[a] if a < b and a in package_edges.get(b, {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to read")
    parser.add_argument("--modules", action="store_true", help="print module-level edges")
    args = parser.parse_args(argv)
    edges = module_edges(args.root)
    if args.modules:
        for module in sorted(edges):
            print(f"{module} -> {', '.join(sorted(edges[module]))}")
        return 0
    packages: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module, targets in edges.items():
        for target in targets:
            a, b = module.split(".")[0], target.split(".")[0]
            if a != b:
                packages[a][b].add(module)
    for a in sorted(packages):
        for b in sorted(packages[a]):
            print(f"{a} -> {b}  (via {', '.join(sorted(packages[a][b]))})")
    cycles = package_cycles(packages)
    for a, b in cycles:
        print(f"cycle: {a} <-> {b}")
    if not cycles:
        print("no package cycles")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
