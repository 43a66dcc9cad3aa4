"""Select coreset through qgis_process: footprints -> clusters -> coreset by cb with a vector layer in EPSG:4326
and a minimum distance; JSON results, the written layer, its saved default style and the training CSV."""

import csv
import json
import math
import os
import sqlite3

import pytest

from tests.headless.conftest import HAS_QGIS_PROCESS, gpkg_rows, qgis_process

pytestmark = pytest.mark.skipif(not HAS_QGIS_PROCESS,
                                reason="qgis_process.bin is not installed (make setup installs QGIS 3.22)")


def patch_polygon_wgs84(image, row_off, col_off, size, inset):
    """The window's footprint shrunk by ``inset`` pixels, as a GeoJSON polygon in EPSG:4326."""
    import rasterio
    from rasterio.warp import transform_geom

    with rasterio.open(image) as dataset:
        transform, crs = dataset.transform, dataset.crs
    corners = [(col_off + inset, row_off + inset), (col_off + size - inset, row_off + inset),
               (col_off + size - inset, row_off + size - inset), (col_off + inset, row_off + size - inset)]
    ring = [transform @ corner for corner in corners]
    ring.append(ring[0])
    geometry = {"type": "Polygon", "coordinates": [ring]}
    return transform_geom(crs, "EPSG:4326", geometry)


def test_select_coreset_headless(profile, synthetic_dataset, tmp_path):
    footprints, clusters = str(tmp_path / "footprints.gpkg"), str(tmp_path / "clusters.gpkg")
    coreset, training = str(tmp_path / "coreset.gpkg"), str(tmp_path / "coreset.csv")
    proc = qgis_process("run", "balanced_sampling:createpatchfootprints", "--json", "--",
                        f"IMAGES={synthetic_dataset.images[0]}", f"MASKS={synthetic_dataset.masks[0]}",
                        "PATCH_SIZE=64", f"OUTPUT={footprints}", profile=profile)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = qgis_process("run", "balanced_sampling:computecompositionclusters", "--json", "--",
                        f"INPUT={footprints}", "K_SELECTION=1", "K=4", f"OUTPUT={clusters}", profile=profile)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    rows = {(r["row_off"], r["col_off"]): r for r in gpkg_rows(clusters)}
    target = next(key for key in sorted(rows, key=lambda k: (-k[0], -k[1])) if not rows[key]["excluded"])
    vector = tmp_path / "rare.geojson"
    vector.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {},
        "geometry": patch_polygon_wgs84(synthetic_dataset.images[0], target[0], target[1], 64, 8)}]}))
    proc = qgis_process("run", "balanced_sampling:selectcoreset", "--json", "--",
                        f"INPUT={clusters}", "METHOD=1", "BUDGET=0.3", "BUDGET_MODE=0", f"VECTOR_LAYER={vector}",
                        "MIN_INTERSECT_AREA=1", "MIN_DISTANCE=1", f"OUTPUT={coreset}", f"OUTPUT_CSV={training}",
                        profile=profile)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)["results"]
    written = gpkg_rows(coreset)
    pool = [r for r in written if not r["excluded"]]
    assert results["POOL_PATCHES"] == len(pool)
    assert results["SELECTED_PATCHES"] == math.floor(0.3 * len(pool) + 0.5)
    selected = [r for r in written if r["coreset_selected"]]
    assert len(selected) == results["SELECTED_PATCHES"]
    vector_rows = [(r["row_off"], r["col_off"]) for r in selected if r["selection_step"] == "vector"]
    assert vector_rows == [target]
    assert {r["selection_step"] for r in selected} == {"vector", "cb"}
    assert not any(r["coreset_selected"] for r in written if r["excluded"])
    with open(training, newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(selected)
    assert abs(sum(float(line["sampler_weight"]) for line in lines) / len(lines) - 1) < 1e-9
    with sqlite3.connect(coreset) as db:  # qgis_process loads nothing: the style is stored as the default
        styles = db.execute("SELECT styleName FROM layer_styles").fetchall()
    assert styles == [("coreset_selected",)]
    assert os.path.getsize(training) > 0

    # the tool's YAML coreset: block on Combine's training CSV, unchanged
    weights, balanced = str(tmp_path / "weights.gpkg"), str(tmp_path / "balanced_train.csv")
    proc = qgis_process("run", "balanced_sampling:combinesamplerweights", "--json", "--", f"INPUT={clusters}",
                        f"OUTPUT={weights}", f"OUTPUT_CSV={balanced}", profile=profile)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = tmp_path / "coreset.yaml"
    config.write_text("coreset:\n  method: lc\n  budget: 5\n  budget_mode: count\n"
                      "  input_csv_path: balanced_train.csv\n  output_csv_path: coreset_from_yaml.csv\n"
                      "  score_column: lc_score\n")
    proc = qgis_process("run", "balanced_sampling:selectcoresetfromconfig", "--json", "--", f"CONFIG={config}",
                        profile=profile)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert results["OUTPUT_CSV"] == str(tmp_path / "coreset_from_yaml.csv")
    assert (results["SELECTED_PATCHES"], results["POOL_PATCHES"], results["METHOD"]) == (5, len(pool), "lc")
    with open(results["OUTPUT_CSV"], newline="") as handle:
        lines = list(csv.DictReader(handle))
    entropies = sorted((r["class_entropy"] for r in pool), reverse=True)
    assert sorted((float(line["class_entropy"]) for line in lines), reverse=True) == pytest.approx(entropies[:5])
    assert [float(line["lc_score"]) for line in lines] == pytest.approx([e / entropies[0] for e in entropies[:5]])
    assert abs(sum(float(line["sampler_weight"]) for line in lines) / 5 - 1) < 1e-9

    config.write_text("coreset:\n  method: lc\n  budgett: 5\n")
    proc = qgis_process("run", "balanced_sampling:selectcoresetfromconfig", "--", f"CONFIG={config}",
                        profile=profile)
    assert proc.returncode != 0
    assert "coreset.budgett" in proc.stdout + proc.stderr
