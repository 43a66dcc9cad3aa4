"""The YAML ``coreset:`` block and run_coreset_config on a training CSV written by Combine's exporter."""

import os

import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin.embedding_cache import EmbeddingCache
from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.export import write_training_csv
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.records import patch_ids, validate_records
from balanced_sampling_plugin.selection.config import load_coreset_config, run_coreset_config


def weighted_table(n=10):
    """n patches; entropy rises with the row, patch 9 (the highest) is excluded; weights 1..n."""
    rng = np.random.default_rng(0)
    cls_1 = rng.random(n)
    return pd.DataFrame({
        "image_path": [f"/data/tile_{i % 3}.tif" for i in range(n)],
        "mask_path": [f"/data/mask_{i % 3}.tif" for i in range(n)],
        "row_off": [256 * (i // 3) for i in range(n)], "col_off": [0] * n, "patch_size": [256] * n,
        "class_entropy": np.linspace(0.1, 1.0, n), "cls_1": cls_1, "cls_2": 1 - cls_1,
        "excluded": [False] * (n - 1) + [True], "freq_cluster_id": [i % 4 for i in range(n)],
        "sampler_weight": np.arange(1, n + 1, dtype=float)})


@pytest.fixture
def training_csv(tmp_path):
    path = tmp_path / "balanced_train.csv"
    write_training_csv(weighted_table(), path)
    return path


def write_yaml(path, body):
    path.write_text("coreset:\n" + "".join(f"  {line}\n" for line in body.strip().splitlines()), encoding="utf-8")
    return path


def test_lc_run_writes_the_selected_rows_with_weights_of_mean_one(tmp_path, training_csv):
    config = write_yaml(tmp_path / "coreset.yaml", """
method: lc
budget: 0.5
input_csv_path: balanced_train.csv
output_csv_path: out/coreset.csv
score_column: my_score
""")
    (tmp_path / "out").mkdir()
    messages = []
    progress = Progress(info=messages.append)
    run = run_coreset_config(config, progress)
    frame = pd.read_csv(tmp_path / "out" / "coreset.csv")
    # pool = rows 0..8 (9 excluded); round(0.5 * 9) = 5 highest entropies: rows 8, 7, 6, 5, 4
    assert run.n_pool == 9 and run.n_selected == 5
    assert frame["row_off"].tolist() == [256 * (i // 3) for i in (8, 7, 6, 5, 4)]
    assert frame["sampler_weight"].mean() == pytest.approx(1.0)
    np.testing.assert_allclose(frame["sampler_weight"], np.array([9, 8, 7, 6, 5]) / 7)
    assert list(frame.columns[:6]) == ["image", "mask", "row_off", "col_off", "patch_size", "sampler_weight"]
    assert frame["my_score"].tolist() == pytest.approx([1.0, 0.8 / 0.9, 0.7 / 0.9, 0.6 / 0.9, 0.5 / 0.9])
    assert set(frame["selection_step"]) == {"lc"}
    assert any("Random selection" in m for m in messages)
    assert run.comparison["random"]["selected"] == 5


def test_cb_reads_the_class_shares_from_class_dist_json(tmp_path, training_csv):
    config = {"coreset": {"method": "cb", "budget": 3, "budget_mode": "count",
                          "input_csv_path": str(training_csv), "output_csv_path": str(tmp_path / "cb.csv")}}
    run = run_coreset_config(config)
    assert run.n_selected == 3
    assert len(pd.read_csv(tmp_path / "cb.csv")) == 3


def test_fd_reads_the_embedding_cache(tmp_path, training_csv):
    table = validate_records(weighted_table())
    keys = patch_ids(table).to_numpy()
    EmbeddingCache(str(tmp_path / "emb.parquet")).save(
        keys, "dinov2-small|weights=x", np.random.default_rng(1).normal(size=(len(keys), 8)).astype(np.float32))
    config = {"coreset": {"method": "lc_fd", "budget": 0.4, "fd_k_min": 2, "fd_k_max": 4, "lc_fd_cutoff_m": 2,
                          "parquet_path": "emb.parquet", "input_csv_path": "balanced_train.csv",
                          "output_csv_path": "fd.csv"}}
    first = run_coreset_config(config, base_dir=str(tmp_path))
    rows = pd.read_csv(tmp_path / "fd.csv")
    assert first.n_selected == 4 and len(rows) == 4
    assert first.comparison["method"]["coverage_radius"] is not None
    again = run_coreset_config(config, base_dir=str(tmp_path))  # seeded: the same subset
    assert pd.read_csv(tmp_path / "fd.csv").equals(rows) and again.n_selected == 4


@pytest.mark.parametrize("block, message", [
    ({"method": "lc", "budgett": 0.3}, "coreset.budgett.*Did you mean 'budget'"),
    ({"method": "kcenter"}, "coreset.method"),
    ({"budget": 1.5}, r"coreset.budget.*\(0, 1\]"),
    ({"budget": 2.5, "budget_mode": "count"}, "coreset.budget.*whole number"),
    ({"fd_k_min": 5, "fd_k_max": 3}, "coreset.fd_k_max"),
    ({"fa_cb_lambda": 2}, "coreset.fa_cb_lambda"),
    ({"fd_use_vendi": "yes"}, "coreset.fd_use_vendi"),
])
def test_bad_blocks_name_the_dotted_key(block, message):
    with pytest.raises(BalancedSamplingError, match=message):
        load_coreset_config({"coreset": block}, require_paths=False)


def test_paths_are_required_and_resolved_against_the_file(tmp_path):
    with pytest.raises(BalancedSamplingError, match="coreset.input_csv_path"):
        load_coreset_config({"coreset": {"output_csv_path": "x.csv"}})
    with pytest.raises(BalancedSamplingError, match="coreset.parquet_path"):
        load_coreset_config({"coreset": {"method": "fd", "input_csv_path": "a.csv", "output_csv_path": "b.csv"}})
    with pytest.raises(BalancedSamplingError, match="no 'coreset' section"):
        load_coreset_config({"balanced_dataset": {}})
    config = write_yaml(tmp_path / "c.yaml", "input_csv_path: in.csv\noutput_csv_path: sub/out.csv")
    settings = load_coreset_config(config)
    assert settings.input_csv_path == str(tmp_path / "in.csv")
    assert settings.output_csv_path == str(tmp_path / "sub" / "out.csv")
    assert (settings.method, settings.budget, settings.budget_mode) == ("lc", 0.5, "fraction")


def test_output_over_the_input_is_refused_and_nothing_is_written(tmp_path, training_csv):
    before = training_csv.read_bytes()
    with pytest.raises(BalancedSamplingError, match="destroy the input"):
        run_coreset_config({"coreset": {"input_csv_path": str(training_csv), "output_csv_path": str(training_csv)}})
    assert training_csv.read_bytes() == before


def test_output_over_the_config_or_a_raster_of_the_csv_is_refused(tmp_path):
    """The coreset's CSV never replaces its own YAML or an image/mask the training CSV names."""
    table = weighted_table()
    table["image_path"] = [str(tmp_path / f"tile_{i % 3}.tif") for i in range(len(table))]
    table["mask_path"] = [str(tmp_path / f"mask_{i % 3}.tif") for i in range(len(table))]
    for i in range(3):
        (tmp_path / f"tile_{i}.tif").write_bytes(b"pixels")
        (tmp_path / f"mask_{i}.tif").write_bytes(b"classes")
    write_training_csv(table, tmp_path / "in.csv")
    config = write_yaml(tmp_path / "c.yaml", "input_csv_path: in.csv\noutput_csv_path: c.yaml")
    before = config.read_bytes()
    with pytest.raises(BalancedSamplingError, match=r"coreset\.output_csv_path '.*c\.yaml' is the input the config"):
        run_coreset_config(str(config))
    assert config.read_bytes() == before
    for target, field in (("tile_1.tif", "image_path"), ("mask_2.tif", "mask_path")):
        config = write_yaml(tmp_path / "c.yaml", f"input_csv_path: in.csv\noutput_csv_path: {target}")
        with pytest.raises(BalancedSamplingError, match=rf"'.*{target}' is the input raster of the CSV's {field}"):
            run_coreset_config(str(config))
        assert (tmp_path / target).read_bytes() in (b"pixels", b"classes")


@pytest.mark.parametrize("name", ["sampler_weight", "image", "Patch_Size", "selection_step", "uniqueness_score"])
def test_a_score_column_that_would_replace_a_csv_column_is_refused(tmp_path, training_csv, name):
    """score_column: sampler_weight once wrote the scores over the weights the trainer samples by."""
    body = {"input_csv_path": str(training_csv), "output_csv_path": str(tmp_path / "out.csv"), "score_column": name}
    with pytest.raises(BalancedSamplingError, match=rf"coreset\.score_column '{name}' is a column the coreset CSV "
                                                   "already has"):
        run_coreset_config({"coreset": body})
    assert not (tmp_path / "out.csv").exists()
    body["score_column"] = "my_score"
    run_coreset_config({"coreset": body})
    written = pd.read_csv(tmp_path / "out.csv")
    assert "my_score" in written.columns and written["sampler_weight"].mean() == pytest.approx(1.0)


def test_a_missing_input_names_its_key_and_a_missing_output_folder_is_made(tmp_path, training_csv):
    with pytest.raises(BalancedSamplingError, match=r"coreset\.input_csv_path '.*nope\.csv' does not exist"):
        run_coreset_config({"coreset": {"input_csv_path": str(tmp_path / "nope.csv"),
                                        "output_csv_path": str(tmp_path / "out.csv")}})
    run = run_coreset_config({"coreset": {"input_csv_path": str(training_csv),
                                          "output_csv_path": str(tmp_path / "new" / "sub" / "out.csv")}})
    assert os.path.isfile(run.output_csv_path)


def test_a_block_beside_a_run_without_embeddings_is_refused_before_the_run(tmp_path):
    """fd reads DINOv2 embeddings: beside a masks_only run with no cache it must fail before that run writes."""
    from balanced_sampling_plugin.selection.config import coreset_block_beside

    path = tmp_path / "both.yaml"
    path.write_text("balanced_dataset: {}\ncoreset: {method: fd, output_csv_path: sub.csv}\n")
    with pytest.raises(BalancedSamplingError, match=r"coreset\.parquet_path is missing; coreset method fd"):
        coreset_block_beside(path, str(tmp_path / "train.csv"), None, writes_cache=False)
    with pytest.raises(BalancedSamplingError, match=r"coreset\.parquet_path '.*emb\.parquet' does not exist, and the"):
        coreset_block_beside(path, str(tmp_path / "train.csv"), str(tmp_path / "emb.parquet"), writes_cache=False)
    # The run writes that cache (mode both), or it exists from an earlier run: fine.
    block = coreset_block_beside(path, str(tmp_path / "train.csv"), str(tmp_path / "emb.parquet"))
    assert block.parquet_path == str(tmp_path / "emb.parquet")
    (tmp_path / "emb.parquet").write_bytes(b"")
    assert coreset_block_beside(path, str(tmp_path / "train.csv"), str(tmp_path / "emb.parquet"),
                                writes_cache=False).method == "fd"
    path.write_text("balanced_dataset: {}\ncoreset: {method: lc, output_csv_path: sub.csv}\n")
    assert coreset_block_beside(path, str(tmp_path / "train.csv"), None, writes_cache=False).method == "lc"


def test_every_patch_excluded_writes_nothing(tmp_path):
    table = weighted_table()
    table["excluded"] = True
    table["sampler_weight"] = 1.0
    write_training_csv(table, tmp_path / "in.csv")
    with pytest.raises(BalancedSamplingError, match="not written"):
        run_coreset_config({"coreset": {"input_csv_path": str(tmp_path / "in.csv"),
                                        "output_csv_path": str(tmp_path / "out.csv")}})
    assert not (tmp_path / "out.csv").exists()
