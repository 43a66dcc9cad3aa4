"""The dependency installer (Plugins > Balanced Sampling > Install Python packages…), offline.

The integration tests install with Debian's own Python (/usr/bin/python3, the one QGIS embeds: numpy 1.24, scipy,
PyYAML, no pandas) from build/wheelhouse, which `make setup` fills, into a throw-away QGIS profile, and run an
algorithm from it with a bare qgis_process (no venv). pip's configuration of this machine is switched off
(PIP_CONFIG_FILE=/dev/null): nothing but the wheelhouse, or a folder a test builds, is reachable.
"""

import base64
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from tests.conftest import ROOT

SYSTEM_PYTHON = "/usr/bin/python3"
QGIS_PROCESS = "/usr/bin/qgis_process.bin"
WHEELHOUSE = os.path.join(ROOT, "build", "wheelhouse")
PLUGINS = os.path.join(ROOT, "build", "qgis_plugins")
os.makedirs(PLUGINS, exist_ok=True)
if not os.path.exists(os.path.join(PLUGINS, "balanced_sampling")):
    os.symlink(ROOT, os.path.join(PLUGINS, "balanced_sampling"))
if PLUGINS not in sys.path:
    sys.path.insert(0, PLUGINS)

from balanced_sampling.balanced_sampling_plugin import dependencies  # noqa: E402
from balanced_sampling.processing_provider import package_installer as pi  # noqa: E402


def bare_env(profile=None):
    """Debian's Python as QGIS runs it: no venv, no PYTHONPATH, and no pip configuration (offline)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=PLUGINS,
               XDG_RUNTIME_DIR="/tmp/runtime-root")
    if profile is not None:
        env["QGIS_CUSTOM_CONFIG_PATH"] = str(profile)
    return env


def _system_python_has(module):
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", code], check=False, env=bare_env())
    return probe.returncode == 0


HAS_SYSTEM_PYTHON = os.path.exists(SYSTEM_PYTHON) and _system_python_has("numpy") and _system_python_has("pip")
needs_system_python = pytest.mark.skipif(
    not HAS_SYSTEM_PYTHON or _system_python_has("pandas"),
    reason="needs Debian's /usr/bin/python3 with numpy and pip but without pandas (QGIS's Python here)")
needs_wheelhouse = pytest.mark.skipif(
    not os.path.exists(os.path.join(WHEELHOUSE, ".complete")),
    reason="build/wheelhouse is not filled: `make setup` could not reach the package registry")
needs_qgis_process = pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="QGIS 3.22 is not installed")
OFFLINE = ["--no-index", "--find-links", WHEELHOUSE]


def system_numpy_version():
    return subprocess.run([SYSTEM_PYTHON, "-c", "import numpy; print(numpy.__version__)"], check=True,
                          capture_output=True, text=True, env=bare_env()).stdout.strip()


def packages_folder(profile):
    return os.path.join(str(profile), "profiles", "default", "python", "balanced_sampling_packages")


def snapshot(folder):
    """Every file and folder under ``folder`` with its content's hash: equal snapshots, same folder."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), folder) + "/"] = None
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as content:
                found[os.path.relpath(path, folder)] = hashlib.sha1(content.read()).hexdigest()
    return found


def build_wheel(folder, name, version, files, requires=()):
    """A minimal pure-Python wheel (no setuptools needed); ``files``: path in the wheel -> text."""
    dist_info = f"{name}-{version}.dist-info"
    entries = dict(files)
    entries[f"{dist_info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                        + "".join(f"Requires-Dist: {r}\n" for r in requires))
    entries[f"{dist_info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = ""
    for path, text in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(text.encode())}\n"
    entries[f"{dist_info}/RECORD"] = record + f"{dist_info}/RECORD,,\n"
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in entries.items():
            wheel.writestr(member, text)
    return path


def system_installer(folder, packages, index_options=OFFLINE, **kwargs):
    return pi.Installer(str(folder), packages, python=SYSTEM_PYTHON, index_options=index_options, env=bare_env(),
                        **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# The rules, without running pip


def test_numpy_is_pinned_to_qgis_own_and_limited_by_what_gdal_was_built_for():
    # QGIS has numpy and GDAL imports with it: exactly that version, so pip never installs nor upgrades it.
    assert pi.numpy_constraint(pi.Probe("py", numpy="1.24.2", gdal_array=True, gdal_numpy_build=1)) == "numpy==1.24.2"
    # Same even when GDAL does not import (QGIS's own business; the check after installing then skips GDAL).
    assert pi.numpy_constraint(pi.Probe("py", numpy="2.1.0", gdal_array=False)) == "numpy==2.1.0"
    # No numpy: what GDAL's extension was built for decides.
    assert pi.numpy_constraint(pi.Probe("py", gdal_numpy_build=1)) == "numpy<2"
    assert pi.numpy_constraint(pi.Probe("py", gdal_numpy_build=2)) == "numpy>=2"
    assert pi.numpy_constraint(pi.Probe("py")) is None
    assert pi.Probe("py", numpy="1.26.4", gdal_array=True, gdal_numpy_build=2).gdal_numpy_major == 1
    assert pi.version_tuple("4.0.2+dfsg") == (4, 0, 2) and pi.version_tuple("2.0.0rc1") == (2, 0, 0)


def test_pins_are_ceilings_for_what_qgis_does_not_ship_and_known_breakages_are_avoided():
    pins = {"pandas": ("pandas", "2.3.3"), "scipy": ("scipy", "1.15.3"), "numpy": ("numpy", "1.26.4"),
            "affine": ("affine", "3.0.1")}
    debian = pi.Probe("py", numpy="1.24.2", gdal_array=True,
                      distributions={"numpy": "1.24.2", "scipy": "1.10.1", "attrs": "22.2.0"})
    lines = pi.constraint_lines(debian, pins)
    assert lines[0] == "numpy==1.24.2"
    assert "pandas<=2.3.3" in lines and "affine<=3.0.1" in lines
    assert not [line for line in lines if line.startswith("scipy")]  # QGIS's scipy is not ours to choose
    assert "affine<3" in lines  # affine 3 breaks at first use with attrs < 24
    newer_attrs = pi.Probe("py", distributions={"attrs": "24.2.0"}, gdal_numpy_build=1)
    lines = pi.constraint_lines(newer_attrs, pins)
    assert "affine<3" not in lines and "numpy<2" in lines and "numpy<=1.26.4" in lines
    assert "numpy<=1.26.4" not in pi.constraint_lines(pi.Probe("py", gdal_numpy_build=2), pins)
    # What QGIS ships is not asked for at all.
    assert pi.packages_to_request(["numpy", "pandas", "PyYAML", "scikit-learn"],
                                  pi.Probe("py", modules={"numpy": True, "yaml": True, "pandas": False})) == \
        ["pandas", "scikit-learn"]
    # dask and distributed only when the dialog's Dask box is ticked, torch & co. only with the torch box.
    assert pi.default_selection() == list(dependencies.RUNTIME_PACKAGES)
    assert pi.default_selection(with_dask=True)[-2:] == ["dask", "distributed"]
    assert "torch" not in pi.default_selection(with_dask=True)
    assert pi.packages_to_request(pi.default_selection(with_torch=True, with_dask=True),
                                  pi.Probe("py", modules={"numpy": True, "dask": True}))[-4:] == \
        ["torch", "transformers", "safetensors", "distributed"]


def test_the_shipped_pins_cover_every_package_the_installer_offers():
    pins = pi.read_pins()
    for name in dependencies.RUNTIME_PACKAGES + dependencies.OPTIONAL_PACKAGES + dependencies.SCALE_OUT:
        assert dependencies.canonical_name(name) in pins, name


def test_pip_runs_with_the_detected_interpreter(tmp_path):
    installer = pi.Installer(str(tmp_path / "packages"))
    assert installer.python == dependencies.python_interpreter()
    plan = pi.Plan("/opt/qgis/bin/python3.11", str(tmp_path / "packages"), ["pandas"], ["numpy==1.24.2"],
                   index_options=None, extra_paths=["/usr/share/qgis/python"], torch_index=pi.TORCH_CPU_INDEX)
    resolve = plan.resolve_command("report.json", "constraints.txt")
    install = plan.install_command("staging", ["pandas==2.3.3"])
    assert resolve[0] == install[0] == "/opt/qgis/bin/python3.11"
    assert resolve[resolve.index("--report") + 1] == "report.json" and "--dry-run" in resolve
    assert json.loads(resolve[3]) == ["/usr/share/qgis/python", str(tmp_path / "packages")]  # appended, in order
    assert install[1:4] == ["-m", "pip", "install"] and "--no-deps" in install
    assert install[install.index("--target") + 1] == "staging" and install[-1] == "pandas==2.3.3"
    assert pi.TORCH_CPU_INDEX in resolve  # torch asked + pip's own index: CPU wheels, not CUDA
    offline = pi.Plan("py", "f", ["torch"], [], index_options=["--no-index"], torch_index=pi.TORCH_CPU_INDEX)
    assert pi.TORCH_CPU_INDEX not in offline.resolve_command("r", "c")


def test_what_qgis_ships_is_never_installed_into_the_folder():
    report = json.dumps({"install": [
        {"metadata": {"name": "pandas", "version": "2.3.3"}, "requested": True,
         "download_info": {"url": "file:///w/pandas-2.3.3-cp311-cp311-manylinux_2_28_x86_64.whl"}},
        {"metadata": {"name": "sympy", "version": "1.14.0"}, "download_info": {"url": "https://x/sympy-1.14.0.whl"}},
        {"metadata": {"name": "hnswlib", "version": "0.8.0"},
         "download_info": {"url": "https://x/hnswlib-0.8.0.tar.gz"}},
    ]})
    resolved = pi.parse_report(report)
    install, kept = pi.split_shipped(resolved, pi.Probe("py", distributions={"SymPy": "1.11.1"}))
    assert [d.name for d in install] == ["pandas", "hnswlib"]
    assert [(d.name, version) for d, version in kept] == [("sympy", "1.11.1")]
    assert install[0].requested and install[0].is_wheel and not install[1].is_wheel


def _fake_install(folder, name, version, modules):
    """A distribution as pip --target leaves it: its files plus a dist-info with RECORD."""
    dist_info = os.path.join(folder, f"{name}-{version}.dist-info")
    os.makedirs(dist_info, exist_ok=True)
    for rel, text in modules.items():
        os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
        with open(os.path.join(folder, rel), "w") as out:
            out.write(text)
    with open(os.path.join(dist_info, "METADATA"), "w") as out:
        out.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    with open(os.path.join(dist_info, "RECORD"), "w") as out:
        out.write("".join(f"{rel},,\n" for rel in modules) + f"{name}-{version}.dist-info/METADATA,,\n")


def test_moving_into_place_replaces_older_versions_and_rolls_back_exactly(tmp_path):
    folder, staging = tmp_path / "packages", tmp_path / "staging"
    _fake_install(folder, "demo", "1.0", {"demo/__init__.py": "V = 1", "demo/old_only.py": "",
                                          "demo/__pycache__/old_only.cpython-311.pyc": "x"})
    _fake_install(folder, "other", "3.0", {"other.py": "keep me"})
    before = snapshot(folder)
    _fake_install(staging, "demo", "2.0", {"demo/__init__.py": "V = 2", "demo/new_only.py": ""})
    _fake_install(staging, "fresh", "0.1", {"fresh/__init__.py": ""})

    change = pi.move_into_place(str(staging), str(folder), str(tmp_path / "backup"))
    after = snapshot(folder)
    assert "demo-2.0.dist-info/RECORD" in after and "fresh/__init__.py" in after and "other.py" in after
    assert not [path for path in after if path.startswith("demo-1.0") or "old_only" in path]
    assert (folder / "demo" / "__init__.py").read_text() == "V = 2"
    change.rollback()
    assert snapshot(folder) == before

    fresh, staging_fresh = tmp_path / "fresh_folder", tmp_path / "staging_fresh"
    _fake_install(staging_fresh, "fresh", "0.1", {"fresh/__init__.py": ""})
    change = pi.move_into_place(str(staging_fresh), str(fresh), str(tmp_path / "backup2"))
    assert (fresh / "fresh" / "__init__.py").exists()
    change.rollback()
    assert not fresh.exists()  # no folder before, no folder after

    staging2 = tmp_path / "staging2"
    _fake_install(staging2, "demo", "2.0", {"demo/__init__.py": "V = 2"})
    change = pi.move_into_place(str(staging2), str(folder), str(tmp_path / "backup3"))
    change.commit()
    assert not (tmp_path / "backup3").exists()
    assert not (folder / "demo-1.0.dist-info").exists() and not (folder / "demo" / "old_only.py").exists()


# ---------------------------------------------------------------------------------------------------------------
# pip for real, with Debian's Python (QGIS's), offline


@needs_system_python
def test_the_probe_reads_numpy_and_what_gdal_was_built_for(tmp_path):
    numpy_version = system_numpy_version()
    probe = system_installer(tmp_path / "p", ["pandas", "PyYAML"]).probe()
    assert probe.numpy == numpy_version and numpy_version.startswith("1.")
    assert probe.gdal_array is True and probe.gdal_numpy_major == 1
    assert probe.gdal_numpy_build == 1  # read from Debian's _gdal_array extension: built for numpy 1
    assert probe.modules["yaml"] is True and probe.modules["pandas"] is False
    assert probe.shipped_version("NumPy") == numpy_version and probe.pip


COMBINE_INPUT = r"""
from osgeo import ogr, osr
import sys
ds = ogr.GetDriverByName('GPKG').CreateDataSource(sys.argv[1])
srs = osr.SpatialReference(); srs.ImportFromEPSG(32633)
layer = ds.CreateLayer('patches', srs, ogr.wkbPolygon)
fields = [('image_path', ogr.OFTString), ('mask_path', ogr.OFTString), ('row_off', ogr.OFTInteger),
          ('col_off', ogr.OFTInteger), ('patch_size', ogr.OFTInteger), ('excluded', ogr.OFTInteger),
          ('freq_cluster_id', ogr.OFTInteger), ('freq_cluster_size', ogr.OFTInteger),
          ('freq_cluster_weight', ogr.OFTReal), ('uniqueness_score', ogr.OFTReal)]
for name, kind in fields:
    layer.CreateField(ogr.FieldDefn(name, kind))
for i in range(8):
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(f'POLYGON(({i} 0,{i + 1} 0,{i + 1} 1,{i} 1,{i} 0))'))
    values = dict(image_path='a.tif', mask_path='m.tif', row_off=0, col_off=8 * i, patch_size=8, excluded=int(i == 7),
                  freq_cluster_id=i % 2, freq_cluster_size=4, freq_cluster_weight=0.25 + 0.5 * (i % 2),
                  uniqueness_score=i / 8)
    for key, value in values.items():
        feature.SetField(key, value)
    layer.CreateFeature(feature)
"""


def _combine(profile, tmp_path, tag):
    arguments = [f"INPUT={tmp_path / 'patches.gpkg'}", "SAMPLING_METHOD=0",  # rank_max: clusters and uniqueness
                 f"OUTPUT={tmp_path / f'{tag}.gpkg'}", f"OUTPUT_CSV={tmp_path / f'{tag}.csv'}",
                 f"OUTPUT_REPORT={tmp_path / f'{tag}.html'}"]
    return subprocess.run([QGIS_PROCESS, "run", "balanced_sampling:combinesamplerweights", "--json", "--", *arguments],
                          check=False, capture_output=True, text=True, env=bare_env(profile), timeout=300)


@needs_system_python
@needs_wheelhouse
@needs_qgis_process
def test_installs_offline_into_the_profile_and_an_algorithm_runs_from_it(tmp_path):
    """Debian's QGIS lacks pandas: Combine sampler weights (numpy, pandas, scipy) refuses; after installing pandas
    (and asking for PyYAML, which QGIS ships) into the profile's packages folder, it runs. numpy stays QGIS's."""
    profile = tmp_path / "profile"
    subprocess.run([SYSTEM_PYTHON, "-c", COMBINE_INPUT, str(tmp_path / "patches.gpkg")], check=True, env=bare_env())
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "balanced_sampling"], check=False,
                            capture_output=True, text=True, env=bare_env(profile), timeout=120)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    refused = _combine(profile, tmp_path, "before")
    assert refused.returncode != 0 and "needs the Python packages pandas" in refused.stdout + refused.stderr

    folder = packages_folder(profile)
    installer = system_installer(folder, ["pandas", "PyYAML"])
    lines = []
    started = time.monotonic()
    result = installer.run(log=lines.append)
    took = time.monotonic() - started
    assert result.ok, "\n".join(lines[-30:])
    print(f"installed {result.installed} in {took:.1f} s")
    assert took < 120
    assert [entry.split()[0] for entry in result.installed if entry.startswith("pandas")] == ["pandas"]
    assert all(command[0] == SYSTEM_PYTHON for command in installer.commands)  # the detected interpreter's pip
    # Nothing QGIS ships lands in the folder: no numpy, no PyYAML.
    probe = installer.probe()
    shipped = {dependencies.canonical_name(name) for name in probe.distributions}
    entries = os.listdir(folder)
    assert not [e for e in entries if e.lower().startswith(("numpy", "yaml", "pyyaml"))], entries
    for entry in entries:
        if entry.endswith(".dist-info"):
            assert dependencies.canonical_name(entry[:-10].rsplit("-", 1)[0]) not in shipped, entry
    assert any(f"QGIS has numpy {probe.numpy}" in line for line in lines)
    assert not [name for name in os.listdir(os.path.dirname(folder)) if "-install-" in name]  # work folder gone

    ran = _combine(profile, tmp_path, "after")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    answer = json.loads(ran.stdout)
    assert answer["results"]["INCLUDED_PATCHES"] == 7 and answer["results"]["EXCLUDED_PATCHES"] == 1
    assert (tmp_path / "after.csv").exists()

    again = system_installer(folder, ["pandas"]).run()
    assert again.ok and again.installed == [] and "Nothing to install" in again.message


@needs_system_python
def test_a_package_that_needs_numpy_2_is_refused_and_numpy_is_left_alone(tmp_path):
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "needsnumpy2", "1.0", {"needsnumpy2/__init__.py": ""}, requires=["numpy>=2"])
    build_wheel(wheels, "numpy", "2.0.0", {"numpy/__init__.py": "__version__ = '2.0.0'"})  # pip could take it...
    folder = tmp_path / "packages"
    result = system_installer(folder, ["needsnumpy2"], index_options=["--no-index", "--find-links", str(wheels)]).run()
    assert not result.ok and "numpy" in result.message, result.message
    assert not folder.exists()  # ...but QGIS's numpy is pinned, so nothing is installed


@needs_system_python
def test_a_failed_check_after_installing_rolls_the_folder_back(tmp_path):
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "bsdemo", "1.0", {"bsdemo/__init__.py": "VERSION = 1\n"})
    folder = tmp_path / "profile" / "python" / "balanced_sampling_packages"
    first = system_installer(folder, ["bsdemo"], index_options=["--no-index", "--find-links", str(wheels)]).run()
    assert first.ok and first.installed == ["bsdemo 1.0"], first.message
    (folder / "notes.txt").write_text("a file the user put there")
    before = snapshot(folder)

    build_wheel(wheels, "bsdemo", "2.0", {"bsdemo/__init__.py": "raise ImportError('bsdemo 2.0 is broken')\n",
                                          "bsdemo/extra.py": ""})
    installer = system_installer(folder, ["bsdemo>=2"], index_options=["--no-index", "--find-links", str(wheels)],
                                 modules={"bsdemo>=2": "bsdemo"})
    result = installer.run()
    assert not result.ok and "rolled back" in result.message
    assert "bsdemo 2.0 is broken" in result.problems["bsdemo"]
    assert snapshot(folder) == before  # restored: version 1.0, the user's file, nothing of 2.0
    assert not [name for name in os.listdir(folder.parent) if "-install-" in name]


class _StallingFindLinks(http.server.BaseHTTPRequestHandler):
    """A package index that never answers: pip waits on it until killed."""

    asked = threading.Event()
    release = threading.Event()

    def do_GET(self):  # noqa: N802 (http.server API)
        type(self).asked.set()
        type(self).release.wait(60)

    def log_message(self, *args):
        pass


@needs_system_python
def test_cancel_kills_pip_and_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    folder = tmp_path / "packages"
    folder.mkdir()
    (folder / "keep.py").write_text("x = 1")
    before = snapshot(folder)
    started = []
    real_popen = pi.subprocess.Popen

    def recording_popen(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(pi.subprocess, "Popen", recording_popen)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallingFindLinks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        installer = system_installer(folder, ["pandas"], index_options=["--no-index", "--find-links", url])
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.update(result=installer.run()))
        worker.start()
        assert _StallingFindLinks.asked.wait(60), "pip never asked the index"
        pip = started[-1]
        assert pip.poll() is None  # pip is waiting on the index
        canceled_at = time.monotonic()
        installer.cancel()
        worker.join(15)
        assert not worker.is_alive() and time.monotonic() - canceled_at < 5
        assert pip.returncode == -9  # killed, not left to time out
        result = outcome["result"]
        assert result.canceled and not result.ok
        assert snapshot(folder) == before
        assert not [name for name in os.listdir(tmp_path) if "-install-" in name]
    finally:
        _StallingFindLinks.release.set()
        server.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# The menu entry, the dialog and the task, in a QGIS with a GUI (offscreen) on Debian's Python: pandas missing

DESKTOP = r"""
import json, sys, time
from qgis.core import QgsApplication
from qgis.PyQt.QtWidgets import QMainWindow
from qgis.gui import QgsMessageBar
app = QgsApplication([], True)
app.initQgis()
sys.path[:0] = ["/usr/share/qgis/python/plugins", sys.argv[1]]
from processing.core.Processing import Processing
Processing.initialize()

class Iface:
    # the few QgisInterface calls the plugin makes
    def __init__(self):
        self.window, self.bar, self.menus = QMainWindow(), QgsMessageBar(), {}
    def mainWindow(self): return self.window
    def messageBar(self): return self.bar
    def addPluginToMenu(self, menu, action): self.menus.setdefault(menu, []).append(action)
    def removePluginMenu(self, menu, action): self.menus[menu].remove(action)
    def addToolBar(self, name): return self.window.addToolBar(name)
    def removeToolBarIcon(self, action): pass

import balanced_sampling
iface = Iface()
plugin = balanced_sampling.classFactory(iface)
plugin.initGui()
answer = {"menu": [a.text() for a in iface.menus["&Balanced Sampling"]]}
next(a for a in iface.menus["&Balanced Sampling"] if a.text().startswith("Install")).trigger()
dialog = plugin.packages_dialog
def table():
    return {dialog.table.item(r, 0).text(): [dialog.table.item(r, 1).text(), dialog.table.item(r, 2).text()]
            for r in range(dialog.table.rowCount())}
answer.update(visible=dialog.isVisible(), before=table(), torch_box=dialog.torch_box.text(),
              dask_box=[dialog.dask_box.text(), dialog.dask_box.isChecked()],
              status_before=dialog.status.text(), folder=dialog.folder)

def offline(packages):
    # the dialog's own installer, offline, for pandas only (the pinned wheelhouse has no versions for the rest
    # that fit Debian's numpy 1.24; online, pip picks them)
    installer = dialog.make_installer(packages)
    installer.index_options = ["--no-index", "--find-links", sys.argv[2]]
    answer["selection"] = list(installer.packages)
    installer.packages = ["pandas"]
    return installer
dialog.installer_factory = offline
messages, progress = [], []
QgsApplication.messageLog().messageReceived.connect(
    lambda message, tag, level: messages.append(message) if tag == "Balanced Sampling" else None)
dialog.install()
task = dialog.task
task.progressChanged.connect(progress.append)
answer["buttons_while_running"] = [dialog.install_button.isEnabled(), dialog.cancel_button.isEnabled()]
deadline = time.monotonic() + 240
while dialog.task is not None and time.monotonic() < deadline:
    QgsApplication.processEvents()
    time.sleep(0.05)
import importlib.util
answer.update(ended=dialog.task is None, ok=task.result.ok, commands=[c[0] for c in task.installer.commands],
              python=task.installer.python, after=table(), status_after=dialog.status.text(), messages=messages,
              progress=max(progress or [0]), pandas_found=importlib.util.find_spec("pandas") is not None)
plugin.unload()
answer["menu_after_unload"] = [a.text() for a in iface.menus["&Balanced Sampling"]]
print("ANSWER " + json.dumps(answer))
"""


@needs_system_python
@needs_wheelhouse
def test_the_menu_entry_dialog_and_install_task_in_a_qgis_without_pandas(tmp_path):
    profile = tmp_path / "profile"
    run = subprocess.run([SYSTEM_PYTHON, "-c", DESKTOP, PLUGINS, WHEELHOUSE], check=False, capture_output=True,
                         text=True, env=bare_env(profile), timeout=400)
    lines = [line for line in run.stdout.splitlines() if line.startswith("ANSWER ")]
    assert run.returncode == 0 and lines, run.stdout[-3000:] + run.stderr[-3000:]
    answer = json.loads(lines[-1][len("ANSWER "):])
    assert answer["menu"] == ["Build balanced dataset…", "Install Python packages…"]
    assert answer["menu_after_unload"] == []
    assert answer["visible"] and answer["folder"] == packages_folder(profile)
    before = answer["before"]
    assert list(before) == list(dependencies.RUNTIME_PACKAGES + dependencies.OPTIONAL_PACKAGES
                                + dependencies.SCALE_OUT)
    numpy_version = system_numpy_version()
    assert before["numpy"][1] == f"Installed with QGIS ({numpy_version})"
    assert before["pandas"][1] == "Missing" and before["torch"][1] == "Optional, not installed"
    assert "DINOv2" in before["torch"][0] and "200 MB" in before["torch"][0]
    assert "DINOv2" in answer["torch_box"] and "1 GB" in answer["torch_box"]
    assert before["dask"][1] == before["distributed"][1] == "Optional, not installed"  # Debian's Python: no dask
    assert "Dask" in answer["dask_box"][0] and not answer["dask_box"][1]
    assert "pandas" in answer["status_before"]
    # Install: a QgsTask with progress, pip's output in the message log, pip run by the detected interpreter.
    assert answer["selection"] == list(dependencies.RUNTIME_PACKAGES)  # torch, dask only when their box is ticked
    assert answer["buttons_while_running"] == [False, True]
    assert answer["ended"] and answer["ok"], answer["status_after"] + "\n".join(answer["messages"][-20:])
    assert set(answer["commands"]) == {answer["python"]}
    assert os.path.realpath(answer["python"]) == os.path.realpath(SYSTEM_PYTHON)
    assert any(re.match(r"Processing .*pandas-", message) for message in answer["messages"])
    assert any(message.startswith("Installed into") for message in answer["messages"])
    assert answer["progress"] == 100
    # Usable at once, without restarting QGIS: the folder is on sys.path and the dialog sees pandas there.
    assert answer["pandas_found"] and answer["after"]["pandas"][1].startswith("Installed in the plugin's folder")
    assert "Installed into" in answer["status_after"]
    assert os.path.isdir(os.path.join(packages_folder(profile), "pandas"))


@needs_system_python
@needs_wheelhouse
@needs_qgis_process
def test_a_bare_qgis_installs_what_the_chain_needs_and_the_chain_lifts_the_rare_class(synthetic_dataset, tmp_path):
    """Issue 12's user: a QGIS without pandas, rasterio, scikit-learn. The chain with its defaults refuses, naming
    them; the installer puts them in the profile's folder (offline, from the wheelhouse); the chain then runs with
    its defaults (class_balanced, no DINOv2) and lifts the rarest class."""
    import sqlite3

    profile = tmp_path / "profile"
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "balanced_sampling"], check=False,
                            capture_output=True, text=True, env=bare_env(profile), timeout=120)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    outputs = {"OUTPUT": tmp_path / "weights.gpkg", "OUTPUT_CSV": tmp_path / "train.csv",
               "OUTPUT_REPORT": tmp_path / "report.html"}
    arguments = [f"IMAGE_FOLDER={os.path.dirname(synthetic_dataset.images[0])}",
                 f"MASK_FOLDER={os.path.dirname(synthetic_dataset.masks[0])}", "PATCH_SIZE=64",
                 *[f"{key}={value}" for key, value in outputs.items()]]

    def chain():
        return subprocess.run([QGIS_PROCESS, "run", "balanced_sampling:buildbalanceddataset", "--", *arguments],
                              check=False, capture_output=True, text=True, env=bare_env(profile), timeout=600)

    refused = chain()
    assert refused.returncode != 0
    needed = re.search(r"needs the Python packages (.+?), which", refused.stdout + refused.stderr).group(1).split(", ")
    assert "pandas" in needed and "rasterio" in needed and "torch" not in needed, needed

    lines = []
    result = system_installer(packages_folder(profile), needed).run(log=lines.append)
    assert result.ok, "\n".join(lines[-40:])

    ran = chain()
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert "does not read uniqueness, so DINOv2 uniqueness is not computed" in ran.stdout
    with sqlite3.connect(outputs["OUTPUT"]) as db:
        table = db.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'").fetchone()[0]
        rows = db.execute(f'SELECT sampler_weight, cls_6, excluded FROM "{table}"').fetchall()
    included = [(w, p) for w, p, excluded in rows if not excluded]
    uniform = sum(p for _, p in included) / len(included)
    weighted = sum(w * p for w, p in included) / sum(w for w, _ in included)
    assert weighted / uniform > 1.8, f"rare class cls_6: {uniform:.4f} -> {weighted:.4f}"
    assert outputs["OUTPUT_CSV"].exists() and outputs["OUTPUT_REPORT"].exists()


@needs_system_python
def test_the_knn_kernels_are_compiled_with_the_folders_packages(tmp_path):
    """After installing pynndescent the installer compiles its NN-Descent kernels into numba's cache, so that no kNN
    run pays that minute. The venv's site-packages stands in for a folder that holds pynndescent and numba (already
    compiled by `make setup`, so this loads them)."""
    import pynndescent

    site = os.path.dirname(os.path.dirname(pynndescent.__file__))
    lines = []
    installer = system_installer(tmp_path / "packages", ["pynndescent"], extra_paths=[site])
    assert installer.compile_kernels(lines.append), "\n".join(lines)
    assert installer.commands[-1][:2] == [SYSTEM_PYTHON, "-c"] and installer.commands[-1][-1] == pi.PLUGIN_FOLDER
    assert os.path.isfile(os.path.join(pi.PLUGIN_FOLDER, "balanced_sampling_plugin", "nn_descent", "__main__.py"))
    assert any("NN-Descent kernels are already compiled" in line or "Compiled the NN-Descent kernels" in line
               for line in lines), lines

    lines = []
    assert system_installer(tmp_path / "packages", ["pynndescent"]).compile_kernels(lines.append)
    assert any("pynndescent is not installed: nothing to compile" in line for line in lines), lines


@needs_system_python
def test_only_an_installation_with_pynndescent_compiles_kernels(tmp_path, monkeypatch):
    for packages, expected in ((["pynndescent", "pandas"], 1), (["pandas"], 0)):
        installer = system_installer(tmp_path / "packages", packages)
        monkeypatch.setattr(installer, "_resolve", lambda *args: [])  # as if every package were already there
        calls, bar = [], []
        monkeypatch.setattr(installer, "compile_kernels", lambda log: calls.append(bar[-1]) or False)
        result = installer.run(progress=bar.append)
        assert result.ok and len(calls) == expected, (packages, result.message)
        assert bar == sorted(bar) and bar[-1] == 100, bar
        if expected:  # the bar keeps its last tenth for the compilation
            assert calls == [90], bar
