"""Fixtures shared by the engine and the QGIS tests (nothing here imports qgis)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """Six 512 px image/mask GeoTIFF pairs (EPSG:32633), ~88% background, ~1.7% rare class, two nodata strips."""
    from balanced_sampling_plugin.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(str(tmp_path_factory.mktemp("synthetic")), n_tiles=6, tile_size=512)


@pytest.fixture(autouse=True)
def _engine_messages_back_in_english():
    """A test that sets the engine's language (or creates the plugin under pt_BR) never leaks it into the next
    test: every copy of the engine's i18n module (``balanced_sampling_plugin`` in engine tests, the plugin's
    ``balanced_sampling.balanced_sampling_plugin`` in QGIS tests) is put back to English afterwards."""
    yield
    for name, module in list(sys.modules.items()):
        if name.endswith("balanced_sampling_plugin.i18n") and hasattr(module, "set_language"):
            module.set_language("en")
