"""The project's shape: its commands answer, and the packages import in the allowed directions."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["coach", "problems", "tui", "finetune", "evals"]
# design.md: tui, evals, finetune may import coach and problems; coach and problems import none.
ALLOWED = {"coach": set(), "problems": set(), "tui": {"coach", "problems"},
           "finetune": {"coach", "problems"}, "evals": {"coach", "problems"}}


@pytest.mark.parametrize("command", ["empower-tui", "empower-finetune", "empower-evals"])
def test_each_command_has_help(command):
    exe = shutil.which(command) or str(Path(sys.executable).parent / command)
    help_ = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and command in help_.stdout


@pytest.mark.parametrize("command", ["empower-evals"])  # empower-finetune: tests/test_finetune_pipeline.py
def test_a_command_given_nothing_shows_its_usage(command):
    exe = shutil.which(command) or str(Path(sys.executable).parent / command)
    plain = subprocess.run([exe], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 2 and "usage:" in plain.stderr and "Traceback" not in plain.stderr


def imports_of(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found & set(PACKAGES) - {package}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_only_in_the_allowed_directions(package):
    assert imports_of(package) <= ALLOWED[package]


def _type_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes under `if TYPE_CHECKING:`: names for annotations, never imported."""
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
            for stmt in node.body for n in ast.walk(stmt)}


def module_imports() -> dict[str, set[str]]:
    """Each module of the packages -> the modules of the packages it imports (at any depth of the
    code: an import inside a function is still a dependency; one for annotations only is not)."""
    graph = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            deps = set()
            tree = ast.parse(path.read_text())
            skip = _type_only(tree)
            for node in ast.walk(tree):
                if id(node) in skip:
                    continue
                elif isinstance(node, ast.Import):
                    deps.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    deps.add(node.module)
                    deps.update(f"{node.module}.{a.name}" for a in node.names)  # `from coach import registry`
            graph[name] = deps
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def test_no_two_modules_need_each_other():
    """A cycle (specs ↔ registry once, both needing the config path) means an idea without its
    own home; design.md's direction rule cannot see one inside a package."""
    graph = module_imports()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " → ".join(path[path.index(dep):] + [module, dep]))
            if dep not in state:
                visit(dep, path + [module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
