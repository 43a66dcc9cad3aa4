"""The algorithms run headless through qgis_process, as on a server: JSON results and written layers."""

import json
import os
import sqlite3

import pytest

from tests.conftest import ROOT
from tests.headless.conftest import HAS_QGIS_PROCESS, gpkg_rows, qgis_process
from tests.postgres_server import postgres_server, tiles_database  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not HAS_QGIS_PROCESS,
                                reason="qgis_process.bin is not installed (make setup installs QGIS 3.22)")


def test_plugin_algorithms_are_listed(profile):
    proc = qgis_process("list", profile=profile)
    assert proc.returncode == 0, proc.stderr
    assert "balanced_sampling:createpatchfootprints" in proc.stdout
    assert "balanced_sampling:computecompositionclusters" in proc.stdout


def test_footprints_then_clusters_headless(profile, synthetic_dataset, tmp_path):
    footprints = str(tmp_path / "footprints.gpkg")
    clusters = str(tmp_path / "clusters.gpkg")
    proc = qgis_process("run", "balanced_sampling:createpatchfootprints", "--json", "--",
                        f"IMAGE_FOLDER={os.path.dirname(synthetic_dataset.images[0])}",
                        f"MASK_FOLDER={os.path.dirname(synthetic_dataset.masks[0])}",
                        "PATCH_SIZE=64", f"OUTPUT={footprints}", profile=profile)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["results"]["OUTPUT"] == footprints

    proc = qgis_process("run", "balanced_sampling:computecompositionclusters", "--json", "--",
                        f"INPUT={footprints}", "K_SELECTION=1", "K=5", "RANDOM_STATE=7",
                        f"OUTPUT={clusters}", profile=profile)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["results"]["OUTPUT"] == clusters
    assert int(answer["inputs"]["K"]) == 5
    rows = gpkg_rows(clusters)
    assert len(rows) == 384
    included = [r for r in rows if not r["excluded"]]
    assert len(included) == 368
    assert {r["freq_cluster_id"] for r in included} == set(range(5))
    assert all(abs(r["freq_cluster_weight"] * r["freq_cluster_size"] - 1) < 1e-12 for r in included)
    assert all(abs(sum(r[f"cls_{c}"] for c in range(1, 7)) - 1) < 1e-9 for r in included)


def test_bad_input_fails_with_a_message(profile, tmp_path):
    proc = qgis_process("run", "balanced_sampling:computecompositionclusters", "--",
                        f"INPUT={tmp_path / 'missing.gpkg'}", f"OUTPUT={tmp_path / 'x.gpkg'}", profile=profile)
    assert proc.returncode != 0
    assert "missing.gpkg" in proc.stdout + proc.stderr


def test_whole_chain_headless_writes_csv_and_report(profile, synthetic_dataset, tmp_path):
    """Footprints -> clusters -> uniqueness (tiny local DINOv2) -> combine, each a qgis_process run."""
    import pandas as pd

    from tests.tiny_dinov2 import build_tiny_dinov2

    model = build_tiny_dinov2(tmp_path / "model")
    steps = [
        ("createpatchfootprints", [f"IMAGE_FOLDER={os.path.dirname(synthetic_dataset.images[0])}",
                                   f"MASK_FOLDER={os.path.dirname(synthetic_dataset.masks[0])}", "PATCH_SIZE=128",
                                   f"OUTPUT={tmp_path / 'fp.gpkg'}"]),
        ("computecompositionclusters", [f"INPUT={tmp_path / 'fp.gpkg'}", "K_MIN=3", "K_MAX=8",
                                        f"OUTPUT={tmp_path / 'cl.gpkg'}"]),
        ("computedinov2uniqueness", [f"INPUT={tmp_path / 'cl.gpkg'}", f"DINO_MODEL={model}", "BACKEND=0",
                                     f"PARQUET_PATH={tmp_path / 'emb.parquet'}", f"OUTPUT={tmp_path / 'un.gpkg'}"]),
        ("combinesamplerweights", [f"INPUT={tmp_path / 'un.gpkg'}", "SAMPLING_METHOD=0",
                                   f"OUTPUT={tmp_path / 'w.gpkg'}", f"OUTPUT_CSV={tmp_path / 'train.csv'}",
                                   f"OUTPUT_REPORT={tmp_path / 'report.html'}"]),
    ]
    for algorithm, arguments in steps:
        proc = qgis_process("run", f"balanced_sampling:{algorithm}", "--json", "--", *arguments, profile=profile)
        assert proc.returncode == 0, f"{algorithm}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    answer = json.loads(proc.stdout)
    assert answer["results"]["INCLUDED_PATCHES"] + answer["results"]["EXCLUDED_PATCHES"] == 96
    rows = gpkg_rows(str(tmp_path / "w.gpkg"))
    assert all(r["uniqueness_score"] is not None and r["sampler_weight"] is not None for r in rows)
    assert all((r["sampler_weight"] == 0) == bool(r["excluded"]) for r in rows)
    csv = pd.read_csv(tmp_path / "train.csv")
    assert list(csv.columns[:6]) == ["image", "mask", "row_off", "col_off", "patch_size", "sampler_weight"]
    assert len(csv) == 96
    assert "rank_max" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_shipped_model_runs_headless(profile, synthetic_dataset, tmp_path):
    from tests.tiny_dinov2 import build_tiny_dinov2

    model_file = os.path.join(ROOT, "processing_provider", "models", "build_balanced_dataset.model3")
    proc = qgis_process("run", model_file, "--json", "--",
                        f"IMAGE_FOLDER={os.path.dirname(synthetic_dataset.images[0])}",
                        f"MASK_FOLDER={os.path.dirname(synthetic_dataset.masks[0])}", "PATCH_SIZE=128",
                        f"DINO_MODEL={build_tiny_dinov2(tmp_path / 'model')}", "BACKEND=2", "SAMPLING_METHOD=6",
                        f"sampler_weights:Sampler weights={tmp_path / 'w.gpkg'}",
                        f"sampler_weights:Training CSV={tmp_path / 't.csv'}",
                        f"sampler_weights:Report={tmp_path / 'r.html'}", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(gpkg_rows(str(tmp_path / "w.gpkg"))) == 96
    assert (tmp_path / "r.html").stat().st_size > 1000
    assert json.loads(proc.stdout)["results"]["uniqueness:Embedding cache"] is None  # optional, skipped
    # No QGIS loads the layer here: the GeoPackage carries its style (weight classes, excluded hatched).
    with sqlite3.connect(tmp_path / "w.gpkg") as db:
        style = db.execute("SELECT styleQML FROM layer_styles WHERE useAsDefault").fetchone()[0]
    assert 'type="RuleRenderer"' in style and 'label="excluded"' in style


def test_postgres_tiles_and_config_headless(profile, tiles_database, synthetic_dataset, tmp_path):
    import pandas as pd
    import yaml

    connection = tiles_database.connection
    proc = qgis_process("run", "balanced_sampling:loadtilesfrompostgres", "--json", "--",
                        f"HOST={connection['host']}", f"PORT={connection['port']}",
                        f"DATABASE={connection['dbname']}", f"USER={connection['user']}",
                        f"PASSWORD={connection['password']}", "TABLE=tiles",
                        f"OUTPUT={tmp_path / 'tiles.gpkg'}", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert connection["password"] not in json.dumps(json.loads(proc.stdout).get("log", {}))
    assert len(gpkg_rows(str(tmp_path / "tiles.gpkg"))) == tiles_database.rows

    config = {"balanced_dataset": {
        "mode": "masks_only", "sampling_method": "rank_max",
        "input": {"host": connection["host"], "port": connection["port"], "database": connection["dbname"],
                  "user": connection["user"], "password": connection["password"], "table": "tiles",
                  "where_clause": "nodata_ratio < 0.05"},
        "clustering": {"k_min": 4, "k_max": 10, "k_selection": "elbow"},
        "output": {"csv_path": str(tmp_path / "balanced.csv")}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = qgis_process("run", "balanced_sampling:buildfromconfig", "--json", "--",
                        f"CONFIG={tmp_path / 'config.yaml'}", f"OUTPUT={tmp_path / 'layer.gpkg'}", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    csv = pd.read_csv(tmp_path / "balanced.csv")
    assert "sampler_weight" in csv.columns and 0 < len(csv) <= tiles_database.rows


def test_writing_again_into_a_named_layer_of_a_geopackage_does_not_hang(profile, synthetic_dataset, tmp_path):
    """QGIS 3.22 asks in a dialog before replacing a layer's saved style: headless, the second run into the same
    named layer hung forever. Each style is replaced, once per layer."""
    footprints, clusters = str(tmp_path / "footprints.gpkg"), str(tmp_path / "clusters.gpkg")
    steps = [("createpatchfootprints", f"IMAGE_FOLDER={os.path.dirname(synthetic_dataset.images[0])}",
              f"MASK_FOLDER={os.path.dirname(synthetic_dataset.masks[0])}", "PATCH_SIZE=64", f"OUTPUT={footprints}"),
             ("computecompositionclusters", f"INPUT={footprints}", "K_SELECTION=1", "K=4", f"OUTPUT={clusters}")]
    for algorithm, *args in steps:
        proc = qgis_process("run", f"balanced_sampling:{algorithm}", "--", *args, profile=profile)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    results = tmp_path / "results.gpkg"
    weights = f"ogr:dbname='{results}' table=\"pesos de amostragem\" (geom)"
    coreset = f"ogr:dbname='{results}' table=\"coreset\" (geom)"
    for run in (1, 2):
        proc = qgis_process("run", "balanced_sampling:combinesamplerweights", "--", f"INPUT={clusters}",
                            "SAMPLING_METHOD=6", f"OUTPUT={weights}", profile=profile, timeout=120)
        assert proc.returncode == 0, f"run {run}: " + proc.stdout + proc.stderr
        proc = qgis_process("run", "balanced_sampling:selectcoreset", "--",
                            f"INPUT={results}|layername=pesos de amostragem", "METHOD=0", "BUDGET=0.5",
                            "BUDGET_MODE=0", f"OUTPUT={coreset}", profile=profile, timeout=120)
        assert proc.returncode == 0, f"run {run}: " + proc.stdout + proc.stderr
    with sqlite3.connect(results) as db:
        styles = sorted(db.execute("SELECT f_table_name, stylename, useAsDefault FROM layer_styles").fetchall())
    assert styles == [("coreset", "coreset_selected", 1), ("pesos de amostragem", "sampler_weight", 1)]
