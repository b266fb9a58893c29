"""Check the import graph of src/roost: no cycles, and no arrow in a forbidden direction.

Every ``import`` and ``from … import`` counts, wherever it stands: at module level, inside
a function, or under ``if TYPE_CHECKING`` — a function-level import is still a dependency,
and hiding a cycle there only moves the failure to run time. An import names the most
specific module it reaches (``from roost.imap import context`` is ``roost.imap.context``
when that module exists, else the package ``roost.imap``).

The layering rules are those of docs/ARCHITECTURE.md ("The one rule of the layout"):
the wire layers are sans-IO and know no store; the store knows no protocol and no
runtime; MIME knows no store; auth knows no protocol. Run ``python tools/check_imports.py``
(``make check-imports``); it exits 1 and names every cycle and forbidden import it finds.
Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    """Modules under ``source`` (a dotted prefix) must not import under ``target``."""

    source: str
    target: str
    why: str


_SANS_IO = "is sans-IO: bytes in, events out"
RULES: tuple[Rule, ...] = (
    *(
        Rule(wire, target, _SANS_IO)
        for wire in (
            "roost.imap.wire",
            "roost.pop3.wire",
            "roost.smtp",
            "roost.auth.sasl",
            "roost.sieve",
            "roost.managesieve.wire",
        )
        for target in ("asyncio", "socket", "ssl", "roost.store", "roost.runtime")
    ),
    *(
        Rule("roost.store", target, "the store speaks mail, not protocol, and has no runtime")
        for target in (
            "roost.imap",
            "roost.pop3",
            "roost.lmtp",
            "roost.smtp",
            "roost.submission",
            "roost.managesieve",
            "roost.runtime",
            "roost.cli",
            "roost.admin",
        )
    ),
    Rule("roost.mime", "roost.store", "a message is parsed without knowing where it is kept"),
    *(
        Rule("roost.auth", target, "one authentication for every protocol")
        for target in (
            "roost.imap",
            "roost.pop3",
            "roost.lmtp",
            "roost.submission",
            "roost.managesieve",
            "roost.runtime",
        )
    ),
    *(
        Rule(protocol, "roost.store.sqlite", "protocols use the Store interface, not a backend")
        for protocol in (
            *("roost.imap", "roost.pop3", "roost.lmtp", "roost.submission"),
            "roost.managesieve",
        )
    ),
)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package below ``root`` (the folder that holds ``package``)."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of everything the module imports, relative names resolved."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                prefix = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                prefix = node.module or ""
            for alias in node.names:
                yield f"{prefix}.{alias.name}", node.lineno
            yield prefix, node.lineno


Import = tuple[str, str, int]  # (importing module, dotted name imported, line)


def import_graph(root: Path, package: str) -> tuple[dict[str, set[str]], list[Import]]:
    """Edges between the package's own modules, and every import as (module, name, line)."""
    modules = module_names(root, package)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    imports: list[Import] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        seen: dict[str, int] = {}
        for name, line in _imported(tree, module, is_package):
            seen.setdefault(name, line)
        for name, line in seen.items():
            imports.append((module, name, line))
            target = name
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if not target or target == module or not _under(name, package):
                continue
            # ``from pkg import sub`` names the submodule; the bare prefix ``pkg`` is
            # only an edge when nothing more specific was imported from it.
            narrower = any(_under(other, name) and other != name for other in seen)
            if not narrower:
                edges[module].add(target)
    return edges, imports


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def violations(imports: Iterable[tuple[str, str, int]], rules: Iterable[Rule] = RULES) -> list[str]:
    """One line for each import statement that a rule forbids."""
    rules = tuple(rules)
    found: dict[tuple[str, int], str] = {}
    for module, name, line in sorted(imports, key=lambda item: len(item[1])):
        for rule in rules:
            if _under(module, rule.source) and _under(name, rule.target):
                text = f"{module}:{line} imports {name}: {rule.source} {rule.why}"
                found.setdefault((module, line), text)  # the shortest name of the statement
                break
    return sorted(found.values())


def check(root: Path, package: str = "roost") -> list[str]:
    """Every problem found, as lines for a person; empty when the graph is clean."""
    edges, imports = import_graph(root, package)
    problems = [f"import cycle: {' -> '.join(component)}" for component in cycles(edges)]
    return problems + violations(imports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="src", type=Path, help="folder holding roost/")
    args = parser.parse_args(argv)
    problems = check(args.root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} import problem(s) in {args.root}/roost", file=sys.stderr)
        return 1
    print(f"imports of {args.root}/roost: no cycles, no forbidden direction")
    return 0


if __name__ == "__main__":
    sys.exit(main())
