"""The layer order of the code, read from its imports (every `import`, at the top or inside a function).

A module imports only modules of its own layer or of earlier ones; Ray is imported only by the Ray
layer and the recipes on top; inference (generate, judge, verify) never imports training; and no
import cycle joins modules of different packages. Each failure names the file, the line and the import.
"""

import ast
import itertools
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = [
    ("cotgen.errors", "cotgen.prompts", "cotgen.config", "cotgen.recipe", "cotgen.layout", "cotgen.machine", "cotgen.lazy"),
    ("cotgen.world",),
    ("cotgen.models",),  # builders and loaders: the detector the evaluator runs is one
    ("cotgen.evaluate",),
    ("cotgen.generate",),
    ("cotgen.judge",),  # inference only
    ("cotgen.verify",),
    ("cotgen.train",),
    ("cotgen.sweep",),  # pure Python: plan, work units, store
    ("cotgen.report",),
    ("cotgen.serving",),  # the Images API without Ray
    ("cotgen.distributed",),  # the only Ray layer
    ("cotgen.cli", "cotgen.commands", "cotgen.demo", "cotgen.__main__"),
    ("jobs", "serve", "bench"),
]
RAY_ALLOWED = ("cotgen.distributed", "jobs", "serve", "bench")
INFERENCE = ("cotgen.generate", "cotgen.judge", "cotgen.verify")


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer(module: str) -> int | None:
    if module == "cotgen":
        return 0
    return next((i + 1 for i, names in enumerate(LAYERS) if _under(module, names)), None)


def modules() -> dict[str, Path]:
    """Every module of cotgen/ and of the top layer's folders, by dotted name."""
    found = {}
    for root in ("cotgen", "jobs", "serve", "bench"):
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(module: str) -> list[tuple[int, str, str]]:
    """(line, statement, imported module) for each name an import statement brings in."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, ast.unparse(node), alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from a import b` imports the module a.b when there is one
                target = f"{base}.{alias.name}"
                found.append((node.lineno, ast.unparse(node), target if target in MODULES else base))
    return found


def where(module: str, line: int, statement: str) -> str:
    return f"{MODULES[module].relative_to(REPO)}:{line}: `{statement}`"


def test_every_module_is_in_a_layer():
    unplaced = [m for m in MODULES if layer(m) is None]
    if unplaced:
        pytest.fail(f"modules in no layer (add them to LAYERS in {Path(__file__).name}): {', '.join(unplaced)}", pytrace=False)


def test_imports_follow_the_layer_order():
    wrong = []
    for module in MODULES:
        mine = layer(module)
        for line, statement, target in imports(module):
            if _under(target, ("ray",)) and not _under(module, RAY_ALLOWED):
                wrong.append(f"{where(module, line, statement)}: {module} imports Ray, which only {', '.join(RAY_ALLOWED)} may")
            if not _under(target, ("cotgen",)):
                continue
            if _under(module, INFERENCE) and _under(target, ("cotgen.train",)):
                wrong.append(f"{where(module, line, statement)}: inference ({module}) imports training ({target})")
            theirs = layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                wrong.append(f"{where(module, line, statement)}: {module} (layer {mine}) imports {target} (layer {theirs}), a later layer")
    if wrong:
        pytest.fail("imports against the layer order:\n" + "\n".join(wrong), pytrace=False)


def package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def shortest_cycle(start: str, edges: dict[str, dict]) -> list[str] | None:
    """A shortest import path from `start` back to itself, if there is one."""
    paths, queue = {start: [start]}, deque([start])
    while queue:
        current = queue.popleft()
        for target in edges[current]:
            if target == start:
                return paths[current] + [start]
            if target not in paths:
                paths[target] = paths[current] + [target]
                queue.append(target)
    return None


def test_no_import_cycle_joins_modules_of_different_packages():
    edges: dict[str, dict[str, tuple[int, str]]] = {m: {} for m in MODULES}
    for module in MODULES:
        for line, statement, target in imports(module):
            if target in MODULES and target != module:
                edges[module].setdefault(target, (line, statement))
    cycles, reported = [], set()
    for start in MODULES:
        cycle = shortest_cycle(start, edges)
        if cycle and len({package(m) for m in cycle}) > 1 and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            steps = [where(a, *edges[a][b]) for a, b in itertools.pairwise(cycle)]
            cycles.append(" -> ".join(cycle) + "\n    " + "\n    ".join(steps))
    if cycles:
        pytest.fail("import cycles across packages:\n" + "\n".join(cycles), pytrace=False)


@pytest.mark.parametrize("module", ["cotgen.sweep.config", "cotgen.serving.config", "cotgen.verify.config", "cotgen.cli"])
def test_configs_and_the_cli_parser_load_without_torch(module):
    # a config error or `cotgen --help` should answer at once, not after seconds of torch import
    code = f"import sys, {module}; heavy = sorted({{'torch', 'transformers', 'ray'}} & set(sys.modules)); print(heavy); sys.exit(bool(heavy))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"importing {module} loads {result.stdout.strip()}{result.stderr[-500:]}"
