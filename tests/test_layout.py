"""The package's import graph runs one way: no folder or module imports one that imports it.

Every import counts, also those inside functions (made there to keep torch out of a light
import), because a cycle through a hidden import is still a cycle.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "latent_notes"


def unit_of(module: str) -> str:
    """latent_notes.store.cache → store; latent_notes.training → training."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(path: Path) -> set[str]:
    """Every latent_notes module that the file at ``path`` imports, resolved to full names."""
    here = "latent_notes." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("latent_notes")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("latent_notes"):
                found.add(name)
    return found


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        here = unit_of("latent_notes." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        targets = {unit_of(m) for m in imported_modules(path)} - {here, "__init__"}
        graph.setdefault(here, set()).update(targets)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return trail + [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, trail + [node])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_the_folders_and_modules_import_one_way():
    graph = unit_graph()
    assert {"models", "store", "book", "experiments", "training", "families"} <= set(graph)
    assert find_cycle(graph) is None, f"an import cycle: {' → '.join(find_cycle(graph))}"
    # the layers the README describes: models import nothing above them, the store no chapter
    # machinery, and nothing but the book imports the book
    assert graph["models"] <= {"checks"}, graph["models"]
    assert "book" not in graph["store"] | graph["families"] | graph["experiments"]


def test_the_cycle_finder_finds_a_hidden_import():
    graph = unit_graph()
    graph["store"] = graph["store"] | {"book"}  # what store/weights.py once did in a function
    assert find_cycle(graph) is not None
