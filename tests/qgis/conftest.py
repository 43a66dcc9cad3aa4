"""QGIS fixtures: the plugin installed as package `balanced_sampling`, processing initialised."""

import hashlib
import os
import shutil
import sys

import pytest
from qgis.core import QgsProcessingFeedback

from tests.conftest import ROOT

PLUGINS_DIR = os.path.join(ROOT, "build", "qgis_plugins")
PLUGIN_NAME = "balanced_sampling"


def _install_plugin_link() -> None:
    """QGIS loads the plugin as package `balanced_sampling`; the checkout folder has another name."""
    os.makedirs(PLUGINS_DIR, exist_ok=True)
    link = os.path.join(PLUGINS_DIR, PLUGIN_NAME)
    if not os.path.exists(link):
        os.symlink(ROOT, link)
    if PLUGINS_DIR not in sys.path:
        sys.path.insert(0, PLUGINS_DIR)


@pytest.fixture(scope="session")
def plugin(qgis_app, qgis_processing):
    """The plugin as QGIS creates it headless (iface None), provider registered."""
    _install_plugin_link()
    import balanced_sampling

    instance = balanced_sampling.classFactory(None)
    instance.initProcessing()
    yield instance
    instance.unload()


@pytest.fixture(scope="session")
def run_algorithm(plugin):
    """``processing.run`` for this provider's algorithms, with a fresh feedback."""
    import processing
    from qgis.core import QgsProcessingFeedback

    def run(name, parameters, feedback=None):
        return processing.run(f"balanced_sampling:{name}", parameters, feedback=feedback or QgsProcessingFeedback())

    return run


@pytest.fixture(scope="session")
def footprints_path(run_algorithm, synthetic_dataset, tmp_path_factory):
    """A GeoPackage of 64 px footprints over the synthetic dataset."""
    out = str(tmp_path_factory.mktemp("footprints") / "footprints.gpkg")
    run_algorithm("createpatchfootprints", {
        "IMAGES": synthetic_dataset.images, "MASKS": synthetic_dataset.masks, "PATCH_SIZE": 64, "OUTPUT": out,
    })
    return out


@pytest.fixture(scope="session")
def clusters_path(run_algorithm, footprints_path, tmp_path_factory):
    """Composition clusters (fixed k = 6) over the synthetic footprints."""
    out = str(tmp_path_factory.mktemp("clusters") / "clusters.gpkg")
    run_algorithm("computecompositionclusters", {"INPUT": footprints_path, "K_SELECTION": 1, "K": 6, "OUTPUT": out})
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random DINOv2 saved with save_pretrained (no hub in tests)."""
    from tests.tiny_dinov2 import build_tiny_dinov2

    return build_tiny_dinov2(tmp_path_factory.mktemp("tiny_dinov2"))


@pytest.fixture(scope="session")
def uniqueness_path(run_algorithm, clusters_path, tiny_model, tmp_path_factory):
    """Clusters + uniqueness: a layer carrying both signals, as the full chain makes it."""
    out = str(tmp_path_factory.mktemp("uniqueness") / "uniqueness.gpkg")
    run_algorithm("computedinov2uniqueness", {"INPUT": clusters_path, "DINO_MODEL": tiny_model, "BATCH_SIZE": 64,
                                               "BACKEND": 2, "OUTPUT": out})
    return out


def layer_rows(path_or_layer):
    """All features of a layer as a list of attribute dicts (geometry under '_geometry' as WKT)."""
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(path_or_layer, "layer", "ogr") if isinstance(path_or_layer, str) else path_or_layer
    assert layer.isValid(), f"cannot open {path_or_layer}"
    names = layer.fields().names()
    rows = []
    for feature in layer.getFeatures():
        row = dict(zip(names, [None if hasattr(v, "isNull") and v.isNull() else v for v in feature.attributes()]))
        row["_geometry"] = feature.geometry().asWkt(3)
        rows.append(row)
    return rows


def sha1(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


def copy_layer_with(footprints_path, tmp_path, change):
    """A copy of the footprints GeoPackage whose first feature is edited by ``change(layer, feature)``."""
    from qgis.core import QgsVectorLayer

    copy = str(tmp_path / "edited.gpkg")
    shutil.copy(footprints_path, copy)
    layer = QgsVectorLayer(copy, "edited", "ogr")
    layer.startEditing()
    feature = next(layer.getFeatures())
    change(layer, feature)
    assert layer.commitChanges()
    return copy


class RecordingFeedback(QgsProcessingFeedback):
    """Every line an algorithm writes to the log, whichever channel."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def pushInfo(self, info):  # noqa: N802 (QGIS API name)
        self.lines.append(info)
        super().pushInfo(info)

    def pushWarning(self, warning):  # noqa: N802
        self.lines.append(warning)
        super().pushWarning(warning)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        self.lines.append(error)
        super().reportError(error, fatalError)

    def pushCommandInfo(self, info):  # noqa: N802
        self.lines.append(info)
        super().pushCommandInfo(info)

    def pushDebugInfo(self, info):  # noqa: N802
        self.lines.append(info)
        super().pushDebugInfo(info)

    def pushConsoleInfo(self, info):  # noqa: N802
        self.lines.append(info)
        super().pushConsoleInfo(info)

    def setProgressText(self, text):  # noqa: N802
        self.lines.append(text)
        super().setProgressText(text)
