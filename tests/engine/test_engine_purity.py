"""The engine never imports qgis or PyQt: it must run from a notebook or a plain script."""

import ast
import os
import pkgutil
import subprocess
import sys

from tests.conftest import ROOT

ENGINE = os.path.join(ROOT, "balanced_sampling_plugin")
FORBIDDEN = ("qgis", "PyQt5", "PyQt6", "processing", "osgeo")


def imported_modules(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_no_engine_module_imports_qgis_or_pyqt():
    offenders = []
    for folder, _, files in os.walk(ENGINE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                offenders += [f"{path}: {m}" for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN]
    assert not offenders


def test_importing_every_engine_module_loads_no_qgis_and_no_heavy_package():
    modules = [f"balanced_sampling_plugin.{m.name}" for m in pkgutil.iter_modules([ENGINE])]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('qgis', 'PyQt5', 'torch', 'transformers', 'faiss', 'hnswlib'))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"imported at module load: {proc.stdout.strip()}"
