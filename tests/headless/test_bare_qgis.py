"""The plugin in a bare QGIS: Debian's Python has numpy but no pandas, rasterio, scikit-learn, torch or faiss.

Every algorithm must still be listed, and each must refuse to run with ONE message naming every
package it misses and the command that installs them for this QGIS. Checked through qgis_process
and inside QGIS's own Python (processing.run), both without the test venv's packages.
"""

import json
import os
import re
import subprocess

import pytest

from tests.conftest import ROOT

SYSTEM_PYTHON = "/usr/bin/python3"
PLUGINS = os.path.join(ROOT, "build", "qgis_plugins")
ALGORITHMS = ("createpatchfootprints", "computecompositionclusters", "computedinov2uniqueness",
              "combinesamplerweights", "buildbalanceddataset", "importpatchrecords", "loadtilesfrompostgres",
              "buildfromconfig")


def _system_python_has(module):
    if not os.path.exists(SYSTEM_PYTHON):
        return True
    probe = subprocess.run([SYSTEM_PYTHON, "-c", f"import importlib.util, sys; "
                            f"sys.exit(importlib.util.find_spec({module!r}) is None)"], env=_bare_env(None))
    return probe.returncode == 0


def _bare_env(profile):
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=PLUGINS, XDG_RUNTIME_DIR="/tmp/runtime-root")
    if profile is not None:
        env["QGIS_CUSTOM_CONFIG_PATH"] = str(profile)
    return env


pytestmark = [
    pytest.mark.skipif(not os.path.exists("/usr/bin/qgis_process.bin"), reason="QGIS 3.22 is not installed"),
    pytest.mark.skipif(_system_python_has("pandas"),
                       reason="this QGIS's own Python has pandas, so a QGIS without the packages cannot be tried"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A polygon GeoPackage, a records CSV, a config and two folders: enough to get past QGIS's own checks."""
    folder = tmp_path_factory.mktemp("bare")
    layer = folder / "patches.gpkg"
    script = ("from osgeo import ogr, osr; ds = ogr.GetDriverByName('GPKG').CreateDataSource(r'%s'); "
              "srs = osr.SpatialReference(); srs.ImportFromEPSG(32633); "
              "lyr = ds.CreateLayer('patches', srs, ogr.wkbPolygon); "
              "f = ogr.Feature(lyr.GetLayerDefn()); "
              "f.SetGeometry(ogr.CreateGeometryFromWkt('POLYGON((0 0,1 0,1 1,0 1,0 0))')); lyr.CreateFeature(f)"
              % layer)
    subprocess.run([SYSTEM_PYTHON, "-c", script], check=True, env=_bare_env(None))
    (folder / "records.csv").write_text("image_path,mask_path,row_off,col_off,patch_size\na.tif,b.tif,0,0,8\n")
    (folder / "config.yaml").write_text("balanced_dataset: {input: {patch_records: records.csv}, "
                                        "output: {csv_path: out.csv}}\n")
    (folder / "images").mkdir()
    os.makedirs(PLUGINS, exist_ok=True)
    link = os.path.join(PLUGINS, "balanced_sampling")
    if not os.path.exists(link):
        os.symlink(ROOT, link)
    out = str(folder / "out")
    return {
        "createpatchfootprints": {"IMAGE_FOLDER": str(folder / "images"), "OUTPUT": out + "1.gpkg"},
        "computecompositionclusters": {"INPUT": str(layer), "OUTPUT": out + "2.gpkg"},
        "computedinov2uniqueness": {"INPUT": str(layer), "OUTPUT": out + "3.gpkg"},
        "combinesamplerweights": {"INPUT": str(layer), "OUTPUT": out + "4.gpkg"},
        "buildbalanceddataset": {"IMAGE_FOLDER": str(folder / "images"), "MASK_FOLDER": str(folder / "images"),
                                 "OUTPUT": out + "5.gpkg", "OUTPUT_CSV": out + ".csv", "OUTPUT_REPORT": out + ".html"},
        "importpatchrecords": {"INPUT": str(folder / "records.csv"), "OUTPUT": out + "6.gpkg"},
        "loadtilesfrompostgres": {"OUTPUT": out + "7.gpkg"},
        "buildfromconfig": {"CONFIG": str(folder / "config.yaml")},
    }


def _check_message(algorithm, text, profile):
    match = re.search(r"needs the Python packages (.+?), which the Python of this QGIS cannot import", text)
    assert match, f"{algorithm}: {text[-1500:]}"
    missing = match.group(1).split(", ")
    assert "pandas" in missing[0] or "pandas" in missing, f"{algorithm} should miss pandas: {missing}"
    pip_names = {"scikit-learn": "sklearn", "PyYAML": "yaml", "faiss-cpu": "faiss", "psycopg2-binary": "psycopg2"}
    for name in missing:
        assert not _system_python_has(pip_names.get(name, name)), f"{name} is installed, yet reported missing"
    assert "Install Python packages" in text
    folder = os.path.join(str(profile), "profiles", "default", "python", "balanced_sampling_packages")
    assert re.search(rf"python3\.\d+ -m pip install --target {re.escape(folder)} .*pandas", text), text[-800:]
    return missing


def test_every_algorithm_is_listed_and_names_what_it_misses_through_qgis_process(inputs, tmp_path):
    profile = tmp_path / "profile"
    enable = subprocess.run(["/usr/bin/qgis_process.bin", "plugins", "enable", "balanced_sampling"],
                            capture_output=True, text=True, env=_bare_env(profile), timeout=120)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    listed = subprocess.run(["/usr/bin/qgis_process.bin", "list"], capture_output=True, text=True,
                            env=_bare_env(profile), timeout=120)
    assert "error starting plugin" not in listed.stdout + listed.stderr
    for algorithm in ALGORITHMS:
        assert f"balanced_sampling:{algorithm}\t" in listed.stdout, algorithm
    assert "balanced_sampling:Build balanced dataset model" in listed.stdout

    needs = {}
    for algorithm in ALGORITHMS:
        arguments = [f"{key}={value}" for key, value in inputs[algorithm].items()]
        run = subprocess.run(["/usr/bin/qgis_process.bin", "run", f"balanced_sampling:{algorithm}", "--",
                              *arguments], capture_output=True, text=True, env=_bare_env(profile), timeout=120)
        assert run.returncode != 0, algorithm
        needs[algorithm] = _check_message(algorithm, run.stdout + run.stderr, profile)
    assert "torch" in needs["computedinov2uniqueness"] and "faiss-cpu" in needs["computedinov2uniqueness"]
    assert "torch" not in needs["combinesamplerweights"]
    assert "scikit-learn" in needs["computecompositionclusters"]


INSIDE_QGIS = r"""
import json, sys
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback
app = QgsApplication([], False)
app.initQgis()
sys.path[:0] = ["/usr/share/qgis/python/plugins", sys.argv[1]]
from processing.core.Processing import Processing
Processing.initialize()
import balanced_sampling, processing
plugin = balanced_sampling.classFactory(None)
plugin.initProcessing()
inputs = json.loads(sys.argv[2])
listed = sorted(a.id() for a in QgsApplication.processingRegistry().providerById("balanced_sampling").algorithms())
errors = {}
for algorithm, parameters in inputs.items():
    try:
        processing.run("balanced_sampling:" + algorithm, parameters, feedback=QgsProcessingFeedback())
        errors[algorithm] = None
    except QgsProcessingException as exc:
        errors[algorithm] = str(exc)
print(json.dumps({"listed": listed, "errors": errors, "pandas": "pandas" in sys.modules}))
"""


def test_inside_qgis_python_every_algorithm_loads_and_refuses_with_one_message(inputs, tmp_path):
    profile = tmp_path / "profile"
    run = subprocess.run([SYSTEM_PYTHON, "-c", INSIDE_QGIS, PLUGINS, json.dumps(inputs)], capture_output=True,
                         text=True, env=_bare_env(profile), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert {f"balanced_sampling:{a}" for a in ALGORITHMS} <= set(answer["listed"])
    assert answer["pandas"] is False
    for algorithm in ALGORITHMS:
        assert answer["errors"][algorithm], f"{algorithm} ran without its packages"
        _check_message(algorithm, answer["errors"][algorithm], profile)

