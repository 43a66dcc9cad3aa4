"""Installs the plugin's Python packages into its own folder, without ever replacing what QGIS ships.

No GUI here (the dialog and the QgsTask in :mod:`.package_dialog` are thin on top), so every step runs in
tests with any interpreter:

1. **Probe** the interpreter QGIS embeds (a subprocess of it, without the plugin's folder): which
   distributions it ships, whether pip is there, numpy's version and whether ``osgeo.gdal_array`` imports
   with it (which numpy major GDAL's bindings were built for).
2. **Resolve** with pip's own resolver, ``pip install --dry-run --report`` against that interpreter's real
   environment (what QGIS ships counts as installed) plus the plugin's folder, under constraints: numpy
   pinned to the version QGIS has (never installed or upgraded; ``numpy<2`` when GDAL was built for numpy 1
   and QGIS has none), the plugin's pins (``python_packages.txt``) as ceilings.
3. **Install** exactly the resolved list, less anything QGIS already ships (a copy in the folder would never be
   used: the folder comes last on ``sys.path``), with ``pip install --no-deps --target STAGING``.
4. **Move** the staged files into the folder, setting aside what they replace (and the files of older versions
   of the same distributions), then **verify** in a fresh subprocess, with the folder appended to
   ``sys.path``, that ``osgeo.gdal_array`` still imports and every package imports and works a little;
   otherwise **roll back**: the folder is restored as it was.

Why not ``--target`` with a ``numpy==<QGIS's>`` constraint? ``--target`` ignores what is installed, so pip
would download and install numpy again (into staging) just to throw it away, and would resolve every other
dependency against nothing. The dry run resolves against what QGIS really has, so pandas, scipy & co. are
chosen to work with QGIS's numpy, and ``--no-deps`` then installs only that list.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from qgis.PyQt.QtCore import QCoreApplication

from ..balanced_sampling_plugin.dependencies import (
    OPTIONAL_PACKAGES,
    RUNTIME_PACKAGES,
    SCALE_OUT,
    canonical_name,
    import_name,
    python_interpreter,
)

translate = QCoreApplication.translate  # pylupdate5 reads translate("Context", "text")
PINS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_packages.txt")
#: The oldest pip with ``install --dry-run --report`` (22.2).
MIN_PIP = (22, 2)
#: torch's CPU-only wheels; on Linux PyPI's torch pulls several GB of CUDA libraries.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Known breakages that the packages' metadata does not declare: when QGIS ships ``name`` with a version matching
#: ``(major below)``, add the constraint. affine 3 fails at first use with attrs < 24 ("No '__dict__' attribute
#: on 'Affine' instance"), e.g. Debian 12's attrs 22.
UNDECLARED_CONFLICTS = (("attrs", 24, "affine<3"),)
#: A short use of each module after installing, where an import alone would not show a broken install.
SMOKE_TESTS = {
    "numpy": "import numpy; numpy.arange(4).sum()",
    "pandas": "import pandas; pandas.DataFrame({'a': [1.0, 2.0]}).describe()",
    "scipy": "from scipy.stats import rankdata; rankdata([3, 1, 2])",
    "sklearn": "import numpy; from sklearn.cluster import KMeans; KMeans(2, n_init=1).fit(numpy.eye(4))",
    "rasterio": "from rasterio.transform import from_origin; from_origin(0, 0, 1, 1) * (1, 1)",
    "yaml": "import yaml; yaml.safe_load('a: 1')",
    "shapely": "import shapely.geometry; shapely.geometry.Point(0, 0).buffer(1).area",
    "pyarrow": "import pyarrow, pyarrow.parquet; pyarrow.array([1, 2])",
    "faiss": "import faiss, numpy; faiss.IndexFlatIP(4).add(numpy.eye(4, dtype='float32'))",
    "hnswlib": "import hnswlib; hnswlib.Index(space='ip', dim=4)",
    "torch": "import torch; torch.zeros(2).sum()",
    # A tiny DINOv2 forward pass: loads what a real model load loads (torch's sympy helpers among them).
    "transformers": "import torch; from transformers import Dinov2Config, Dinov2Model; Dinov2Model(Dinov2Config("
                    "hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, image_size=28, "
                    "patch_size=14))(torch.zeros(1, 3, 28, 28))",
    "psycopg2": "import psycopg2, psycopg2.sql",
    "dask": "import dask, dask.bag; dask.bag.from_sequence([1, 2, 3]).sum().compute(scheduler='sync')",
    "distributed": "from distributed import Client, LocalCluster, WorkerPlugin",
}

PROBE_SCRIPT = r"""
import glob, importlib.metadata, importlib.util, json, os, sys
sys.path.extend(p for p in json.loads(sys.argv[1]) if p not in sys.path)
info = {"python": sys.executable, "version": "%d.%d.%d" % sys.version_info[:3], "platform": sys.platform}
shipped = {}
for dist in importlib.metadata.distributions():
    name = dist.metadata["Name"]
    if name and name.lower() not in shipped:
        shipped[name.lower()] = [name, dist.version]
info["distributions"] = dict(shipped.values())
try:
    info["modules"] = {m: importlib.util.find_spec(m) is not None for m in json.loads(sys.argv[2])}
except Exception as exc:
    info["modules"] = {}
try:
    import pip
    info["pip"] = pip.__version__
except Exception:
    info["pip"] = None
try:
    import numpy
    info["numpy"] = numpy.__version__
except Exception as exc:
    info["numpy"] = None
    info["numpy_error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import osgeo.gdal_array
    info["gdal_array"] = True
except Exception as exc:
    info["gdal_array"] = False
    info["gdal_array_error"] = "%s: %s" % (type(exc).__name__, exc)
# The numpy C-API GDAL's bindings were built for, read from the extension itself when numpy cannot tell:
# numpy 2 builds import numpy._core, numpy 1 builds only numpy.core.
info["gdal_numpy_build"] = None
try:
    spec = importlib.util.find_spec("osgeo")
    for path in glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "_gdal_array*")):
        with open(path, "rb") as binary:
            info["gdal_numpy_build"] = 2 if b"numpy._core" in binary.read() else 1
except Exception:
    pass
print("BALANCED_SAMPLING_PROBE " + json.dumps(info))
"""

#: Compiles the nndescent kNN backend's kernels into numba's on-disk cache with the folder's packages (see
#: ``balanced_sampling_plugin/nn_descent/__main__.py``), so that no kNN run pays that minute.
KERNELS_SCRIPT = r"""
import json, sys
folder, extra, plugin = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path.extend(p for p in extra if p not in sys.path)
sys.path.append(folder)
sys.path.insert(0, plugin)
from balanced_sampling_plugin.nn_descent.__main__ import main
sys.exit(main())
"""
#: The plugin's own folder, which holds the engine package ``balanced_sampling_plugin``.
PLUGIN_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VERIFY_SCRIPT = r"""
import json, sys, traceback
folder, extra, checks = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path.extend(p for p in extra if p not in sys.path)
sys.path.append(folder)
problems = {}
def last_line(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
if checks["gdal"]:
    try:
        import osgeo.gdal_array
    except BaseException as exc:
        problems["osgeo.gdal_array"] = last_line(exc)
for module, code in checks["modules"].items():
    try:
        exec(code, {})
    except BaseException as exc:
        problems[module] = last_line(exc)
if checks["numpy_from_qgis"]:
    import numpy
    if numpy.__version__ != checks["numpy_from_qgis"] or numpy.__file__.startswith(folder):
        problems["numpy"] = "numpy %s from %s instead of QGIS's numpy %s" % (
            numpy.__version__, numpy.__file__, checks["numpy_from_qgis"])
print("BALANCED_SAMPLING_VERIFY " + json.dumps(problems))
"""

#: ``python -c PIP_WRAPPER PATHS_JSON install ...``: pip with extra paths APPENDED to sys.path (PYTHONPATH would
#: put the plugin's folder before QGIS's own packages, and before pip's).
PIP_WRAPPER = ("import json, runpy, sys; extra = json.loads(sys.argv.pop(1)); "
               "sys.path.extend(p for p in extra if p not in sys.path); sys.argv[0] = 'pip'; "
               "runpy.run_module('pip', run_name='__main__', alter_sys=True)")


# ---------------------------------------------------------------------------------------------------------------
# What the interpreter has


@dataclass
class Probe:
    """What the interpreter QGIS embeds ships, seen without the plugin's folder."""

    python: str
    version: str = ""
    platform: str = ""
    pip: str | None = None
    numpy: str | None = None
    numpy_error: str | None = None
    gdal_array: bool = False
    gdal_array_error: str | None = None
    gdal_numpy_build: int | None = None
    distributions: dict = field(default_factory=dict)  # name -> version
    modules: dict = field(default_factory=dict)  # import name -> found

    def shipped_version(self, name: str) -> str | None:
        wanted = canonical_name(name)
        for shipped, version in self.distributions.items():
            if canonical_name(shipped) == wanted:
                return version
        return None

    @property
    def gdal_numpy_major(self) -> int | None:
        """The numpy major version GDAL's bindings work with: the one they import with, else the one they were
        built for (read from the extension), else None (no GDAL bindings)."""
        if self.gdal_array and self.numpy:
            return version_tuple(self.numpy)[0]
        return self.gdal_numpy_build


def parse_probe(text: str, python: str) -> Probe:
    """The probe script's answer (its marked line, whatever else the interpreter printed)."""
    for line in reversed(text.splitlines()):
        if line.startswith("BALANCED_SAMPLING_PROBE "):
            info = json.loads(line.split(" ", 1)[1])
            info["python"] = info.get("python") or python
            known = Probe.__dataclass_fields__
            return Probe(**{key: value for key, value in info.items() if key in known})
    raise InstallError(translate("PackageInstaller", "Could not inspect the Python of this QGIS ({}):\n{}").format(
        python, tail(text)))


def version_tuple(version: str) -> tuple:
    """``'1.24.2'`` -> ``(1, 24, 2)``; what follows the numeric part (``rc1``, ``+dfsg``) is ignored."""
    numbers = []
    for part in version.split("."):
        digits = ""
        for character in part:
            if not character.isdigit():
                break
            digits += character
        if not digits:
            break
        numbers.append(int(digits))
        if len(digits) < len(part):
            break
    return tuple(numbers) or (0,)


# ---------------------------------------------------------------------------------------------------------------
# What to ask pip for


def read_pins(path: str = PINS_FILE) -> dict:
    """``canonical name -> (name, version)`` from a file of ``name==version`` lines."""
    pins = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = (part.strip() for part in line.split("==", 1))
                pins[canonical_name(name)] = (name, version)
    return pins


def numpy_constraint(probe: Probe) -> str | None:
    """The numpy requirement that keeps QGIS's GDAL working.

    QGIS has numpy: exactly that version (pip then never installs or upgrades it). QGIS has none: below 2 when
    GDAL's bindings were built for numpy 1, 2 or later when built for 2, nothing when there is no GDAL."""
    if probe.numpy:
        return f"numpy=={probe.numpy}"
    major = probe.gdal_numpy_major
    if major == 1:
        return "numpy<2"
    if major and major >= 2:
        return f"numpy>={major}"
    return None


def constraint_lines(probe: Probe, pins: dict) -> list:
    """The ``-c`` file for the resolver: numpy's rule, undeclared conflicts, and the plugin's pins as ceilings
    for what QGIS does not ship (what it ships is not ours to choose)."""
    lines = []
    numpy_rule = numpy_constraint(probe)
    if numpy_rule:
        lines.append(numpy_rule)
    for name, below_major, rule in UNDECLARED_CONFLICTS:
        shipped = probe.shipped_version(name)
        if shipped and version_tuple(shipped)[0] < below_major:
            lines.append(rule)
    for key, (name, version) in sorted(pins.items()):
        if key == "numpy" and numpy_rule and not numpy_rule.startswith("numpy<"):
            continue  # pinned to QGIS's, or GDAL needs a numpy newer than ours
        if probe.shipped_version(name) is None:
            lines.append(f"{name}<={version}")
    return lines


def packages_to_request(selected: Iterable[str], probe: Probe) -> list:
    """The selected pip names whose module QGIS does not ship (those in the plugin's folder are asked again, so a
    newer pin replaces them; the resolver leaves the ones that already fit). The optional ones (torch & co.,
    dask and distributed) are in ``selected`` only when their box in the dialog is ticked."""
    return [name for name in selected if not probe.modules.get(import_name(name), False)]


def default_selection(with_torch: bool = False, with_dask: bool = False) -> list:
    """The runtime packages, plus DINOv2's (``with_torch``) and a Dask cluster's (``with_dask``) on request."""
    return (list(RUNTIME_PACKAGES) + (list(OPTIONAL_PACKAGES) if with_torch else [])
            + (list(SCALE_OUT) if with_dask else []))


@dataclass
class Resolved:
    name: str
    version: str
    url: str = ""
    requested: bool = False

    @property
    def is_wheel(self) -> bool:
        return self.url.split("#")[0].endswith(".whl") or not self.url

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def parse_report(text: str) -> list:
    """The distributions a ``pip install --dry-run --report`` would install."""
    report = json.loads(text)
    found = []
    for item in report.get("install", []):
        metadata = item.get("metadata", {})
        found.append(Resolved(metadata["name"], metadata["version"],
                              (item.get("download_info") or {}).get("url", ""), bool(item.get("requested"))))
    return found


def split_shipped(resolved: list, probe: Probe) -> tuple:
    """``(to install, [(dist, QGIS's version)])``: a distribution QGIS ships is never put into the folder (it
    would never be imported: the folder comes last on sys.path)."""
    install, shipped = [], []
    for dist in resolved:
        version = probe.shipped_version(dist.name)
        if version is None:
            install.append(dist)
        else:
            shipped.append((dist, version))
    return install, shipped


@dataclass
class Plan:
    """The pip commands of one installation."""

    python: str
    folder: str
    packages: list
    constraints: list
    #: ``--index-url``/``--find-links``/``--no-index`` options; None: pip's own configuration.
    index_options: list | None = None
    extra_paths: list = field(default_factory=list)
    #: An extra index for torch (its CPU-only wheels), used with pip's own index configuration only.
    torch_index: str | None = None

    def _index(self) -> list:
        options = list(self.index_options or [])
        if self.torch_index and self.index_options is None:
            options += ["--extra-index-url", self.torch_index]
        return options

    def resolve_command(self, report: str, constraints_file: str) -> list:
        """A dry run against the interpreter's environment plus the folder (both count as installed)."""
        paths = [p for p in self.extra_paths if p != self.folder] + [self.folder]
        return [self.python, "-c", PIP_WRAPPER, json.dumps(paths), "install", "--dry-run", "--report", report,
                "--progress-bar", "off", "--no-input", "--disable-pip-version-check", "--prefer-binary",
                "-c", constraints_file, *self._index(), *self.packages]

    def install_command(self, staging: str, requirements: list) -> list:
        """Exactly ``requirements`` (``name==version``), nothing else, into ``staging``."""
        return [self.python, "-m", "pip", "install", "--no-deps", "--target", staging, "--no-compile",
                "--progress-bar", "off", "--no-input", "--disable-pip-version-check", "--prefer-binary",
                *self._index(), *requirements]


# ---------------------------------------------------------------------------------------------------------------
# Moving into place, and back


class FolderChange:
    """Files moved into ``folder`` with what they replaced set aside in ``backup``, so the folder can be restored."""

    def __init__(self, folder: str, backup: str):
        self.folder, self.backup = folder, backup
        self.steps = []  # ("aside", rel) | ("placed", rel) | ("dir", rel)
        self.folder_existed = os.path.isdir(folder)

    def _make_dirs(self, rel_dir: str) -> None:
        missing = []
        while rel_dir and not os.path.isdir(os.path.join(self.folder, rel_dir)):
            missing.append(rel_dir)
            rel_dir = os.path.dirname(rel_dir)
        for rel in reversed(missing):
            os.mkdir(os.path.join(self.folder, rel))
            self.steps.append(("dir", rel))

    def set_aside(self, rel: str) -> None:
        source = os.path.join(self.folder, rel)
        if not os.path.lexists(source) or (os.path.isdir(source) and not os.path.islink(source)):
            return  # nothing there, or a folder: only files (and links) are moved
        target = os.path.join(self.backup, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(source, target)
        self.steps.append(("aside", rel))

    def place(self, source: str, rel: str) -> None:
        self.set_aside(rel)
        self._make_dirs(os.path.dirname(rel))
        shutil.move(source, os.path.join(self.folder, rel))
        self.steps.append(("placed", rel))

    def remove_emptied_dirs(self) -> None:
        """Remove the folders that setting files aside left empty (an empty ``*.dist-info`` would confuse
        importlib.metadata), remembering them for a rollback."""
        emptied = {os.path.dirname(rel) for kind, rel in self.steps if kind == "aside"}
        for rel in sorted(emptied, key=lambda r: r.count(os.sep), reverse=True):
            while rel:
                path = os.path.join(self.folder, rel)
                if not os.path.isdir(path) or os.path.islink(path) or os.listdir(path):
                    break
                os.rmdir(path)
                self.steps.append(("rmdir", rel))
                rel = os.path.dirname(rel)

    def rollback(self) -> None:
        """Restore the folder as it was before (files, folders, and no folder if there was none)."""
        for kind, rel in reversed(self.steps):
            path = os.path.join(self.folder, rel)
            if kind == "placed" and os.path.lexists(path):
                os.remove(path)
            elif kind == "aside":
                os.makedirs(os.path.dirname(path), exist_ok=True)
                shutil.move(os.path.join(self.backup, rel), path)
            elif kind == "rmdir":
                os.makedirs(path, exist_ok=True)
            elif kind == "dir":
                _remove_empty_tree(path)
        self.steps = []
        shutil.rmtree(self.backup, ignore_errors=True)
        if not self.folder_existed:
            _remove_empty_tree(self.folder)

    def commit(self) -> None:
        """Keep the new files; forget what was set aside."""
        shutil.rmtree(self.backup, ignore_errors=True)
        self.steps = []


def _remove_empty_tree(path: str) -> None:
    """Remove ``path`` if it holds nothing but empty folders and ``__pycache__``."""
    if not os.path.isdir(path) or os.path.islink(path):
        return
    for entry in os.listdir(path):
        child = os.path.join(path, entry)
        if entry == "__pycache__":
            shutil.rmtree(child, ignore_errors=True)
        else:
            _remove_empty_tree(child)
    if not os.listdir(path):
        os.rmdir(path)


def _dist_infos(folder: str) -> dict:
    """``canonical project name -> dist-info folder name`` in ``folder``."""
    found = {}
    if os.path.isdir(folder):
        for entry in os.listdir(folder):
            if entry.endswith(".dist-info"):
                found.setdefault(canonical_name(entry[:-len(".dist-info")].rsplit("-", 1)[0]), []).append(entry)
    return found


def _record_files(folder: str, dist_info: str) -> list:
    """The files (relative to ``folder``) an installed distribution's RECORD lists, those inside the folder."""
    files = []
    try:
        with open(os.path.join(folder, dist_info, "RECORD"), encoding="utf-8") as record:
            for line in record:
                rel = line.rsplit(",", 2)[0].strip().strip('"')
                norm = os.path.normpath(rel)
                if rel and not os.path.isabs(norm) and not norm.startswith(".."):
                    files.append(norm)
    except OSError:
        pass
    return files


def move_into_place(staging: str, folder: str, backup: str) -> FolderChange:
    """Move every file of ``staging`` into ``folder``; files of older versions of the same distributions and
    files replaced are set aside in ``backup``. On error the folder is restored before raising."""
    change = FolderChange(folder, backup)
    try:
        os.makedirs(folder, exist_ok=True)
        installed = _dist_infos(folder)
        for project in _dist_infos(staging):
            for dist_info in installed.get(project, []):
                rels = _record_files(folder, dist_info)
                rels += [os.path.join(dist_info, entry) for entry in os.listdir(os.path.join(folder, dist_info))]
                caches = {os.path.join(os.path.dirname(rel), "__pycache__") for rel in rels}
                for cache in caches:
                    if os.path.isdir(os.path.join(folder, cache)):
                        rels += [os.path.join(cache, entry) for entry in os.listdir(os.path.join(folder, cache))]
                for rel in dict.fromkeys(rels):
                    change.set_aside(rel)
        change.remove_emptied_dirs()
        for root, dirs, files in os.walk(staging):
            dirs.sort()
            for name in sorted(files):
                source = os.path.join(root, name)
                change.place(source, os.path.relpath(source, staging))
            for name in dirs:  # links to folders are moved as they are
                if os.path.islink(os.path.join(root, name)):
                    source = os.path.join(root, name)
                    change.place(source, os.path.relpath(source, staging))
    except BaseException:
        change.rollback()
        raise
    return change


# ---------------------------------------------------------------------------------------------------------------
# The run


class InstallError(Exception):
    """Installation stopped; the folder is as it was."""


@dataclass
class InstallResult:
    ok: bool
    message: str
    canceled: bool = False
    installed: list = field(default_factory=list)  # "name version"
    kept_from_qgis: list = field(default_factory=list)  # "name QGIS-version (wanted version)", not installed
    not_built: list = field(default_factory=list)  # source distributions that could not be built
    problems: dict = field(default_factory=dict)  # module -> error, from the check after installing
    log: list = field(default_factory=list)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Installer:
    """One installation of ``packages`` (pip names) into ``folder`` by ``python``'s pip.

    ``run`` blocks (QGIS runs it in a QgsTask) and reports through callbacks; ``cancel`` may be called from any
    thread: it kills pip, and the folder stays as it was."""

    def __init__(self, folder: str, packages: Iterable[str] | None = None, python: str | None = None,
                 index_options: list | None = None, env: dict | None = None, extra_paths: Iterable[str] = (),
                 pins_file: str = PINS_FILE, modules: dict | None = None, timeout: float = 3600,
                 torch_index: str | None = TORCH_CPU_INDEX if sys.platform.startswith("linux") else None):
        self.folder = os.path.abspath(folder)
        self.packages = list(packages) if packages is not None else default_selection()
        self.python = python or python_interpreter()
        self.index_options = index_options
        self.env = dict(os.environ if env is None else env)
        self.env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_REQUIRE_VIRTUALENV="0",
                        PYTHONIOENCODING="utf-8")
        self.extra_paths = [p for p in extra_paths if p and os.path.abspath(p) != self.folder]
        self.pins_file = pins_file
        self.modules = dict(modules or {})  # pip name -> import name, beyond the plugin's own
        self.timeout = timeout
        self.torch_index = torch_index
        self._process = None
        self._canceled = threading.Event()
        self._lock = threading.Lock()
        self.commands = []  # every command run, for the log and tests
        self.log_lines = []

    # -- cancel ---------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self._canceled.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            _kill_tree(process)

    @property
    def canceled(self) -> bool:
        return self._canceled.is_set()

    # -- helpers ------------------------------------------------------------------------------------------
    def module_of(self, pip_name: str) -> str:
        return self.modules.get(pip_name) or import_name(pip_name)

    def _run(self, command: list, log, on_line=None, echo: bool = True, timeout: float | None = None) -> tuple:
        """Run ``command``, log its output line by line; ``(returncode, output)``; returncode None if canceled."""
        if self.canceled:
            return None, ""
        self.commands.append(command)
        kwargs = {}
        if os.name == "nt":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0) | \
                getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        else:
            kwargs["start_new_session"] = True  # one process group: cancel kills pip's children too
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=self.env, encoding="utf-8", errors="replace", **kwargs)
        with self._lock:
            self._process = process
        if self.canceled:  # canceled while starting
            _kill_tree(process)
        killer = threading.Timer(timeout or self.timeout, _kill_tree, (process,))
        killer.daemon = True
        killer.start()
        output = []
        try:
            for line in process.stdout:
                line = line.rstrip()
                output.append(line)
                if echo and line:
                    log(line)
                if on_line is not None:
                    on_line(line)
            process.wait()
        finally:
            killer.cancel()
            process.stdout.close()
            with self._lock:
                self._process = None
        if self.canceled:
            return None, "\n".join(output)
        return process.returncode, "\n".join(output)

    def probe(self, log=lambda line: None) -> Probe:
        modules = sorted({self.module_of(name) for name in self.packages} | {"numpy", "osgeo"})
        code, output = self._run([self.python, "-c", PROBE_SCRIPT, json.dumps(self.extra_paths),
                                  json.dumps(modules)], log, echo=False, timeout=300)
        if code is None:
            raise _Canceled()
        return parse_probe(output, self.python)

    # -- the whole installation -------------------------------------------------------------------------------
    def run(self, log: Callable[[str], None] = lambda line: None,
            progress: Callable[[float], None] = lambda percent: None) -> InstallResult:
        """Install; never raises for a failed installation (the result says what happened)."""
        def logged(line):
            self.log_lines.append(line)
            log(line)

        started = time.monotonic()
        work = None
        compiles = "pynndescent" in {canonical_name(name) for name in self.packages}
        if compiles:  # the last tenth of the bar is the kernels' compilation (about a minute)
            whole, progress = progress, (lambda percent: whole(0.9 * percent))
        try:
            progress(0)
            logged(translate("PackageInstaller", "Inspecting the Python of this QGIS: {}").format(self.python))
            probe = self.probe(logged)
            problem = self._unusable(probe)
            if problem:
                return self._result(False, problem)
            progress(5)
            requested = packages_to_request(self.packages, probe)
            if not requested:
                return self._result(True, translate(
                    "PackageInstaller", "Nothing to install: the Python of this QGIS already has {}.").format(
                    ", ".join(self.packages)))
            pins = read_pins(self.pins_file)
            plan = Plan(self.python, self.folder, requested, constraint_lines(probe, pins), self.index_options,
                        self.extra_paths, torch_index=self.torch_index if "torch" in requested else None)
            parent = os.path.dirname(self.folder)
            os.makedirs(parent, exist_ok=True)
            work = tempfile.mkdtemp(prefix=f".{os.path.basename(self.folder)}-install-", dir=parent)
            result = InstallResult(False, "")
            to_install = self._resolve(plan, probe, pins, work, result, logged, progress)
            if to_install:
                staging = self._stage(plan, to_install, work, result, logged, progress)
                self._place_and_check(plan, probe, to_install, staging, work, result, logged, progress)
            else:
                result.ok = True
                result.message = translate("PackageInstaller", "Nothing to install: every package is already there.")
                logged(result.message)
                progress(100)
            if result.ok and compiles:
                self.compile_kernels(logged)
                whole(100)
            if result.ok:
                logged(translate("PackageInstaller", "Done in {:.0f} s.").format(time.monotonic() - started))
            return self._finish(result)
        except _Canceled:
            return self._canceled_result()
        except InstallError as exc:
            return self._result(False, str(exc))
        except Exception as exc:  # noqa: BLE001 - an unexpected failure still leaves the folder as it was
            return self._result(False, translate("PackageInstaller", "The installation failed: {}").format(
                f"{type(exc).__name__}: {exc}"))
        finally:
            if work:
                shutil.rmtree(work, ignore_errors=True)

    def compile_kernels(self, log) -> bool:
        """Compile pynndescent's NN-Descent kernels into numba's cache, with the folder's packages (about a minute
        on 2 cores, once). The packages are installed whatever happens here: a failure or a cancel only means that
        the first kNN run of 50 000 patches or more compiles them. Returns whether they are compiled and cached."""
        log(translate("PackageInstaller", "Compiling the kNN graph kernels for this machine (once, about a "
                                          "minute)…"))
        code, _ = self._run([self.python, "-c", KERNELS_SCRIPT, self.folder, json.dumps(self.extra_paths),
                             PLUGIN_FOLDER], log, timeout=900)
        if code != 0:
            log(translate("PackageInstaller", "The kNN graph kernels were not compiled now ({}); the packages are "
                                              "installed, and the first kNN run of 50 000 patches or more will "
                                              "compile them (about a minute, once).").format(
                translate("PackageInstaller", "canceled") if code is None else
                translate("PackageInstaller", "exit code {}").format(code)))
        return code == 0

    def _unusable(self, probe: Probe) -> str | None:
        if not probe.pip:
            return translate("PackageInstaller", "pip is not available to the Python of this QGIS ({}). Install it "
                                                 "(on Debian or Ubuntu: sudo apt install python3-pip), then try "
                                                 "again.").format(probe.python)
        if version_tuple(probe.pip) < MIN_PIP:
            return translate("PackageInstaller", "The pip of this QGIS's Python is too old ({}; the installer needs "
                                                 "22.2 or later). Update it with: {} -m pip install --user --upgrade "
                                                 "pip").format(probe.pip, probe.python)
        return None

    def _resolve(self, plan: Plan, probe: Probe, pins: dict, work: str, result: InstallResult, log,
                 progress) -> list:
        """pip's resolver, dry run: what to install into the folder (never what QGIS ships)."""
        constraints_file = os.path.join(work, "constraints.txt")
        with open(constraints_file, "w", encoding="utf-8") as out:
            out.write("\n".join(plan.constraints) + "\n")
        numpy_rule = numpy_constraint(probe)
        if probe.numpy:
            log(translate("PackageInstaller", "QGIS has numpy {}{}: it is kept and never installed into the plugin's "
                                              "folder.").format(probe.numpy, translate(
                "PackageInstaller", ", which its GDAL bindings import") if probe.gdal_array else ""))
        elif numpy_rule:
            log(translate("PackageInstaller", "QGIS's GDAL bindings were built for numpy {}: numpy is limited to "
                                              "{}.").format(probe.gdal_numpy_major, numpy_rule))
        log(translate("PackageInstaller", "Finding versions of {} that fit this QGIS…").format(
            ", ".join(plan.packages)))
        report = os.path.join(work, "report.json")
        seen = [0]

        def resolving(line):
            if line.startswith(("Collecting", "Processing", "Requirement already satisfied")):
                seen[0] += 1
                progress(5 + 20 * (1 - 1 / (1 + seen[0] / 10)))

        code, output = self._run(plan.resolve_command(report, constraints_file), log, resolving)
        if code is None:
            raise _Canceled()
        if code != 0 or not os.path.exists(report):
            raise InstallError(translate("PackageInstaller", "pip found no versions of {} that fit this QGIS:\n{}")
                               .format(", ".join(plan.packages), tail(output)))
        with open(report, encoding="utf-8") as answer:
            to_install, shipped = split_shipped(parse_report(answer.read()), probe)
        cuda = [dist.name for dist in to_install if canonical_name(dist.name).startswith("nvidia-")]
        if cuda:
            raise InstallError(translate(
                "PackageInstaller", "pip chose a torch built for CUDA, which would add {} packages of NVIDIA "
                                    "libraries (several GB): {}. The plugin runs DINOv2 on the CPU; install the CPU "
                                    "build of torch (index {}) or leave torch out.").format(
                len(cuda), ", ".join(cuda[:4] + (["…"] if len(cuda) > 4 else [])), TORCH_CPU_INDEX))
        for dist, version in shipped:
            result.kept_from_qgis.append(translate("PackageInstaller", "{0} {1} ({2} wanted)").format(
                dist.name, version, dist.version))
            log(translate("PackageInstaller", "{0} {1} would be needed, but QGIS ships {0} {2}, which Python finds "
                                              "first: it is not installed (the check after installing tells whether "
                                              "QGIS's copy works).").format(dist.name, dist.version, version))
        for dist in to_install:
            pinned = pins.get(canonical_name(dist.name))
            if pinned and version_tuple(dist.version) != version_tuple(pinned[1]):
                log(translate("PackageInstaller", "{} {} instead of the tested {}: the tested version does not fit "
                                                  "this QGIS.").format(dist.name, dist.version, pinned[1]))
        progress(25)
        return to_install

    def _stage(self, plan: Plan, to_install: list, work: str, result: InstallResult, log, progress) -> str:
        """Install ``to_install`` into a staging folder: wheels in one pip run, each source distribution alone
        (it may need a compiler; one that cannot be built is left out, not fatal)."""
        staging = os.path.join(work, "staging")
        log(translate("PackageInstaller", "Installing {} packages: {}").format(
            len(to_install), ", ".join(f"{d.name} {d.version}" for d in to_install)))
        done = [0]

        def installing(line):
            if line.startswith(("Processing", "Collecting")):
                done[0] += 1
                progress(25 + 55 * min(done[0], len(to_install)) / (len(to_install) + 1))

        wheels = [dist for dist in to_install if dist.is_wheel]
        if wheels:
            code, output = self._run(plan.install_command(staging, [d.requirement for d in wheels]), log, installing)
            if code is None:
                raise _Canceled()
            if code != 0:
                raise InstallError(translate("PackageInstaller", "pip could not install {}:\n{}").format(
                    ", ".join(d.name for d in wheels), tail(output)))
        for dist in to_install:
            if dist.is_wheel:
                continue
            code, output = self._run(plan.install_command(staging, [dist.requirement]), log, installing)
            if code is None:
                raise _Canceled()
            if code != 0:
                result.not_built.append(dist.name)
                log(translate("PackageInstaller", "{} could not be built from source (no wheel for this Python and "
                                                  "platform; building needs a C/C++ compiler); what needs it stays "
                                                  "unavailable:\n{}").format(dist.name, tail(output, 6)))
        progress(80)
        if self.canceled:
            raise _Canceled()
        if not os.path.isdir(staging):
            raise InstallError(translate("PackageInstaller", "pip installed nothing."))
        return staging

    def _place_and_check(self, plan: Plan, probe: Probe, to_install: list, staging: str, work: str,
                         result: InstallResult, log, progress) -> None:
        """Move into the folder, check in a fresh interpreter, keep or roll back (seconds: no cancel here)."""
        log(translate("PackageInstaller", "Moving the packages into {}").format(self.folder))
        change = move_into_place(staging, self.folder, os.path.join(work, "backup"))
        progress(85)
        not_built = {canonical_name(name) for name in result.not_built}
        checks = {}
        for name in plan.packages:
            if canonical_name(name) not in not_built:
                module = self.module_of(name)
                checks[module] = SMOKE_TESTS.get(module, f"import {module}")
        log(translate("PackageInstaller", "Checking that QGIS's GDAL and every package still work…"))
        problems = self.verify(checks, probe)
        progress(95)
        if problems:
            change.rollback()
            result.problems = problems
            result.message = translate("PackageInstaller", "The installation was rolled back, the plugin's folder "
                                                           "is as it was: after installing, {}").format("; ".join(
                translate("PackageInstaller", "{} failed: {}").format(module, error)
                for module, error in problems.items()))
            if result.kept_from_qgis:
                result.message += "\n" + translate(
                    "PackageInstaller", "Likely cause: the Python of this QGIS has older versions of packages they "
                                        "need, which Python finds before the plugin's folder and which the installer "
                                        "does not replace: {}.").format("; ".join(result.kept_from_qgis))
            log(result.message)
            return
        change.commit()
        result.installed = [f"{d.name} {d.version}" for d in to_install if canonical_name(d.name) not in not_built]
        result.ok = True
        result.message = translate("PackageInstaller", "Installed into {}: {}.").format(
            self.folder, ", ".join(result.installed))
        if result.not_built:
            result.message += " " + translate("PackageInstaller", "Not installed (could not be built): {}.").format(
                ", ".join(result.not_built))
        log(result.message)
        progress(100)

    def verify(self, modules: dict, probe: Probe) -> dict:
        """``module -> error`` for whatever fails in a fresh interpreter with the folder appended to sys.path."""
        checks = {"gdal": probe.gdal_array, "modules": modules, "numpy_from_qgis": probe.numpy}
        command = [self.python, "-c", VERIFY_SCRIPT, self.folder, json.dumps(self.extra_paths), json.dumps(checks)]
        self.commands.append(command)
        try:
            run = subprocess.run(command, check=False, capture_output=True, encoding="utf-8", errors="replace",
                                 env=self.env, timeout=600, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return {"python": translate("PackageInstaller", "the check did not finish within 10 minutes")}
        for line in reversed(run.stdout.splitlines()):
            if line.startswith("BALANCED_SAMPLING_VERIFY "):
                return json.loads(line.split(" ", 1)[1])
        return {"python": translate("PackageInstaller", "the check crashed (exit code {}): {}").format(
            run.returncode, tail(run.stderr or run.stdout, 5))}

    def _finish(self, result: InstallResult) -> InstallResult:
        result.log = list(self.log_lines)
        return result

    def _result(self, ok: bool, message: str) -> InstallResult:
        self.log_lines.append(message)
        return self._finish(InstallResult(ok, message))

    def _canceled_result(self) -> InstallResult:
        result = self._result(False, translate("PackageInstaller", "Installation canceled; the plugin's folder is "
                                                                   "as it was."))
        result.canceled = True
        return result


class _Canceled(Exception):
    pass


def _kill_tree(process) -> None:
    """Kill ``process`` and what it started (pip builds run in child processes)."""
    if process.poll() is not None:
        return
    try:
        if os.name == "nt":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], check=False, capture_output=True,
                           creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        else:
            os.killpg(process.pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass
    try:
        process.kill()
    except OSError:
        pass
