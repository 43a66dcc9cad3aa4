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


def test_postgres_example_with_fetched_embeddings_through_qgis_process(profile, tiles_database, tmp_path, request,
                                                                       synthetic_dataset):
    """code_form_postgres.yaml with fetch_embeddings: true and mode both: the uniqueness scores of the CSV are
    the kNN scores of the table's pgvector-text embeddings, and no DINOv2 runs (the model does not exist)."""
    import numpy as np

    from balanced_sampling_plugin.uniqueness import uniqueness_scores

    rng = np.random.default_rng(11)
    conn = tiles_database.server.connect(tiles_database.dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS tiles_with_vectors")
            cur.execute("CREATE TABLE tiles_with_vectors AS SELECT *, NULL::text AS vector FROM tiles")
            cur.execute("SELECT id FROM tiles_with_vectors")
            ids = [row[0] for row in cur.fetchall()]
            vectors = dict(zip(ids, rng.normal(size=(len(ids), 16)).astype(np.float32)))
            for tile_id, vector in vectors.items():
                cur.execute("UPDATE tiles_with_vectors SET vector = %s WHERE id = %s",
                            ("[" + ",".join(repr(float(x)) for x in vector) + "]", tile_id))
    finally:
        conn.close()
    body = localised_example("code_form_postgres.yaml", synthetic_dataset, [], tmp_path, request)
    body["mode"] = "both"
    body["postgres"].update(table="tiles_with_vectors", embedding_column="vector", fetch_embeddings=True)
    body["uniqueness"] = {"k_neighbors": 5, "backend": "sklearn"}
    body["embeddings"] = {"dino_model": str(tmp_path / "no-such-model")}
    body["output"]["include_excluded"] = True
    proc = qgis_process("run", "balanced_sampling:buildfromconfig", "--json", "--",
                        f"CONFIG={write_config(str(tmp_path), body)}", profile=profile, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    csv = pd.read_csv(body["output"]["csv_path"])
    conn = tiles_database.server.connect(tiles_database.dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT file_path, row_off, col_off, id FROM tiles_with_vectors WHERE nodata_ratio < 0.05")
            tile_of = {(path, row, col): tile_id for path, row, col, tile_id in cur.fetchall()}
    finally:
        conn.close()
    assert len(csv) == len(tile_of)
    keys = zip(csv["image"], csv["row_off"], csv["col_off"])
    expected = uniqueness_scores(np.stack([vectors[tile_of[key]] for key in keys]), k=5, backend="sklearn")
    np.testing.assert_allclose(csv["uniqueness_score"].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert "DINOv2 does not run" in proc.stdout + proc.stderr
