"""The balanced_dataset YAML config: defaults, the documented examples, unknown keys and bad values."""

import os
import textwrap

import pytest

from balanced_sampling_plugin.config import (
    COLUMN_KEYS,
    BalancedDatasetConfig,
    LocalInput,
    PostgresInput,
    load_config,
)
from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.sources.postgres import DEFAULT_COLUMNS

RECORD = {"image_path": "images/tile_001.tif", "mask_path": "masks/tile_001.tif", "row_off": 0, "col_off": 0,
          "patch_size": 256}

# The three examples of the pytorch-smt-tools documentation (REFERENCE.md), "..." filled in.
MASKS_ONLY_EXAMPLE = """
balanced_dataset:
  mode: masks_only
  sampling_method: rank_max
  input:
    patch_records:
      - image_path: /data/images/tile_001.tif
        mask_path: /data/masks/tile_001.tif
        row_off: 0
        col_off: 0
        patch_size: 256
  clustering:
    k_min: 4
    k_max: 16
    k_selection: elbow   # automatic elbow heuristic
    random_state: 42
  exclusion:
    exclude_border_nodata: true
    exclude_black_border: true
    nodata_class: 0
  output:
    csv_path: /data/balanced_train.csv
    # geojson_path: /data/balanced_train.geojson
"""

EMBEDDINGS_EXAMPLE = """
balanced_dataset:
  mode: embeddings
  sampling_method: rank_max
  input:
    patch_records:
      - {image_path: /data/images/tile_001.tif, mask_path: /data/masks/tile_001.tif,
         row_off: 0, col_off: 256, patch_size: 256}
  clustering:
    k_min: 4
    k_max: 16
    k_selection: elbow
  uniqueness:
    k_neighbors: 5
    backend: hnsw
  embeddings:
    dino_model: facebook/dinov2-base
    batch_size: 32
    num_workers: 4
    use_gpu: false
    parquet_path: /data/embeddings.parquet
  exclusion:
    exclude_border_nodata: true
    exclude_black_border: true
  output:
    csv_path: /data/balanced_train.csv
    geojson_path: /data/balanced_train.geojson
"""

POSTGRES_EXAMPLE = """
balanced_dataset:
  mode: embeddings
  sampling_method: rank_max
  input:
    host: localhost
    port: 5432
    database: dataset_explorer
    user: postgres
    password: ""
    table: tiles
    where_clause: "nodata_ratio < 0.05"
  clustering:
    k_min: 4
    k_max: 20
    k_selection: elbow
  uniqueness:
    k_neighbors: 5
    backend: hnsw
  embeddings:
    dino_model: facebook/dinov2-base
    batch_size: 32
    num_workers: 4
    use_gpu: false
    parquet_path: /data/embeddings.parquet
  exclusion:
    exclude_border_nodata: true
    exclude_black_border: true
  output:
    csv_path: /data/balanced_train.csv
"""


def minimal(**sections):
    body = {"input": {"patch_records": [RECORD]}, "output": {"csv_path": "out.csv"}}
    body.update(sections)
    return {"balanced_dataset": body}


def write(folder, text, name="config.yaml"):
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(text))
    return path


def test_defaults(tmp_path):
    config = load_config(minimal(), base_dir=str(tmp_path))
    assert isinstance(config, BalancedDatasetConfig) and config.source is None
    assert (config.mode, config.sampling_method) == ("masks_only", "rank_max")
    c = config.clustering
    assert (c.k_min, c.k_max, c.k_selection, c.k, c.random_state) == (4, 16, "elbow", None, 42)
    assert (config.uniqueness.k_neighbors, config.uniqueness.backend) == (5, "sklearn")
    assert config.uniqueness.reproducible is False
    e = config.embeddings
    assert (e.dino_model, e.batch_size, e.num_workers, e.use_gpu, e.parquet_path) == (
        "facebook/dinov2-base", 32, 4, False, None)
    x = config.exclusion
    assert (x.exclude_border_nodata, x.exclude_black_border, x.nodata_class, x.black_tolerance,
            x.max_nodata_ratio) == (True, True, 0, 0.0, 1.0)
    assert config.output.csv_path == os.path.join(str(tmp_path), "out.csv")
    assert config.output.geojson_path is None
    records = config.input.patch_records
    assert isinstance(config.input, LocalInput) and len(records) == 1
    assert records.loc[0, "image_path"] == os.path.join(str(tmp_path), "images", "tile_001.tif")
    assert "patch_id" in records.columns


def test_masks_only_example_parses(tmp_path):
    config = load_config(write(str(tmp_path), MASKS_ONLY_EXAMPLE))
    assert config.mode == "masks_only" and config.sampling_method == "rank_max"
    assert config.input.patch_records.loc[0, "mask_path"] == "/data/masks/tile_001.tif"
    assert config.output.csv_path == "/data/balanced_train.csv" and config.output.geojson_path is None
    assert config.exclusion.nodata_class == 0
    assert config.source == os.path.join(str(tmp_path), "config.yaml")


def test_embeddings_example_parses(tmp_path):
    config = load_config(write(str(tmp_path), EMBEDDINGS_EXAMPLE))
    assert config.mode == "embeddings"
    assert (config.uniqueness.k_neighbors, config.uniqueness.backend) == (5, "hnsw")
    e = config.embeddings
    assert (e.dino_model, e.batch_size, e.num_workers, e.use_gpu, e.parquet_path) == (
        "facebook/dinov2-base", 32, 4, False, "/data/embeddings.parquet")
    assert config.output.geojson_path == "/data/balanced_train.geojson"
    assert config.input.patch_records.loc[0, "col_off"] == 256


def test_postgres_example_parses(tmp_path):
    config = load_config(write(str(tmp_path), POSTGRES_EXAMPLE))
    source = config.input
    assert isinstance(source, PostgresInput)
    assert (source.host, source.port, source.database, source.user, source.password, source.table) == (
        "localhost", 5432, "dataset_explorer", "postgres", "", "tiles")
    assert source.where_clause == "nodata_ratio < 0.05" and source.columns == {}
    assert source.connection() == dict(host="localhost", port=5432, dbname="dataset_explorer", user="postgres",
                                       password="")
    assert config.clustering.k_max == 20


def test_postgres_column_keys_map_to_roles_and_repr_hides_password():
    config = load_config(minimal(input={"database": "db", "password": "hunter2", "image_path_column": "img",
                                        "tile_id_column": "tile_id"}))
    assert config.input.columns == {"file_path": "img", "id": "tile_id"}
    assert config.input.host == "localhost" and config.input.table == "tiles"
    assert "hunter2" not in repr(config.input) and "hunter2" not in repr(config)
    assert set(COLUMN_KEYS.values()) == set(DEFAULT_COLUMNS)  # one config key per column role
    with pytest.raises(BalancedSamplingError, match=r"input\.password has the wrong type; expected text") as error:
        load_config(minimal(input={"database": "db", "password": 987654321}))
    assert "987654321" not in str(error.value)


@pytest.mark.parametrize(
    "sections, key, accepted",
    [
        ({"clustering": {"kmin": 4}}, "balanced_dataset.clustering.kmin", "k_min, k_max, k_selection, k, random_state"),
        ({"exclusion": {"nodata": 0}}, "balanced_dataset.exclusion.nodata", "exclude_border_nodata"),
        ({"outputs": {}}, "balanced_dataset.outputs", "input, mode, sampling_method, clustering"),
        ({"input": {"patch_records": [RECORD], "stride": 256}}, "balanced_dataset.input.stride", "patch_records, host"),
    ],
)
def test_unknown_key_names_its_path_and_the_accepted_keys(sections, key, accepted):
    with pytest.raises(BalancedSamplingError) as error:
        load_config(minimal(**sections))
    assert f"'{key}'" in str(error.value) and accepted in str(error.value)


def test_nndescent_and_reproducible_are_accepted():
    config = load_config(minimal(uniqueness={"backend": "nndescent", "reproducible": True}))
    assert (config.uniqueness.backend, config.uniqueness.reproducible) == ("nndescent", True)


def test_unknown_key_suggests_the_close_one(tmp_path):
    path = write(str(tmp_path), MASKS_ONLY_EXAMPLE.replace("k_min: 4", "kmin: 4"))
    with pytest.raises(BalancedSamplingError, match=r"Did you mean 'k_min'\?") as error:
        load_config(path)
    assert str(error.value).startswith(path) and "balanced_dataset.clustering.kmin" in str(error.value)


@pytest.mark.parametrize(
    "sections, match",
    [
        ({"clustering": {"k_min": 12, "k_max": 8}}, r"balanced_dataset\.clustering\.k_min \(12\) must not exceed"),
        ({"clustering": {"k_selection": "fixed"}}, r"balanced_dataset\.clustering\.k is required"),
        ({"clustering": {"k_selection": "silhouette"}}, r"k_selection is 'silhouette'; expected one of elbow, fixed"),
        ({"clustering": {"k_min": "4"}}, r"balanced_dataset\.clustering\.k_min is '4'; expected an integer"),
        ({"sampling_method": "rank_min"}, r"sampling_method is 'rank_min'; expected one of rank_max"),
        ({"mode": "both"}, r"balanced_dataset\.mode is 'both'; expected one of masks_only, embeddings"),
        ({"uniqueness": {"backend": "annoy"}}, r"uniqueness\.backend is 'annoy'; expected one of hnsw, faiss, sklearn"),
        ({"uniqueness": {"k_neighbors": 0}}, r"k_neighbors is 0; expected an integer >= 1"),
        ({"uniqueness": {"reproducible": "always"}}, r"uniqueness\.reproducible is 'always'; expected true or false"),
        ({"embeddings": {"use_gpu": "yes"}}, r"embeddings\.use_gpu is 'yes'; expected true or false"),
        ({"embeddings": {"batch_size": 0}}, r"embeddings\.batch_size is 0"),
        ({"exclusion": {"max_nodata_ratio": 1.5}}, r"max_nodata_ratio is 1\.5; expected a number from 0 to 1"),
        ({"clustering": 5}, r"balanced_dataset\.clustering is 5; expected a mapping"),
        ({"output": {"geojson_path": "x.geojson"}}, r"balanced_dataset\.output\.csv_path is required"),
        ({"input": {}}, r"balanced_dataset\.input is empty"),
        ({"input": {"patch_records": [RECORD], "host": "db"}}, r"both patch_records and database keys \(host\)"),
        ({"input": {"database": "db", "port": "5432"}}, r"balanced_dataset\.input\.port is '5432'"),
        ({"input": {"patch_records": [{**RECORD, "row_off": -1}]}}, r"patch_records\[0\]: 'row_off' is -1"),
    ],
)
def test_bad_values_name_the_key(sections, match):
    with pytest.raises(BalancedSamplingError, match=match):
        load_config(minimal(**sections))


def test_missing_root_and_input():
    with pytest.raises(BalancedSamplingError, match=r"no 'balanced_dataset' section \(found: train_dataset\)"):
        load_config({"train_dataset": {}})
    with pytest.raises(BalancedSamplingError, match=r"balanced_dataset\.input is required"):
        load_config({"balanced_dataset": {"output": {"csv_path": "x.csv"}}})


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    folder = tmp_path / "conf"
    (folder / "models" / "tiny").mkdir(parents=True)
    path = write(str(folder), """
        balanced_dataset:
          mode: embeddings
          input:
            patch_records:
              - {image_path: ../data/a.tif, mask_path: ~/masks/a.tif, row_off: 0, col_off: 0, patch_size: 64}
          embeddings: {dino_model: models/tiny, parquet_path: cache/emb.parquet}
          output: {csv_path: out/train.csv, geojson_path: out/train.geojson}
        """)
    config = load_config(path)
    assert config.input.patch_records.loc[0, "image_path"] == str(tmp_path / "data" / "a.tif")
    assert config.input.patch_records.loc[0, "mask_path"] == os.path.expanduser("~/masks/a.tif")
    assert config.embeddings.dino_model == str(folder / "models" / "tiny")
    assert config.embeddings.parquet_path == str(folder / "cache" / "emb.parquet")
    assert config.output.csv_path == str(folder / "out" / "train.csv")
    assert config.output.geojson_path == str(folder / "out" / "train.geojson")


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(str(tmp_path), "balanced_dataset:\n  mode: [masks_only\n  input: {}\n")
    with pytest.raises(BalancedSamplingError, match=r"config\.yaml is not valid YAML \(line \d+, column \d+\)"):
        load_config(path)


def test_missing_file():
    with pytest.raises(BalancedSamplingError, match="does not exist"):
        load_config("/nonexistent/balanced.yaml")
