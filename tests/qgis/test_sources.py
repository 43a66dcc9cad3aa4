"""Patch records from a CSV/YAML, a real PostgreSQL tile table, and a whole balanced_dataset config."""

import os
import time

import pandas as pd
import pytest
import yaml
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from tests.postgres_server import postgres_server, tiles_database  # noqa: F401 (fixtures)

from .conftest import layer_rows


def write_records_csv(synthetic_dataset, path, missing=False):
    rows = [{"image_path": image, "mask_path": mask, "row_off": r, "col_off": c, "patch_size": 128}
            for image, mask in zip(synthetic_dataset.images[:2], synthetic_dataset.masks[:2])
            for r in (0, 128) for c in (0, 128, 256)]
    if missing:
        rows.append(dict(rows[0], image_path="/nowhere/gone.tif"))
    pd.DataFrame(rows).to_csv(path, index=False)
    return rows


def test_import_csv_records(run_algorithm, synthetic_dataset, tmp_path):
    rows = write_records_csv(synthetic_dataset, tmp_path / "records.csv")
    result = run_algorithm("importpatchrecords", {"INPUT": str(tmp_path / "records.csv"),
                                                  "OUTPUT": str(tmp_path / "fp.gpkg")})
    out = layer_rows(result["OUTPUT"])
    assert len(out) == len(rows) == 12
    assert {"patch_id", "image_path", "mask_path", "row_off", "col_off", "patch_size"} <= set(out[0])
    assert result["MISSING_RASTERS"] == 0


def test_missing_raster_fails_or_is_skipped_by_name(run_algorithm, synthetic_dataset, tmp_path):
    write_records_csv(synthetic_dataset, tmp_path / "records.csv", missing=True)
    with pytest.raises(QgsProcessingException, match="gone.tif"):
        run_algorithm("importpatchrecords", {"INPUT": str(tmp_path / "records.csv"),
                                             "OUTPUT": str(tmp_path / "a.gpkg")})
    result = run_algorithm("importpatchrecords", {"INPUT": str(tmp_path / "records.csv"), "ON_MISSING": 1,
                                                  "OUTPUT": str(tmp_path / "b.gpkg")})
    assert result["MISSING_RASTERS"] == 1
    assert len(layer_rows(result["OUTPUT"])) == 12


def test_postgres_tiles_feed_composition_without_mask_reads(run_algorithm, tiles_database, tmp_path, monkeypatch):
    connection = tiles_database.connection
    result = run_algorithm("loadtilesfrompostgres", {
        "HOST": connection["host"], "PORT": connection["port"], "DATABASE": connection["dbname"],
        "USER": connection["user"], "PASSWORD": connection["password"], "TABLE": "tiles",
        "WHERE_CLAUSE": "row_off < 256", "OUTPUT": str(tmp_path / "tiles.gpkg")})
    tiles = layer_rows(result["OUTPUT"])
    assert 0 < len(tiles) < tiles_database.rows
    assert all(t["row_off"] < 256 for t in tiles)
    assert {"cls_1", "cls_6", "source_id"} <= set(tiles[0])

    import rasterio

    def no_mask_reads(*args, **kwargs):
        raise AssertionError("masks must not be read when the layer carries class proportions")

    monkeypatch.setattr(rasterio, "open", no_mask_reads)
    clusters = run_algorithm("computecompositionclusters", {"INPUT": result["OUTPUT"], "K_SELECTION": 1, "K": 4,
                                                            "OUTPUT": str(tmp_path / "clusters.gpkg")})
    rows = layer_rows(clusters["OUTPUT"])
    assert {r["freq_cluster_id"] for r in rows if not r["excluded"]} == {0, 1, 2, 3}


def test_postgres_where_clause_cannot_write_and_password_stays_secret(run_algorithm, tiles_database, tmp_path):
    connection = tiles_database.connection
    base = {"HOST": connection["host"], "PORT": connection["port"], "DATABASE": connection["dbname"],
            "USER": connection["user"], "TABLE": "tiles", "OUTPUT": str(tmp_path / "x.gpkg")}
    before = tiles_database.count("tiles")
    with pytest.raises(QgsProcessingException):
        run_algorithm("loadtilesfrompostgres", dict(base, PASSWORD=connection["password"],
                                                    WHERE_CLAUSE="1=1; DELETE FROM tiles"))
    with pytest.raises(QgsProcessingException):
        run_algorithm("loadtilesfrompostgres", dict(base, PASSWORD=connection["password"],
                                                    WHERE_CLAUSE="purge_tiles() IS NULL"))
    assert tiles_database.count("tiles") == before
    with pytest.raises(QgsProcessingException) as wrong:
        run_algorithm("loadtilesfrompostgres", dict(base, PASSWORD="s3cret-wrong-password"))
    assert "s3cret-wrong-password" not in str(wrong.value)
    with pytest.raises(QgsProcessingException, match="no_such_table"):
        run_algorithm("loadtilesfrompostgres", dict(base, PASSWORD=connection["password"], TABLE="no_such_table"))


def _postgres_parameters(tiles_database, tmp_path, **extra):
    connection = tiles_database.connection
    return {"HOST": connection["host"], "PORT": connection["port"], "DATABASE": connection["dbname"],
            "USER": connection["user"], "PASSWORD": connection["password"], "OUTPUT": str(tmp_path / "tiles.gpkg"),
            **extra}


def test_postgres_table_without_optional_score_columns_loads(run_algorithm, tiles_database, tmp_path):
    """An ordinary tile table without uniqueness_score / class_entropy loads with the default column names."""
    conn = tiles_database.server.connect(tiles_database.dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS plain_tiles AS SELECT id, file_path, mask_path, row_off, "
                        "col_off, patch_size, class_dist, nodata_ratio FROM tiles WHERE id <= 64")
    finally:
        conn.close()
    feedback = QgsProcessingFeedback()
    result = run_algorithm("loadtilesfrompostgres", _postgres_parameters(tiles_database, tmp_path,
                                                                         TABLE="plain_tiles"), feedback)
    tiles = layer_rows(result["OUTPUT"])
    assert len(tiles) == tiles_database.count("plain_tiles") == 64
    fields = set(tiles[0])
    assert {"patch_id", "image_path", "mask_path", "row_off", "col_off", "patch_size", "source_id",
            "nodata_ratio", "cls_1"} <= fields
    assert not {"uniqueness_score", "class_entropy"} & fields
    assert sorted(t["source_id"] for t in tiles) == list(range(1, 65))
    assert "no optional column uniqueness_score, class_entropy; skipped" in feedback.textLog()
    # An optional column the user renamed must exist.
    with pytest.raises(QgsProcessingException, match=r"no column 'uniq' \(role uniqueness_score\)"):
        run_algorithm("loadtilesfrompostgres", _postgres_parameters(
            tiles_database, tmp_path, TABLE="plain_tiles", UNIQUENESS_SCORE_COLUMN="uniq",
            OUTPUT=str(tmp_path / "renamed.gpkg")))


def test_postgres_statement_timeout_stops_a_slow_where_clause(run_algorithm, tiles_database, tmp_path):
    start = time.monotonic()
    with pytest.raises(QgsProcessingException) as error:
        run_algorithm("loadtilesfrompostgres", _postgres_parameters(
            tiles_database, tmp_path, TABLE="tiles", WHERE_CLAUSE="pg_sleep(30) is not null", STATEMENT_TIMEOUT=1))
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "ran longer than 1 s (the statement timeout)" in message
    assert "'pg_sleep(30) is not null'" in message and "raise the statement timeout" in message


def test_build_from_config_masks_only(run_algorithm, synthetic_dataset, tmp_path):
    write_records_csv(synthetic_dataset, tmp_path / "records.csv")
    config = {"balanced_dataset": {
        "mode": "masks_only", "sampling_method": "class_balanced",
        "input": {"patch_records": "records.csv"},
        "clustering": {"k_min": 2, "k_max": 4, "k_selection": "elbow", "random_state": 42},
        "exclusion": {"exclude_border_nodata": True, "exclude_black_border": True, "nodata_class": 0},
        "output": {"csv_path": "out/balanced.csv", "geojson_path": "out/balanced.geojson"}}}
    (tmp_path / "out").mkdir()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_algorithm("buildfromconfig", {"CONFIG": str(tmp_path / "config.yaml"),
                                               "OUTPUT": str(tmp_path / "layer.gpkg")})
    csv = pd.read_csv(result["CSV_PATH"])
    assert list(csv.columns[:6]) == ["image", "mask", "row_off", "col_off", "patch_size", "sampler_weight"]
    assert len(csv) == 12
    assert os.path.exists(tmp_path / "out" / "balanced.geojson")
    assert result["SAMPLING_METHOD"] == "class_balanced"
    assert len(layer_rows(result["OUTPUT"])) == 12


def test_build_from_config_names_an_unknown_key(run_algorithm, tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(
        {"balanced_dataset": {"clustering": {"kmin": 3}, "output": {"csv_path": "x.csv"},
                              "input": {"patch_records": []}}}))
    with pytest.raises(QgsProcessingException, match="kmin"):
        run_algorithm("buildfromconfig", {"CONFIG": str(tmp_path / "config.yaml")})
