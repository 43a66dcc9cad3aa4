"""Every config of examples/ runs unchanged through `qgis_process run balanced_sampling:buildfromconfig`.

Only the placeholders change (tests/shipped_examples.py): the /data/... records or folders become the
synthetic dataset, the PostgreSQL connection the throw-away server, the model a tiny offline DINOv2, the
outputs a temporary folder. The training CSV must carry the trainer's columns first, then the diagnostics
pytorch-smt-tools writes.
"""

import json
import os

import pandas as pd
import pytest

from tests.headless.conftest import HAS_QGIS_PROCESS, gpkg_rows, qgis_process
from tests.postgres_server import postgres_server, tiles_database  # noqa: F401 (fixtures)
from tests.shipped_examples import (
    CSV_COLUMNS,
    SHIPPED_EXAMPLES,
    TOOL_DIAGNOSTICS,
    example_patch_records,
    localised_example,
    write_config,
)
from tests.tiny_dinov2 import build_tiny_dinov2

pytestmark = pytest.mark.skipif(not HAS_QGIS_PROCESS,
                                reason="qgis_process.bin is not installed (make setup installs QGIS 3.22)")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_dinov2(tmp_path_factory.mktemp("tiny-dinov2"))


@pytest.fixture(scope="module")
def patch_records(synthetic_dataset):
    return example_patch_records(synthetic_dataset)


@pytest.mark.parametrize("name", SHIPPED_EXAMPLES)
def test_shipped_example_runs_through_qgis_process(name, profile, synthetic_dataset, patch_records, tmp_path, request):
    body = localised_example(name, synthetic_dataset, patch_records, tmp_path, request)
    config = write_config(str(tmp_path), body)
    layer = str(tmp_path / "layer.gpkg")
    proc = qgis_process("run", "balanced_sampling:buildfromconfig", "--json", "--", f"CONFIG={config}",
                        f"OUTPUT={layer}", profile=profile, timeout=600)
    assert proc.returncode == 0, f"{name}: {proc.stdout[-3000:]} {proc.stderr[-3000:]}"
    results = json.loads(proc.stdout)["results"]
    output = body["output"]
    assert results["CSV_PATH"] == output["csv_path"] and results["SAMPLING_METHOD"] == body["sampling_method"]
    assert results["GEOJSON_PATH"] == output.get("geojson_path")

    csv = pd.read_csv(output["csv_path"])
    assert csv.columns[:len(CSV_COLUMNS)].tolist() == CSV_COLUMNS
    from_table = "postgres" in body or "host" in body["input"]
    has_scores = body["mode"] != "masks_only" or from_table  # masks_only: the tile table's precomputed scores
    expected = [c for c in TOOL_DIAGNOSTICS if has_scores or c != "uniqueness_score"]
    assert [c for c in csv.columns[len(CSV_COLUMNS):] if c in TOOL_DIAGNOSTICS] == expected
    if not has_scores:
        assert "uniqueness_score" not in csv.columns
    excluded = csv["excluded"].astype(str).str.lower() == "true"
    assert csv.loc[~excluded, "sampler_weight"].mean() == pytest.approx(1.0)
    assert (csv.loc[excluded, "sampler_weight"] == 0).all()
    assert csv.loc[~excluded, "class_dist_json"].map(lambda text: sum(json.loads(text).values())).to_numpy() \
        == pytest.approx(1.0, abs=1e-5)  # shares rounded in the JSON
    if has_scores:
        assert csv.loc[~excluded, "uniqueness_score"].notna().all()
    rows = gpkg_rows(layer)
    if output.get("include_excluded", True):
        assert len(csv) == len(rows)
    else:
        assert not excluded.any() and len(csv) == sum(1 for r in rows if not r["excluded"])
    if output.get("geojson_path"):
        with open(output["geojson_path"], encoding="utf-8") as handle:
            assert len(json.load(handle)["features"]) == len(rows)
    assert os.path.isfile(output["csv_path"])
