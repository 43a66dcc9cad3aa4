"""The balanced_dataset YAML config: defaults, the documented examples, unknown keys and bad values."""

import os
import textwrap

import pytest

from balanced_sampling_plugin.config import (
    COLUMN_KEYS,
    BalancedDatasetConfig,
    DirectoryInput,
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
    return {"balanced_dataset": {key: value for key, value in body.items() if value is not None}}  # None: left out


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
    assert config.mode == "both" and config.runs_embeddings  # the documentation's "embeddings" is the code's "both"
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
        ({"outputs": {}}, "balanced_dataset.outputs", "input, postgres, backend, mode, sampling_method"),
        ({"input": {"patch_records": [RECORD], "strides": 256}}, "balanced_dataset.input.strides",
         "patch_records, image_dir, mask_dir, extension, patch_size, stride, host"),
        ({"postgres": {"hots": "db"}, "backend": "postgres", "input": None}, "balanced_dataset.postgres.hots",
         "host, port"),
        ({"boost": {"rare_class": True}}, "balanced_dataset.boost.rare_class", "rare_class_boost, rare_class_ids"),
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
        ({"mode": "embedding"}, (r"balanced_dataset\.mode is 'embedding'; expected one of masks_only, "
                                 r"embeddings_only, both, embeddings")),
        ({"backend": "sqlite"}, r"balanced_dataset\.backend is 'sqlite'; expected one of local, postgres"),
        ({"num_workers": 0}, r"balanced_dataset\.num_workers is 0; expected an integer >= 1"),
        ({"boost": {"rare_class_ids": [6, "7"]}}, r"boost\.rare_class_ids is \[6, '7'\]; expected a list of class"),
        ({"boost": {"rare_class_multiplier": 0.5}}, r"rare_class_multiplier is 0\.5; expected a number >= 1"),
        ({"exclusion": {"min_entropy_threshold": -0.1}}, r"min_entropy_threshold is -0\.1; expected a number >= 0"),
        ({"exclusion": {"black_border_tolerance": 3, "black_tolerance": 3}},
         r"exclusion\.black_border_tolerance and balanced_dataset\.exclusion\.black_tolerance name the same"),
        ({"output": {"csv_path": "x.csv", "include_excluded": "no"}}, r"include_excluded is 'no'; expected true"),
        ({"output": {"csv_path": "x.csv", "geojson_crs": "EPSG:999999"}},
         r"output\.geojson_crs is 'EPSG:999999'; expected a coordinate reference system"),
        ({"input": {"image_dir": "images"}}, r"balanced_dataset\.input\.mask_dir is required with"),
        ({"input": {"image_dir": "i", "mask_dir": "m", "extension": "*.tif"}}, r"input\.extension is '\*\.tif'"),
        ({"input": {"image_dir": "i", "mask_dir": "m", "stride": 0}}, r"input\.stride is 0; expected an integer"),
        ({"input": {"patch_records": [RECORD], "image_dir": "i"}}, r"input holds keys of several inputs"),
        ({"postgres": {"database": "db"}, "input": None},
         r"balanced_dataset\.postgres is given but balanced_dataset\.backend is 'local'"),
        ({"backend": "postgres"}, r"backend is 'postgres' but neither balanced_dataset\.postgres nor"),
        ({"input": {"database": "db", "fetch_embeddings": "yes"}},
         r"balanced_dataset\.input\.fetch_embeddings is 'yes'; expected true or false"),
        ({"input": {"database": "db", "embedding_column": " "}},
         r"balanced_dataset\.input\.embedding_column is ' '; expected a column name"),
        ({"input": {"database": "db", "embedding_column": 3}}, r"input\.embedding_column is 3; expected text"),
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
        ({"weights": {"min_ess": 0}}, r"balanced_dataset\.weights\.min_ess is 0; expected a number from 0\.01 to 1"),
        ({"weights": {"target_shares": [0.1]}}, r"weights\.target_shares is \[0\.1\]; expected a mapping of class"),
        ({"weights": {"max_weight": 0.5}}, r"weights\.max_weight is 0\.5"),
        ({"sampling_method": "sqrt_inverse_freq", "weights": {"class_alpha": 1.0}},
         r"sampling_method 'sqrt_inverse_freq' means class_alpha = 0\.5, but balanced_dataset\.weights\.class_alpha"),
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


def test_a_model_folder_of_the_working_directory_is_never_picked_silently(tmp_path, monkeypatch):
    """'models/tiny' next to the config is that folder; one only in the working directory is refused (it could
    be a hub id too), and a path-like name that exists nowhere is named by its full path next to the config."""
    (tmp_path / "cwd" / "models" / "tiny").mkdir(parents=True)
    (tmp_path / "conf").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    body = """
        balanced_dataset:
          mode: {mode}
          input:
            patch_records:
              - {{image_path: a.tif, mask_path: m.tif, row_off: 0, col_off: 0, patch_size: 64}}
          embeddings: {{dino_model: {model}}}
          output: {{csv_path: out.csv}}
        """
    path = write(str(tmp_path / "conf"), body.format(mode="embeddings", model="models/tiny"))
    with pytest.raises(BalancedSamplingError, match=r"balanced_dataset\.embeddings\.dino_model 'models/tiny' is "
                                                   r"not a folder next to the config .*working directory"):
        load_config(path)
    # A mode that never loads the model does not care.
    path = write(str(tmp_path / "conf"), body.format(mode="masks_only", model="models/tiny"))
    assert load_config(path).embeddings.dino_model == "models/tiny"
    path = write(str(tmp_path / "conf"), body.format(mode="embeddings", model="./models/missing"))
    assert load_config(path).embeddings.dino_model == str(tmp_path / "conf" / "models" / "missing")
    path = write(str(tmp_path / "conf"), body.format(mode="embeddings", model="facebook/dinov2-small"))
    assert load_config(path).embeddings.dino_model == "facebook/dinov2-small"  # a hub id stays one


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(str(tmp_path), "balanced_dataset:\n  mode: [masks_only\n  input: {}\n")
    with pytest.raises(BalancedSamplingError, match=r"config\.yaml is not valid YAML \(line \d+, column \d+\)"):
        load_config(path)


def test_missing_file():
    with pytest.raises(BalancedSamplingError, match="does not exist"):
        load_config("/nonexistent/balanced.yaml")


# The form of pytorch-smt-tools' code (its configuration dataclasses): backend + postgres section, mode both,
# the longer exclusion names, boost, and the output keys the documentation does not show.
CODE_FORM_POSTGRES = """
balanced_dataset:
  backend: postgres
  mode: both
  sampling_method: rank_max
  num_workers: 8
  postgres:
    host: db.example
    port: 5433
    database: dataset_explorer
    user: reader
    password: secret
    image_path_column: file_path
    class_dist_column: class_dist
    embedding_column: embedding
    tile_id_column: id
    where_clause: "split = 'train'"
    fetch_embeddings: false
  clustering: {k_min: 8, k_max: 20, k_selection: elbow, random_state: 0}
  uniqueness: {k_neighbors: 5, backend: sklearn}
  embeddings: {dino_model: facebook/dinov2-base, batch_size: 64, use_gpu: true, num_workers: 4}
  exclusion:
    exclude_mask_border_nodata: true
    exclude_image_black_border: false
    black_border_tolerance: 5
    nodata_class: 0
    min_entropy_threshold: 0.1
    max_nodata_ratio: 0.5
  boost: {rare_class_boost: true, rare_class_ids: [5, 6], rare_class_multiplier: 4.0}
  output:
    csv_path: out/balanced.csv
    include_excluded: false
    geojson_path: out/balanced.geojson
    geojson_crs: EPSG:4326
"""


def test_code_form_with_a_postgres_section_parses(tmp_path):
    config = load_config(write(str(tmp_path), CODE_FORM_POSTGRES))
    source = config.input
    assert isinstance(source, PostgresInput) and config.backend == "postgres"
    assert (source.host, source.port, source.user, source.table) == ("db.example", 5433, "reader", "tile")
    assert source.where_clause == "split = 'train'" and source.embedding_column == "embedding"
    assert source.fetch_embeddings is False
    assert source.columns == {"file_path": "file_path", "class_dist": "class_dist", "id": "id"}
    assert config.mode == "both" and config.runs_embeddings and config.num_workers == 8
    x = config.exclusion
    assert (x.exclude_border_nodata, x.exclude_black_border, x.black_tolerance, x.min_entropy_threshold,
            x.max_nodata_ratio) == (True, False, 5.0, 0.1, 0.5)
    b = config.boost
    assert (b.rare_class_boost, b.rare_class_ids, b.rare_class_multiplier, b.multiplier) == (True, [5, 6], 4.0, 4.0)
    o = config.output
    assert (o.include_excluded, o.geojson_crs) == (False, "EPSG:4326")
    assert o.csv_path == str(tmp_path / "out" / "balanced.csv")
    assert config.defaults_applied == []  # every key with a disputed default is set


def test_plugin_defaults_of_the_new_keys_and_the_documented_defaults_it_applies(tmp_path):
    config = load_config(minimal(), base_dir=str(tmp_path))
    assert (config.backend, config.num_workers, config.runs_embeddings) == ("local", None, False)
    assert config.exclusion.min_entropy_threshold == 0.0
    b = config.boost
    assert (b.rare_class_boost, b.rare_class_ids, b.rare_class_multiplier, b.multiplier) == (False, None, 3.0, None)
    assert (config.output.include_excluded, config.output.geojson_crs) == (True, None)
    assert config.defaults_applied == [("balanced_dataset.clustering.k_min", 4), ("balanced_dataset.clustering.k_max", 16),
                                       ("balanced_dataset.embeddings.use_gpu", False),
                                       ("balanced_dataset.embeddings.batch_size", 32)]
    partly = load_config(minimal(clustering={"k_min": 2}, embeddings={"batch_size": 8}), base_dir=str(tmp_path))
    assert [key for key, _ in partly.defaults_applied] == ["balanced_dataset.clustering.k_max",
                                                           "balanced_dataset.embeddings.use_gpu"]


@pytest.mark.parametrize("mode, stored, embeddings", [("masks_only", "masks_only", False),
                                                      ("embeddings_only", "embeddings_only", True),
                                                      ("both", "both", True), ("embeddings", "both", True)])
def test_modes(mode, stored, embeddings):
    config = load_config(minimal(mode=mode))
    assert (config.mode, config.runs_embeddings) == (stored, embeddings)


def test_documentation_form_keeps_the_database_keys_under_input_with_backend_postgres_or_unset():
    for extra in ({}, {"backend": "postgres"}):
        config = load_config(minimal(input={"database": "db", "embedding_column": "emb"}, **extra))
        assert isinstance(config.input, PostgresInput) and config.input.table == "tiles"
        assert config.input.embedding_column == "emb"


def test_both_inputs_at_once_are_refused():
    with pytest.raises(BalancedSamplingError, match=r"Both balanced_dataset\.input and balanced_dataset\.postgres"):
        load_config(minimal(backend="postgres", postgres={"database": "db"}))


def test_directory_input(tmp_path):
    config = load_config(minimal(input={"image_dir": "images", "mask_dir": "/data/masks"}), base_dir=str(tmp_path))
    folders = config.input
    assert isinstance(folders, DirectoryInput)
    assert (folders.image_dir, folders.mask_dir) == (str(tmp_path / "images"), "/data/masks")
    assert (folders.extension, folders.pattern, folders.patch_size, folders.stride) == (".tif", "*.tif", 256, 256)
    other = load_config(minimal(input={"image_dir": "i", "mask_dir": "i", "extension": "png", "patch_size": 128,
                                       "stride": 64}))
    assert (other.input.pattern, other.input.patch_size, other.input.stride) == ("*.png", 128, 64)


def test_exclusion_aliases_and_existing_names_are_both_read():
    aliases = load_config(minimal(exclusion={"exclude_mask_border_nodata": False, "exclude_image_black_border": False,
                                             "black_border_tolerance": 2}))
    names = load_config(minimal(exclusion={"exclude_border_nodata": False, "exclude_black_border": False,
                                           "black_tolerance": 2}))
    assert aliases.exclusion == names.exclusion
    assert (names.exclusion.exclude_border_nodata, names.exclusion.black_tolerance) == (False, 2.0)


def test_an_alias_misspelt_is_suggested():
    with pytest.raises(BalancedSamplingError, match=r"Did you mean 'exclude_mask_border_nodata'\?"):
        load_config(minimal(exclusion={"exclude_mask_border_nodat": True}))


def test_weights_section_and_the_new_method_names():
    config = load_config(minimal(sampling_method="target_shares",
                                 weights={"target_shares": {6: 0.08, 4: 0.1}, "max_weight": 5}))
    assert config.sampling_method == "target_shares"
    options = config.weights.options()
    assert options["target_shares"] == {6: 0.08, 4: 0.1} and options["max_weight"] == 5
    assert options["min_ess"] == 0.5 and options["temperature"] == 0.01 and options["class_alpha"] == 0.5
    assert load_config(minimal(weights={"target_shares": "6:8%"})).weights.target_shares == "6:8%"
    alias = load_config(minimal(sampling_method="sqrt_inverse_freq", weights={"class_alpha": 0.5}))
    assert alias.sampling_method == "class_balanced" and alias.weights.class_alpha == 0.5
    for method in ("repeat_factor", "rare_class_sampling"):
        assert load_config(minimal(sampling_method=method)).sampling_method == method
