"""The package's layout: every module sits in one layer, imports only its own layer or those below,
and no chain of imports comes back to where it started (see docs/design.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"

#: Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS = (
    ("foundation", ("eggroll_snn", "eggroll_snn.errors", "eggroll_snn.options", "eggroll_snn.atomic_files", "eggroll_snn.process_memory", "eggroll_snn.checkpoint")),
    ("events and frames", ("eggroll_snn.data",)),
    ("network", ("eggroll_snn.perturbation", "eggroll_snn.network", "eggroll_snn.integer", "eggroll_snn.integer.spec", "eggroll_snn.integer.arithmetic", "eggroll_snn.integer.grid")),
    ("population", ("eggroll_snn.population", "eggroll_snn.scoring", "eggroll_snn.integer.reference")),
    ("strategy", ("eggroll_snn.strategies", "eggroll_snn.distributed", "eggroll_snn.integer.hil")),
    ("configuration", ("eggroll_snn.config",)),
    ("run folder", ("eggroll_snn.run_folder",)),
    ("trainer", ("eggroll_snn.training",)),
    ("consumers", ("eggroll_snn.evaluate", "eggroll_snn.plot", "eggroll_snn.export", "eggroll_snn.baselines", "eggroll_snn.tonic_run", "eggroll_snn.integer.export")),
    ("studies", ("eggroll_snn.bench", "eggroll_snn.compare", "eggroll_snn.tools", "eggroll_snn.integer.check")),
    ("command line", ("eggroll_snn.commands", "eggroll_snn.cli")),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    if best is None:
        raise AssertionError(f"{module} is in no layer of tests/test_layout.py: place it there (and in docs/design.md)")
    return best[0]


def _imports(path: Path, module: str) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its file (function-local imports too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("eggroll_snn"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("eggroll_snn"):
                # "from eggroll_snn import snn" imports the module snn; "from eggroll_snn.network import forward" the module
                submodules = {f"{target}.{alias.name}" for alias in node.names if _is_module(f"{target}.{alias.name}")}
                found.update(submodules)
                if len(submodules) < len(node.names):
                    found.add(target)
    return {name for name in found if _is_module(name)}


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (SOURCE / relative.with_suffix(".py")).is_file() or (SOURCE / relative / "__init__.py").is_file()


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {}
    for path in sorted((SOURCE / "eggroll_snn").rglob("*.py")):
        name = _module_name(path)
        modules[name] = _imports(path, name) - {name}
    return modules


def test_the_known_modules_are_found(graph):
    assert {"eggroll_snn.training.loop", "eggroll_snn.run_folder", "eggroll_snn.network", "eggroll_snn.cli"} <= set(graph)
    assert "eggroll_snn.run_folder" in graph["eggroll_snn.training.loop"]
    assert "eggroll_snn.network" in graph["eggroll_snn.population"]  # via "from eggroll_snn.network import ..."


def test_no_module_imports_a_layer_above_its_own(graph):
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in graph.items()
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_import_cycle(graph):
    edges = graph
    state: dict[str, int] = {}
    cycles = []

    def visit(module, stack):
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_every_public_name_resolves_and_the_package_imports_lazily():
    import subprocess
    import sys

    import eggroll_snn

    for name in eggroll_snn.__all__:
        assert getattr(eggroll_snn, name) is not None, name
    assert eggroll_snn.train is __import__("eggroll_snn.training", fromlist=["train"]).train
    # The command line starts without JAX: the public names load on first use.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, eggroll_snn; print('jax' in sys.modules)"], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "False"


def test_without_the_real_subset_its_tests_skip_with_how_to_get_it_and_ci_can_require_them(tmp_path):
    import os
    import subprocess
    import sys

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "EGGROLL_SNN_NMNIST_SMALL": str(tmp_path / "absent")}
    env.pop("EGGROLL_SNN_REQUIRE_REAL_DATA", None)
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tests / "test_baselines.py")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    assert " skipped" in done.stdout and "eggroll-snn data download --to DIR" in done.stdout
    required = subprocess.run(command, env={**env, "EGGROLL_SNN_REQUIRE_REAL_DATA": "1"}, capture_output=True, text=True, cwd=tmp_path)
    assert required.returncode == 1 and "EGGROLL_SNN_REQUIRE_REAL_DATA=1 makes this an error" in required.stdout
