"""The import-layer rules of docs/architecture.md, checked on the source (AST, every import anywhere in
a module, lazy ones included: a lazy import is still a dependency).

    contracts  ->  stdlib, pydantic, prometheus_client, other contracts modules; nothing else of ours
    services, clients, fakes  ->  never pulumi*, components, orchestrator.toolchain
    components ->  never orchestrator.services / clients / fakes / toolchain
    and no import cycle between first-party modules (imports under `if TYPE_CHECKING:` never run, so
    they make no cycle; the layer rules still apply to them).
"""
from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FIRST_PARTY = ("components", "orchestrator", "policy")
# The Pulumi SDKs, and our one adapter of its internals (it imports them).
PULUMI = ("pulumi", "pulumi_kubernetes", "pulumi_policy", "orchestrator.pulumi_adapter")
CONTRACTS_MAY_IMPORT = ("pydantic", "prometheus_client")


@dataclass(frozen=True)
class Rule:
    layer: str  # module prefix the rule applies to
    forbidden: tuple[str, ...]
    why: str


RULES = (
    Rule("orchestrator.services", (*PULUMI, "components", "orchestrator.toolchain"),
         "services install and run without the IaC side"),
    Rule("orchestrator.clients", (*PULUMI, "components", "orchestrator.toolchain", "orchestrator.services"),
         "clients are shared by services and toolchain"),
    Rule("orchestrator.fakes", (*PULUMI, "components", "orchestrator.toolchain", "orchestrator.services"),
         "the fakes ship with the services (demo topology)"),
    Rule("components", ("orchestrator.services", "orchestrator.clients", "orchestrator.fakes",
                        "orchestrator.toolchain"), "the platform declares; it does not run daemons or tools"),
)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in FIRST_PARTY:
        for path in sorted((root / top).rglob("*.py")) if (root / top).is_dir() else []:
            found[module_name(root, path)] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (annotations only: never run)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ((isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING") or (
                isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")):
            found |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return found


def imports(name: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, runs) for every import statement of the module, relative ones resolved;
    `runs` is False for imports under `if TYPE_CHECKING:`."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    typing_only = _type_checking_only(tree)
    for node in ast.walk(tree):
        runs = id(node) not in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, runs
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno, runs
            for alias in node.names:  # `from pkg import module` imports pkg.module
                yield f"{target}.{alias.name}", node.lineno, runs


def problems(root: Path) -> list[str]:
    mods = modules(root)
    found: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in mods}
    stdlib = sys.stdlib_module_names
    for name, path in mods.items():
        rel = path.relative_to(root)
        for target, line, runs in imports(name, path):
            top = target.split(".")[0]
            if target in mods and target != name and runs:  # a type-only import makes no runtime cycle
                graph[name].add(target)
            for rule in RULES:
                if _within(name, rule.layer) and any(_within(target, f) for f in rule.forbidden):
                    found.append(f"{rel}:{line}: {name} imports {target} ({rule.layer} must not: {rule.why})")
            if _within(name, "orchestrator.contracts"):
                ours = top in FIRST_PARTY
                if (ours and not _within(target, "orchestrator.contracts")) or (
                        not ours and top not in stdlib and top not in CONTRACTS_MAY_IMPORT and top != "__future__"):
                    found.append(f"{rel}:{line}: {name} imports {target} (contracts import only the standard "
                                 f"library, {', '.join(CONTRACTS_MAY_IMPORT)} and other contracts)")
    found += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return sorted(set(found))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(_path_through(sorted(component), graph))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _path_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A concrete cycle inside the component, for the message."""
    members = set(component)
    path, seen = [component[0]], {component[0]}
    while True:
        nxt = sorted(graph[path[-1]] & members)
        back = [n for n in nxt if n in seen]
        if back:
            return path[path.index(back[0]):] + [back[0]]
        path.append(nxt[0])
        seen.add(nxt[0])
