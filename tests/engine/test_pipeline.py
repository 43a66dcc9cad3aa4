"""The whole chain from a balanced_dataset config: local records, a PostgreSQL tile table, bad configs."""

import json
import os

import pandas as pd
import pytest

from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled
from balanced_sampling_plugin.pipeline import (
    GEOJSON_PROPERTIES,
    footprints_geojson,
    run_config,
    without_partial_uniqueness,
)
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.sources.postgres import load_tiles
from tests.postgres_server import postgres_server, tiles_database  # noqa: F401  (pytest fixtures)
from tests.shipped_examples import (
    EXAMPLES,
    SHIPPED_EXAMPLES,
    example_patch_records,
    localised_example,
    write_config,
)
from tests.tiny_dinov2 import build_tiny_dinov2

PATCH = 64
CSV_COLUMNS = ["image", "mask", "row_off", "col_off", "patch_size", "sampler_weight"]
DIAGNOSTICS = ["patch_id", "freq_cluster_id", "uniqueness_score", "excluded", "class_entropy", "nodata_ratio"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_dinov2(tmp_path_factory.mktemp("tiny-dinov2"))


@pytest.fixture(scope="module")
def patch_records(synthetic_dataset):
    """``patch_records`` entries (64 px windows) of the synthetic dataset, paths relative to its folder."""
    return example_patch_records(synthetic_dataset, PATCH)


def assert_training_columns(csv, diagnostics):
    """The trainer's columns first, then (at least) these diagnostics."""
    assert csv.columns[:len(CSV_COLUMNS)].tolist() == CSV_COLUMNS
    assert set(diagnostics) <= set(csv.columns[len(CSV_COLUMNS):])


def read_geojson(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_masks_only_example(synthetic_dataset, patch_records, tmp_path):
    # REFERENCE "Local filesystem (masks_only mode)", records next to the dataset, geojson_path enabled; with
    # composition_only, since rank_max needs uniqueness, which masks_only does not compute (an error, as in the tool).
    body = {
        "mode": "masks_only",
        "sampling_method": "composition_only",
        "input": {"patch_records": patch_records},
        "clustering": {"k_min": 4, "k_max": 16, "k_selection": "elbow", "random_state": 42},
        "exclusion": {"exclude_border_nodata": True, "exclude_black_border": True, "nodata_class": 0},
        "output": {"csv_path": str(tmp_path / "out" / "balanced_train.csv"),
                   "geojson_path": str(tmp_path / "out" / "balanced_train.geojson")},
    }
    infos = []
    result = run_config(write_config(synthetic_dataset.folder, body), Progress(info=infos.append))

    assert result.sampling_method == "composition_only"
    assert not any("documentation's defaults apply" in m for m in infos)  # k_min/k_max given, no embeddings
    assert result.uniqueness is None and len(result.table) == len(result.rings) == 384

    csv = pd.read_csv(result.csv_path)
    assert_training_columns(csv, [c for c in DIAGNOSTICS if c != "uniqueness_score"])
    assert len(csv) == 384 and csv["image"].str.startswith(synthetic_dataset.folder).all()
    excluded = csv["excluded"].astype(bool)
    assert 0 < excluded.sum() < 384 and (csv.loc[excluded, "sampler_weight"] == 0).all()
    assert csv.loc[~excluded, "sampler_weight"].mean() == pytest.approx(1.0)

    geojson = read_geojson(result.geojson_path)
    assert geojson["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    features = geojson["features"]
    assert len(features) == 384 and list(features[0]["properties"]) == list(GEOJSON_PROPERTIES)
    assert features[0]["geometry"]["type"] == "Polygon" and len(features[0]["geometry"]["coordinates"][0]) == 5
    assert all(f["properties"]["uniqueness_score"] is None for f in features)
    by_id = {f["properties"]["patch_id"]: f["properties"] for f in features}
    for row in csv.head(20).itertuples():
        assert by_id[row.patch_id]["sampler_weight"] == pytest.approx(row.sampler_weight)
        assert by_id[row.patch_id]["excluded"] == bool(row.excluded)


def test_embeddings_example(synthetic_dataset, patch_records, tiny_model, tmp_path, monkeypatch):
    # REFERENCE "Local filesystem (embeddings mode)" with a tiny offline DINOv2 instead of dinov2-base,
    # with nndescent and our `reproducible` key, which must reach the kNN search.
    import balanced_sampling_plugin.uniqueness_stage as stage

    knn_calls = []
    real_scores = stage.uniqueness_scores
    monkeypatch.setattr(stage, "uniqueness_scores",
                        lambda *a, **kw: knn_calls.append(kw) or real_scores(*a, **kw))
    body = {
        "mode": "embeddings",
        "sampling_method": "rank_max",
        "input": {"patch_records": patch_records},
        "clustering": {"k_min": 4, "k_max": 16, "k_selection": "elbow"},
        "uniqueness": {"k_neighbors": 5, "backend": "nndescent", "reproducible": True},
        "embeddings": {"dino_model": tiny_model, "batch_size": 32, "num_workers": 2, "use_gpu": False,
                       "parquet_path": str(tmp_path / "embeddings.parquet")},
        "exclusion": {"exclude_border_nodata": True, "exclude_black_border": True},
        "output": {"csv_path": str(tmp_path / "balanced_train.csv"),
                   "geojson_path": str(tmp_path / "balanced_train.geojson")},
    }
    result = run_config(write_config(synthetic_dataset.folder, body))

    assert result.sampling_method == "rank_max" and result.uniqueness.computed == 384
    assert knn_calls[0]["backend"] == "nndescent" and knn_calls[0]["reproducible"] is True
    assert os.path.isfile(tmp_path / "embeddings.parquet")
    csv = pd.read_csv(result.csv_path)
    assert_training_columns(csv, DIAGNOSTICS)
    assert csv["uniqueness_score"].between(0, 2).all()
    features = read_geojson(result.geojson_path)["features"]
    assert all(isinstance(f["properties"]["uniqueness_score"], float) for f in features)
    assert {f["properties"]["freq_cluster_id"] for f in features} >= {-1, 0}

    again = run_config(write_config(synthetic_dataset.folder, body))  # embeddings come from the cache
    assert again.uniqueness.computed == 0 and again.uniqueness.reused == 384
    pd.testing.assert_series_equal(again.table["sampler_weight"], result.table["sampler_weight"])


def test_postgres_config(tiles_database, tmp_path):
    # REFERENCE "PostgreSQL backend" in masks_only mode: proportions and uniqueness come from the table.
    body = {
        "mode": "masks_only",
        "sampling_method": "rank_max",
        "input": {**{k: v for k, v in tiles_database.connection.items() if k != "dbname"},
                  "database": tiles_database.dbname, "table": "tiles", "where_clause": "nodata_ratio < 0.05"},
        "clustering": {"k_min": 4, "k_max": 20, "k_selection": "elbow"},
        "exclusion": {"exclude_border_nodata": True, "exclude_black_border": True},
        "output": {"csv_path": str(tmp_path / "balanced_train.csv"),
                   "geojson_path": str(tmp_path / "balanced_train.geojson")},
    }
    infos = []
    result = run_config(write_config(str(tmp_path), body), Progress(info=infos.append))
    assert result.sampling_method == "rank_max"  # the table's uniqueness_score is reused
    assert any("no mask was read" in m for m in infos)
    assert any("precomputed uniqueness_score" in m for m in infos)
    assert (result.table["nodata_ratio"] < 0.05).all() and not result.table["border_nodata"].any()
    csv = pd.read_csv(result.csv_path)
    assert len(csv) == len(result.table) < tiles_database.rows
    assert_training_columns(csv, DIAGNOSTICS)
    assert len(read_geojson(result.geojson_path)["features"]) == len(csv)


def test_an_output_over_a_file_of_the_local_model_is_refused(synthetic_dataset, patch_records, tiny_model,
                                                             tmp_path):
    """The model folder is an input: a CSV path into it is refused before any work, the weights untouched."""
    model = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_model, model)
    before = {name: (model / name).read_bytes() for name in os.listdir(model)}
    folder = synthetic_dataset.folder
    records = [{**r, "image_path": os.path.join(folder, r["image_path"]), "mask_path": os.path.join(folder, r["mask_path"])}
               for r in patch_records]
    config = {"balanced_dataset": {
        "mode": "both", "input": {"patch_records": records},
        "embeddings": {"dino_model": str(model), "parquet_path": str(tmp_path / "cache.parquet")},
        "output": {"csv_path": str(model / "config.json")}}}
    with pytest.raises(BalancedSamplingError, match=r"balanced_dataset\.output\.csv_path '.*config\.json' is the "
                                                   r"input balanced_dataset\.embeddings\.dino_model"):
        run_config(config)
    assert {name: (model / name).read_bytes() for name in os.listdir(model)} == before
    assert not (tmp_path / "cache.parquet").exists()


def test_postgres_config_in_embeddings_mode_recomputes_uniqueness(tiles_database, tiny_model, tmp_path):
    body = {
        "mode": "embeddings",
        "input": {**{k: v for k, v in tiles_database.connection.items() if k != "dbname"},
                  "database": tiles_database.dbname, "where_clause": "id <= 64"},
        "clustering": {"k_min": 2, "k_max": 6},
        "uniqueness": {"backend": "sklearn"},
        "embeddings": {"dino_model": tiny_model, "num_workers": 0},
        "output": {"csv_path": str(tmp_path / "balanced_train.csv")},
    }
    infos = []
    result = run_config(write_config(str(tmp_path), body), Progress(info=infos.append))
    assert result.uniqueness.computed == 64 and any("values are replaced" in m for m in infos)
    stored = load_tiles(tiles_database.connection, where_clause="id <= 64").set_index("source_id")
    computed = result.table.set_index("source_id")["uniqueness_score"]
    assert not (computed - stored.loc[computed.index, "uniqueness_score"]).abs().lt(1e-9).any()
    assert len(pd.read_csv(result.csv_path)) == 64


@pytest.mark.parametrize("method", ["uniqueness_only", "rank_max", "rank_multiply", "rank_add", "multiplicative"])
def test_masks_only_with_a_method_that_needs_uniqueness_fails_before_reading_masks(
        method, patch_records, synthetic_dataset, tmp_path, monkeypatch):
    # pytorch-smt-tools fails fast here; the plugin used to fall back to composition_only silently.
    from balanced_sampling_plugin import pipeline

    monkeypatch.setattr(pipeline, "compute_composition", lambda *a, **k: pytest.fail("masks were read"))
    body = {"mode": "masks_only", "sampling_method": method, "input": {"patch_records": patch_records[:64]},
            "output": {"csv_path": str(tmp_path / "x.csv")}}
    with pytest.raises(BalancedSamplingError) as error:
        run_config(write_config(synthetic_dataset.folder, body))
    message = str(error.value)
    assert f"sampling_method '{method}' needs uniqueness scores" in message
    assert "Set balanced_dataset.mode to 'both' (or 'embeddings')" in message
    assert "class_balanced or composition_only" in message
    assert not os.path.exists(tmp_path / "x.csv")


def test_masks_only_uses_precomputed_uniqueness_of_the_records(patch_records, synthetic_dataset, tmp_path):
    scored = [{**record, "uniqueness_score": (i % 17) / 17} for i, record in enumerate(patch_records)]
    body = {"mode": "masks_only", "sampling_method": "rank_max", "input": {"patch_records": scored},
            "clustering": {"k_selection": "fixed", "k": 4}, "output": {"csv_path": str(tmp_path / "x.csv")}}
    infos = []
    result = run_config(write_config(synthetic_dataset.folder, body), Progress(info=infos.append))
    assert result.sampling_method == "rank_max" and result.uniqueness is None
    assert any("precomputed uniqueness_score" in m for m in infos)


def test_invalid_config_names_the_key_and_writes_nothing(patch_records, tmp_path):
    body = {"input": {"patch_records": patch_records[:4]}, "clustering": {"kmin": 4},
            "output": {"csv_path": str(tmp_path / "x.csv")}}
    with pytest.raises(BalancedSamplingError, match=r"Unknown key 'balanced_dataset\.clustering\.kmin'"):
        run_config(write_config(str(tmp_path), body))
    assert not os.path.exists(tmp_path / "x.csv")


def test_cancel_writes_nothing(patch_records, synthetic_dataset, tmp_path):
    body = {"sampling_method": "class_balanced", "input": {"patch_records": patch_records},
            "output": {"csv_path": str(tmp_path / "x.csv")}}
    with pytest.raises(OperationCanceled):
        run_config(write_config(synthetic_dataset.folder, body), Progress(is_canceled=lambda: True))
    assert not os.path.exists(tmp_path / "x.csv")


def test_examples_come_in_both_forms():
    assert {"balanced_masks_only.yaml", "balanced_embeddings.yaml", "balanced_postgres.yaml",  # the documentation's
            "code_form_masks_only.yaml", "code_form_both.yaml", "code_form_postgres.yaml"} <= set(SHIPPED_EXAMPLES)


@pytest.mark.parametrize("name", SHIPPED_EXAMPLES)
def test_shipped_examples_parse(name):
    from balanced_sampling_plugin.config import load_config

    config = load_config(os.path.join(EXAMPLES, name))
    assert config.output.csv_path.endswith("balanced_train.csv")


@pytest.mark.parametrize("name", SHIPPED_EXAMPLES)
def test_shipped_examples_run_end_to_end(name, synthetic_dataset, patch_records, tmp_path, request):
    body = localised_example(name, synthetic_dataset, patch_records, tmp_path, request)
    infos = []
    result = run_config(write_config(str(tmp_path), body), Progress(info=infos.append))
    assert result.sampling_method == body["sampling_method"]
    mode = {"embeddings": "both"}.get(body["mode"], body["mode"])
    assert (result.uniqueness is not None) == (mode in ("both", "embeddings_only"))
    csv = pd.read_csv(result.csv_path)
    assert csv.columns[:len(CSV_COLUMNS)].tolist() == CSV_COLUMNS
    included = csv["excluded"].astype(str).str.lower() != "true"
    assert csv.loc[included, "sampler_weight"].mean() == pytest.approx(1.0)
    if body["output"].get("include_excluded", True):
        assert len(csv) == len(result.table)
    else:
        assert len(csv) == result.weights.n_included
    if body["output"].get("geojson_path"):
        geojson = read_geojson(result.geojson_path)
        assert len(geojson["features"]) == len(result.table)
        crs = body["output"].get("geojson_crs")
        if crs == "EPSG:4326":
            assert "crs" not in geojson and 9 <= geojson["features"][0]["geometry"]["coordinates"][0][0][0] <= 21
        elif crs is None:
            assert geojson["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    if body.get("boost", {}).get("rare_class_boost"):
        assert result.weights.rare_classes


def test_partial_precomputed_uniqueness_is_ignored():
    table = pd.DataFrame({"uniqueness_score": [0.1, float("nan"), 0.3], "excluded": [False, True, False]})
    assert without_partial_uniqueness(table) is table  # the missing score belongs to an excluded patch
    warnings = []
    partial = table.assign(excluded=False)
    assert "uniqueness_score" not in without_partial_uniqueness(partial, Progress(warning=warnings.append))
    assert "1 included patches have no uniqueness_score" in warnings[0]


@pytest.mark.parametrize("authid, crs_name", [("EPSG:3857", "urn:ogc:def:crs:EPSG::3857"), ("EPSG:4326", None),
                                              ("", None)])
def test_geojson_crs_member(authid, crs_name):
    table = pd.DataFrame({"patch_id": ["a"], "sampler_weight": [1.5], "uniqueness_score": [float("nan")]})
    ring = [(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]
    warnings = []
    collection = footprints_geojson(table, [ring], authid, Progress(warning=warnings.append))
    assert collection.get("crs", {}).get("properties", {}).get("name") == crs_name
    assert bool(warnings) == (authid == "")
    properties = collection["features"][0]["properties"]
    assert properties["sampler_weight"] == 1.5 and properties["uniqueness_score"] is None
    assert properties["excluded"] is None  # absent fields are null
    json.dumps(collection, allow_nan=False)


@pytest.mark.parametrize("given", [None, "rank_max", "class_balanced"])
def test_the_default_method_is_said_only_when_the_config_does_not_name_one(given, patch_records, synthetic_dataset,
                                                                          tmp_path):
    body = {"mode": "masks_only", "input": {"patch_records": patch_records},
            "clustering": {"k_selection": "fixed", "k": 4}, "output": {"csv_path": str(tmp_path / "out.csv")}}
    if given:
        body["sampling_method"] = given
    infos = []
    if given in (None, "rank_max"):  # rank_max needs uniqueness: an error in masks_only, saying if it is the default
        with pytest.raises(BalancedSamplingError) as error:
            run_config(write_config(synthetic_dataset.folder, body), Progress(info=infos.append))
        assert ("sampling_method is not set, and its default, 'rank_max', needs uniqueness" in str(error.value)) == (
            given is None)
        return
    result = run_config(write_config(synthetic_dataset.folder, body), Progress(info=infos.append))
    said = [line for line in infos if "sampling_method is not set" in line]
    assert result.sampling_method == given and said == []


def spy_on(monkeypatch, name):
    """Record the keyword arguments of every call of ``pipeline.<name>`` (which still runs)."""
    from balanced_sampling_plugin import pipeline

    calls, real = [], getattr(pipeline, name)
    monkeypatch.setattr(pipeline, name, lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    return calls


def test_directory_scan_input(synthetic_dataset, tmp_path):
    # The code's input form: two folders, images and masks paired by file name, windows cut here.
    folder = synthetic_dataset.folder
    body = {"mode": "masks_only", "sampling_method": "class_balanced",
            "input": {"image_dir": "images", "mask_dir": "masks", "extension": ".tif", "patch_size": 128,
                      "stride": 128},
            "clustering": {"k_selection": "fixed", "k": 4}, "output": {"csv_path": str(tmp_path / "out.csv")}}
    infos = []
    result = run_config(write_config(folder, body), Progress(info=infos.append))
    assert len(result.table) == 6 * 16 == len(pd.read_csv(result.csv_path))
    assert set(result.table["image_path"]) == set(synthetic_dataset.images)
    assert (result.table["mask_path"].map(os.path.basename) == result.table["image_path"].map(os.path.basename)).all()
    assert any("96 patches of 128 px (stride 128 px) cut from 6 image/mask pairs" in m for m in infos)
    # stride < patch_size overlaps: (512 - 256) / 128 + 1 = 3 windows a side
    body["input"].update(patch_size=256, stride=128)
    assert len(run_config(write_config(folder, body)).table) == 6 * 9
    body["input"]["extension"] = ".png"
    with pytest.raises(BalancedSamplingError, match=r"No file in .*images matches '\*\.png'"):
        run_config(write_config(folder, body))


def test_code_form_keys_reach_the_stages(synthetic_dataset, patch_records, tmp_path, monkeypatch):
    composition_calls = spy_on(monkeypatch, "compute_composition")
    weight_calls = spy_on(monkeypatch, "combine_weights")
    body = {"mode": "masks_only", "sampling_method": "composition_only", "num_workers": 2,
            "input": {"patch_records": patch_records},
            "clustering": {"k_selection": "fixed", "k": 4},
            "exclusion": {"exclude_mask_border_nodata": True, "exclude_image_black_border": False,
                          "black_border_tolerance": 3, "max_nodata_ratio": 0.9},
            "boost": {"rare_class_boost": True, "rare_class_ids": [6], "rare_class_multiplier": 4.0},
            "output": {"csv_path": str(tmp_path / "out.csv"), "include_excluded": False}}
    result = run_config(write_config(synthetic_dataset.folder, body))
    c = composition_calls[0]
    assert (c["workers"], c["exclude_border_nodata"], c["exclude_black_border"], c["black_tolerance"],
            c["max_nodata_ratio"]) == (2, True, False, 3.0, 0.9)
    assert c["min_entropy_threshold"] == 0.0  # off, compute_composition's default
    assert (weight_calls[0]["rare_boost"], weight_calls[0]["rare_classes"]) == (4.0, [6])
    assert result.weights.rare_classes == ("cls_6",)
    csv = pd.read_csv(result.csv_path)
    assert len(csv) == result.weights.n_included < len(result.table)  # include_excluded: false drops them
    assert (csv["sampler_weight"] > 0).all()
    # without the boost, the rare class's patches weigh less
    body["boost"]["rare_class_boost"] = False
    plain = run_config(write_config(synthetic_dataset.folder, body))
    assert weight_calls[1]["rare_boost"] is None
    rare = result.table["cls_6"].fillna(0).to_numpy() > 0.2
    assert result.table["sampler_weight"][rare].mean() > plain.table["sampler_weight"][rare].mean()


def test_min_entropy_threshold_excludes_low_entropy_patches(synthetic_dataset, patch_records, tmp_path):
    body = {"sampling_method": "class_balanced", "input": {"patch_records": patch_records},
            "clustering": {"k_selection": "fixed", "k": 4},
            "exclusion": {"min_entropy_threshold": 0.25}, "output": {"csv_path": str(tmp_path / "out.csv")}}
    result = run_config(write_config(synthetic_dataset.folder, body))
    table = result.table
    low = table["class_entropy"] < 0.25
    assert 0 < low.sum() < len(table) and table.loc[low, "excluded"].all()
    assert (table.loc[low, "sampler_weight"] == 0).all()


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_geojson_crs_reprojects_the_footprints(crs, synthetic_dataset, patch_records, tmp_path):
    from rasterio.crs import CRS
    from rasterio.warp import transform

    body = {"sampling_method": "class_balanced", "input": {"patch_records": patch_records[:16]},
            "clustering": {"k_selection": "fixed", "k": 2},
            "output": {"csv_path": str(tmp_path / "out.csv"), "geojson_path": str(tmp_path / "out.geojson"),
                       "geojson_crs": crs}}
    result = run_config(write_config(synthetic_dataset.folder, body))
    geojson = read_geojson(result.geojson_path)
    if crs == "EPSG:4326":
        assert "crs" not in geojson  # GeoJSON's default CRS, lon/lat
    else:
        assert geojson["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::3857"
    ring = geojson["features"][0]["geometry"]["coordinates"][0]
    x, y = result.rings[0][0]  # in the rasters' CRS (EPSG:32633)
    xs, ys = transform(CRS.from_epsg(32633), CRS.from_user_input(crs), [x], [y])
    assert ring[0] == pytest.approx([xs[0], ys[0]], abs=1e-6)
    if crs == "EPSG:4326":  # UTM 33N: longitude 9..21 E comes first
        assert 9 <= ring[0][0] <= 21 and 0 <= ring[0][1] <= 84


def test_embeddings_only_gives_every_included_patch_the_same_composition_weight(
        synthetic_dataset, patch_records, tiny_model, tmp_path):
    body = {"mode": "embeddings_only", "sampling_method": "rank_multiply", "input": {"patch_records": patch_records},
            "embeddings": {"dino_model": tiny_model, "num_workers": 0},
            "output": {"csv_path": str(tmp_path / "out.csv")}}
    infos = []
    result = run_config(write_config(synthetic_dataset.folder, body), Progress(info=infos.append))
    included = result.weights.included
    assert result.table.loc[included, "freq_cluster_weight"].nunique() == 1
    assert (result.table.loc[included, "freq_cluster_id"] == 0).all()
    assert any("'embeddings_only'" in m and "effectively ranks visual uniqueness" in m for m in infos)
    said = [m for m in infos if "documentation's defaults apply" in m]
    assert len(said) == 1 and "embeddings.use_gpu = false" in said[0] and "embeddings.batch_size = 32" in said[0]
    assert "clustering.k_min" not in said[0]  # embeddings_only does not cluster
    # rank_multiply with a constant composition rank orders the patches by uniqueness alone
    weights = result.table.loc[included, "sampler_weight"].rank(method="average")
    uniqueness = result.table.loc[included, "uniqueness_score"].rank(method="average")
    assert weights.corr(uniqueness) > 0.99


def test_postgres_section_of_the_code_form(tiles_database, tmp_path):
    # The code's form: backend: postgres and a postgres section (masks_only: rank_max uses the table's
    # precomputed uniqueness_score, so no model runs here).
    connection = tiles_database.connection
    body = {"backend": "postgres", "mode": "masks_only", "sampling_method": "rank_max",
            "postgres": {"host": connection["host"], "port": connection["port"], "database": tiles_database.dbname,
                         "user": connection["user"], "password": connection["password"], "table": "tiles",
                         "where_clause": "nodata_ratio < 0.05", "tile_id_column": "id",
                         "embedding_column": "embedding", "fetch_embeddings": False},
            "clustering": {"k_min": 4, "k_max": 20},
            "exclusion": {"exclude_mask_border_nodata": True, "exclude_image_black_border": True},
            "output": {"csv_path": str(tmp_path / "balanced_train.csv")}}
    result = run_config(write_config(str(tmp_path), body))
    assert result.sampling_method == "rank_max" and 0 < len(result.table) < tiles_database.rows
    assert len(pd.read_csv(result.csv_path)) == len(result.table)


def test_target_shares_from_the_weights_section(synthetic_dataset, patch_records, tmp_path):
    from balanced_sampling_plugin.weights import expected_class_shares, valid_pixel_counts

    body = {"mode": "masks_only", "sampling_method": "target_shares",
            "input": {"patch_records": patch_records}, "clustering": {"k_selection": "fixed", "k": 4},
            "weights": {"target_shares": {6: 0.05}, "max_weight": 8},
            "output": {"csv_path": str(tmp_path / "target.csv")}}
    infos = []
    result = run_config(write_config(synthetic_dataset.folder, body), Progress(info=infos.append))
    table = result.table
    included = ~table["excluded"].astype(bool).to_numpy()
    fields = [c for c in table.columns if c.startswith("cls_")]
    shares = expected_class_shares(table[fields].to_numpy(dtype=float)[included],
                                   table["sampler_weight"].to_numpy()[included], valid_pixel_counts(table)[included])
    assert shares[fields.index("cls_6")] == pytest.approx(0.05, abs=0.002)
    assert table["sampler_weight"].max() <= 8 * (1 + 1e-6)
    assert any(m.startswith("Target shares reached: cls_6 5.00%") for m in infos)
    csv = pd.read_csv(result.csv_path)
    assert csv["sampler_weight"].to_numpy() == pytest.approx(table["sampler_weight"].to_numpy())
