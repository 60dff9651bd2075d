"""The import layers of docs/ARCHITECTURE.md, read from the source: lower layers never import higher
ones, the product never imports dev-only code (but for the one guarded exception below), and no
module imports itself through others."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("btc", "remixer", "predict", "devtools", "bench", "fixtures", "tests", "scripts")
DEV_ONLY = ("devtools", "bench", "fixtures", "tests", "scripts")
# The smoke switch builds the tiny models with the checkout's devtools, and says so when there is
# no checkout: the one product module that may reach into dev-only code, and only there.
DEV_ONLY_ALLOWED = {"remixer.smoke": {"devtools.tiny.cache"}}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """First-party modules ``path`` imports, at module level or inside functions alike."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], base]).strip(".")
            # `from remixer import audio` imports the module remixer.audio.
            names = [f"{base}.{alias.name}" if (ROOT / base.replace(".", "/") / f"{alias.name}.py").exists()
                     or (ROOT / base.replace(".", "/") / alias.name).is_dir() else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in FIRST_PARTY)
    return found - {module}


GRAPH = {_module(path): _imports(path)
         for path in sorted([*ROOT.glob("remixer/**/*.py"), *ROOT.glob("btc/*.py"), ROOT / "predict.py"])}


def _within(name: str, *prefixes: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_the_graph_sees_the_modules():
    assert {"remixer.requests", "remixer.weights.store", "btc.labels", "predict"} <= set(GRAPH)
    assert "remixer.weights.manifest" in GRAPH["remixer.weights.store"]
    assert "remixer.audio" in GRAPH["remixer.pipeline"]  # `from remixer import audio as audio_io`
    assert "btc.features" in GRAPH["btc.recognizer"]  # relative imports


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_the_product_imports_no_dev_only_code(module):
    allowed = DEV_ONLY_ALLOWED.get(module, set())
    assert not [name for name in GRAPH[module] if _within(name, *DEV_ONLY) and name not in allowed]


def test_the_smoke_switch_imports_devtools_only_when_switched_on():
    """Inside a function, so an installed package (no devtools/) imports remixer.smoke fine."""
    tree = ast.parse((ROOT / "remixer" / "smoke.py").read_text())
    top_level = {alias.name if isinstance(node, ast.Import) else node.module
                 for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                 for alias in node.names}
    assert not [name for name in top_level if name and _within(name, *DEV_ONLY)]
    assert GRAPH["remixer.smoke"] & {"devtools.tiny.cache", "devtools.tiny"}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _within(m, "btc")))
def test_btc_imports_nothing_of_the_product(module):
    assert not [name for name in GRAPH[module] if not _within(name, "btc")]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _within(m, "remixer.weights")))
def test_the_weights_import_nothing_above_them(module):
    assert not [name for name in GRAPH[module] if not _within(name, "remixer.weights")]


def test_the_input_checks_import_no_stage():
    assert GRAPH["remixer.requests"] <= {"btc.labels"}


def test_only_the_front_ends_run_the_pipeline_and_nothing_imports_a_front_end():
    front_ends = {"predict", "remixer.__main__", "remixer.read_chords", "remixer.batch.cli",
                  "remixer.batch.local"}
    assert {module for module, names in GRAPH.items() if "remixer.pipeline" in names} <= front_ends
    # The CLI (and `python -m remixer.batch`) hands `batch` to its command, which runs a local
    # batch with the local runner.
    allowed = {("remixer.__main__", "remixer.batch.cli"), ("remixer.batch.__main__", "remixer.batch.cli"),
               ("remixer.batch.cli", "remixer.batch.local")}
    assert not [(module, name) for module, names in GRAPH.items() for name in names & front_ends
                if (module, name) not in allowed]


@pytest.mark.parametrize("module", ["remixer.batch.jobs", "remixer.batch.results", "remixer.batch.remote",
                                    "remixer.batch.progress"])
def test_the_batch_planning_and_remote_client_import_no_stage(module):
    """A remote batch needs no model code: only the input rules and the batch's own modules."""
    assert not [name for name in GRAPH[module] if not _within(name, "remixer.batch", "remixer.requests")]


def test_no_module_imports_itself_through_others():
    cycles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(path[path.index(module):] + [module])
            return
        if module in done or module not in GRAPH:
            return
        for name in sorted(GRAPH[module]):
            visit(name, path + [module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])
    assert cycles == []
