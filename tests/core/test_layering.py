"""Layering: core never imports torch/jax at import time; packages depend on core, never a sibling."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT_NAMES = {
    "core": "trainer_core",
    "vqvae": "spinlock_vqvae",
    "choice2vec": "choice2vec",
    "arc": "arc_comm",
    "detector": "bongard_detector",
    "vizwatch": "vizwatch",
}


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_core_modules_import_no_heavy_library_at_module_level():
    # the torch training loop and model, imported lazily by their command and model loader
    # and the torch pieces of data-parallel runs, imported by a torch trainer that asks for them
    allowed_heavy = {"trainer_core/example/trainer.py", "trainer_core/example/model.py", "trainer_core/torch_parallel.py"}
    for path in (ROOT / "packages/core/src").rglob("*.py"):
        rel = path.relative_to(ROOT / "packages/core/src").as_posix()
        heavy = _top_level_imports(path) & {"torch", "jax", "flax", "optax", "matplotlib", "sklearn"}
        assert not heavy or rel in allowed_heavy, f"{rel} imports {heavy} at module level"


def test_importing_every_core_module_but_the_trainer_loads_no_torch():
    modules = [
        p.relative_to(ROOT / "packages/core/src").with_suffix("").as_posix().replace("/", ".")
        for p in (ROOT / "packages/core/src").rglob("*.py")
    ]
    modules = [m.removesuffix(".__init__") for m in modules if m not in ("trainer_core.example.trainer", "trainer_core.example.model", "trainer_core.torch_parallel")]
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(sorted(x for x in ('torch', 'jax') if x in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_packages_never_import_a_sibling():
    for folder, name in IMPORT_NAMES.items():
        siblings = set(IMPORT_NAMES.values()) - {name, "trainer_core"}
        for path in (ROOT / "packages" / folder / "src").rglob("*.py"):
            imported = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    imported.add(node.module.split(".")[0])
            assert not imported & siblings, f"{path} imports sibling package(s) {imported & siblings}"
            if folder == "core":
                assert not imported & set(IMPORT_NAMES.values()) - {"trainer_core"}


def _imports_of(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def test_packages_use_only_trainer_cores_public_api():
    import trainer_core

    for folder in IMPORT_NAMES:
        if folder == "core":
            continue
        for path in (ROOT / "packages" / folder / "src").rglob("*.py"):
            for module, names in _imports_of(path):
                if module.split(".")[0] != "trainer_core":
                    continue
                assert module == "trainer_core", f"{path.relative_to(ROOT)} imports {module}: import from trainer_core itself"
                missing = [n for n in names if n not in trainer_core.__all__]
                assert not missing, f"{path.relative_to(ROOT)} imports {missing}, which trainer_core does not export"


def test_only_core_builds_checkpoint_managers_and_metrics_loggers():
    """Every trainer gets them from TrainingRun (or commit_checkpoint): no package builds its own."""
    for folder in IMPORT_NAMES:
        if folder == "core":
            continue
        for path in (ROOT / "packages" / folder / "src").rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    assert name not in ("CheckpointManager", "MetricsLogger", "build_sinks"), f"{path.relative_to(ROOT)} builds a {name}"
