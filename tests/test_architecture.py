"""The arrows between refresher's modules run one way, and stay so (docs/architecture.md).

Read from the source with `ast`, never by importing it: an import this test does not see
run is still an import. An edge is a module named in an import statement; a package's
`__init__` that Python runs first (refresher/__init__ re-exporting the client) is not the
importing module's choice and is not counted. Imports under `if TYPE_CHECKING:` count: a
type-checking-only cycle is still a cycle a reader must untangle, and a core that names an
I/O type is not I/O-free.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("refresher", "workers")
IO_LIBRARIES = frozenset({"redis", "hiredis", "kombu", "celery", "socket", "select", "ssl", "asyncio"})
CORE_MAY_IMPORT = frozenset({"refresher.errors"})  # the exceptions every layer raises and catches
# Each folder and the folders of refresher it must not import (docs/architecture.md's table).
FORBIDDEN_LAYERS = {
    "refresher.core": ("refresher.api", "refresher.io", "refresher.worker", "refresher.ops"),
    "refresher.io": ("refresher.api", "refresher.worker", "refresher.ops"),
    "refresher.api": ("refresher.worker", "refresher.ops"),
}
# The ready-made app is built on the library, never the other way round.
APP_MODULES = ("workers", "refresher.worker.standalone")
MAX_LINES = 250
# `# type: ignore[code]  # why`: the error code silenced and the third-party reason it must be.
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<rest>.*)$")
EXPLAINED = re.compile(r"^\[[a-z-]+(,\s*[a-z-]+)*\]\s+#\s*\S.{3,}")


class Import(NamedTuple):
    target: str  # the module named
    line: int
    top_level: bool  # run when the module is imported (TYPE_CHECKING blocks included)


def modules() -> dict[str, Path]:
    """Every module of refresher and workers by dotted name (a package by its own name)."""
    found = {}
    for top in TOPS:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(name: str) -> list[Import]:
    """What module `name` imports, as absolute module names: `from a import b` names `a.b`
    when b is a module of the project, else `a`."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: list[Import] = []

    def visit(nodes: list[ast.AST], top_level: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend(Import(alias.name, node.lineno, top_level) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    found.append(Import(sub if sub in MODULES else module, node.lineno, top_level))
            else:  # a function's body runs when it is called, not when the module is imported
                visit(list(ast.iter_child_nodes(node)),
                      top_level and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(list(ast.parse(path.read_text(), str(path)).body), True)
    return found


IMPORTS = {name: imports(name) for name in MODULES}
GRAPH = {name: sorted({i.target for i in found if i.top_level and i.target in MODULES and i.target != name})
         for name, found in IMPORTS.items()}


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def closure(start: list[str]) -> set[str]:
    """The modules `start` imports at module level, and theirs, transitively."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        module = stack.pop()
        if module not in seen:
            seen.add(module)
            stack.extend(GRAPH[module])
    return seen


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                on_stack.discard(w)
                component.append(w)
            on_stack.discard(v)
            if component:
                found.append(sorted([v, *component]))

    for v in GRAPH:
        if v not in index:
            strong(v)
    return found


CORE = sorted(name for name in MODULES if under(name, "refresher.core"))


def test_the_core_closure_does_no_io() -> None:
    """refresher/core decides; it never reads a socket. Bytes and the time come in, ops go
    out: nothing it imports, directly or through another module, may do I/O, and it reaches
    no part of refresher but itself and refresher.errors."""
    problems = []
    for module in sorted(closure(CORE)):
        libraries = sorted({i.target.split(".")[0] for i in IMPORTS[module]
                            if i.top_level and i.target.split(".")[0] in IO_LIBRARIES})
        if libraries:
            problems.append(f"{module} imports {', '.join(libraries)}")
        if not under(module, "refresher.core") and module not in CORE_MAY_IMPORT:
            importers = sorted(m for m in CORE if module in GRAPH[m])
            problems.append(f"{module} is outside the core" + (f" (imported by {', '.join(importers)})" if importers else ""))
    assert not problems, "the core's closure: " + "; ".join(problems)


def test_no_import_cycle() -> None:
    found = cycles()
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def layer_breaches() -> Iterator[str]:
    """Every import, at module level or inside a function, that runs against the layering."""
    for module, found in IMPORTS.items():
        for layer, forbidden in FORBIDDEN_LAYERS.items():
            if under(module, layer):
                yield from (f"{MODULES[module].relative_to(ROOT)}:{i.line} imports {i.target}"
                            for i in found if any(under(i.target, f) for f in forbidden))
        if not under(module, "refresher.worker") and not under(module, "workers"):
            yield from (f"{MODULES[module].relative_to(ROOT)}:{i.line} imports the app {i.target}"
                        for i in found if any(under(i.target, app) for app in APP_MODULES))


def test_layers_import_downwards_only() -> None:
    """core <- io <- api <- worker, ops: a layer imports the ones below it, never above."""
    breaches = list(layer_breaches())
    assert not breaches, "; ".join(breaches)


def test_the_refresh_task_path_has_its_own_entry() -> None:
    """A refresh task reaches its loader through the registry's Refreshable (the state and
    the drivers a refresh needs), never through the reader's handle or the client."""
    handles = [f"line {i.line}: {i.target}" for i in IMPORTS["refresher.worker.run"]
               if i.target in ("refresher.api.loader", "refresher.api.client")]
    tree = ast.parse(MODULES["refresher.worker.run"].read_text())
    lookups = [f"line {node.lineno}: registry.lookup" for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr == "lookup"]
    assert not handles + lookups, "worker/run.py goes through the Loader: " + "; ".join(handles + lookups)


@pytest.mark.parametrize("path", sorted(set(MODULES.values())), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_file_over_250_lines(path: Path) -> None:
    lines = path.read_text().count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines; split it where one idea ends"


def test_every_type_ignore_gives_its_code_and_reason() -> None:
    unexplained = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                   for path in MODULES.values() for n, line in enumerate(path.read_text().splitlines(), 1)
                   if (found := TYPE_IGNORE.search(line)) and not EXPLAINED.match(found["rest"].strip())]
    assert not unexplained, "a type: ignore needs [its-code] and `# why` after it:\n" + "\n".join(unexplained)


def test_the_checks_see_what_they_must() -> None:
    """The readers find real edges: otherwise every test above passes on a graph with none."""
    assert "refresher.api.registry" in GRAPH["refresher.api.client"]  # `from refresher.api import registry`
    assert "refresher.core.state" in GRAPH["refresher.core.read"]  # `from refresher.core.state import ...`
    assert "refresher.worker.standalone" in {i.target for i in IMPORTS["refresher.worker"]}  # in a function
    assert {"refresher.worker.standalone"} <= closure(["refresher.worker.standalone"])
    assert EXPLAINED.match("[untyped-decorator]  # celery ships no stubs")
    assert not EXPLAINED.match("[return-value]")
