"""Which Python packages a task needs, which are missing, and the pip command that installs them.

Plain standard library: it must work in a QGIS whose Python has none of the packages. A package
counts as present when Python can find it (``importlib.util.find_spec``); nothing heavy is
imported to find out.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import sys
from typing import Iterable

from .contract import BACKEND_PACKAGES

#: Import name -> pip distribution name.
PIP_NAMES = {
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "threadpoolctl": "threadpoolctl",
    "rasterio": "rasterio",
    "yaml": "PyYAML",
    "shapely": "shapely",
    "pyarrow": "pyarrow",
    "torch": "torch",
    "transformers": "transformers",
    "safetensors": "safetensors",
    "faiss": "faiss-cpu",
    "hnswlib": "hnswlib",
    "pynndescent": "pynndescent",
    "psycopg2": "psycopg2-binary",
    "dask": "dask",
    "distributed": "distributed",
}
#: Import name of each pip name in :data:`PIP_NAMES`.
IMPORT_NAMES = {pip_name: module for module, pip_name in PIP_NAMES.items()}
#: What the installer (Plugins > Balanced Sampling > Install Python packages…) offers, in pip names: what every
#: algorithm needs except DINOv2 uniqueness...
RUNTIME_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "threadpoolctl", "rasterio", "PyYAML", "shapely",
                    "pyarrow", "psycopg2-binary", "faiss-cpu", "hnswlib", "pynndescent")
#: ...and, on request, what DINOv2 uniqueness needs (large: torch's CPU wheel alone is about 200 MB).
OPTIONAL_PACKAGES = ("torch", "transformers", "safetensors")
#: ...and, on request too (a second box, about 5 MB with their dependencies), what running a stage on a Dask cluster
#: needs (DASK_SCHEDULER, ``compute.scheduler``), only then (import names = pip names): pinned in
#: python_packages.txt; the message that asks for them names the pip command.
SCALE_OUT = ("dask", "distributed")
#: What every algorithm that reads a patch table needs.
TABLES = ("numpy", "pandas")
RASTERS = TABLES + ("rasterio",)
CLUSTERS = RASTERS + ("sklearn", "scipy", "threadpoolctl")
WEIGHTS = TABLES + ("scipy",)
EMBEDDINGS = RASTERS + ("torch", "transformers", "safetensors", "pyarrow")
#: kNN backend -> the module it needs.
#: (the top-level package: finding "sklearn.neighbors" would import sklearn itself)
BACKEND_MODULES = {backend: module.split(".")[0] for backend, (module, _) in BACKEND_PACKAGES.items()}


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (found on the path), without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_packages(modules: Iterable[str]) -> list[str]:
    """The pip names of the ``modules`` Python cannot find, in the given order, each once."""
    missing = []
    for module in modules:
        name = PIP_NAMES.get(module, module)
        if not is_installed(module) and name not in missing:
            missing.append(name)
    return missing


def python_interpreter() -> str:
    """The Python executable of the running interpreter, also inside QGIS.

    Inside QGIS ``sys.executable`` can be QGIS itself (Windows: ``qgis-bin.exe``) or whatever
    ``python3`` comes first on the PATH; the interpreter QGIS embeds lives in ``sys.exec_prefix``.
    """
    major, minor = sys.version_info[:2]
    if os.name == "nt":
        candidates = [os.path.join(sys.exec_prefix, "python.exe"),
                      os.path.join(os.path.dirname(sys.executable or ""), "python.exe")]
    else:
        candidates = [os.path.join(sys.exec_prefix, "bin", f"python{major}.{minor}"),
                      os.path.join(sys.exec_prefix, "bin", f"python{major}")]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return sys.executable or "python3"


def pip_command(packages: Iterable[str], target: str | None = None, python: str | None = None) -> list[str]:
    """``python -m pip install [--target FOLDER] PACKAGE ...`` as an argument list."""
    command = [python or python_interpreter(), "-m", "pip", "install"]
    if target:
        command += ["--target", target]
    return command + list(packages)


def shell_line(command: list[str]) -> str:
    """A command list as one line to paste into a terminal."""
    if os.name == "nt":
        return " ".join(f'"{part}"' if " " in part else part for part in command)
    return shlex.join(command)


def canonical_name(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``PyYAML`` -> ``pyyaml``, ``faiss_cpu`` -> ``faiss-cpu``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def import_name(pip_name: str) -> str:
    """The module a pip distribution provides, for the plugin's packages (else the name with ``-`` as ``_``)."""
    for name, module in IMPORT_NAMES.items():
        if canonical_name(name) == canonical_name(pip_name):
            return module
    return pip_name.replace("-", "_")
