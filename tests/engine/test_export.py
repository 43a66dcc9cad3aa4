"""Training CSV: columns, names, excluded rows, relative paths, atomic writes."""

import os

import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.export import training_frame, write_training_csv
from balanced_sampling_plugin.file_safety import atomic_write


def weighted_table(folder):
    return pd.DataFrame(
        {
            "image_path": [os.path.join(folder, "images", f"t{i}.tif") for i in range(3)],
            "mask_path": [os.path.join(folder, "masks", f"t{i}.tif") for i in range(3)],
            "row_off": [0, 256, 0],
            "col_off": [0, 0, 256.0],  # QGIS may hand integers over as floats
            "patch_size": [256, 256, 256],
            "sampler_weight": [1.5, 0.0, 0.5],
            "excluded": [False, True, False],
            "patch_id": ["a", "b", "c"],
            "freq_cluster_id": [0, 1, 0],
            "cls_0": [1.0, 0.5, 0.2],
        }
    )


def test_default_columns_and_values(tmp_path):
    path = write_training_csv(weighted_table(str(tmp_path)), tmp_path / "train.csv")
    written = pd.read_csv(path)
    assert list(written.columns) == [
        "image", "mask", "row_off", "col_off", "patch_size", "sampler_weight",
        "patch_id", "freq_cluster_id", "excluded",
    ]
    assert written["col_off"].tolist() == [0, 0, 256]
    assert written["sampler_weight"].tolist() == [1.5, 0.0, 0.5]
    assert written["image"].iloc[0] == os.path.join(str(tmp_path), "images", "t0.tif")


def test_configurable_names_and_no_diagnostics(tmp_path):
    path = write_training_csv(
        weighted_table(str(tmp_path)), tmp_path / "t.csv",
        image_column="image_path", mask_column="mask_path", diagnostic_columns=(),
    )
    assert list(pd.read_csv(path).columns) == [
        "image_path", "mask_path", "row_off", "col_off", "patch_size", "sampler_weight",
    ]


def test_drop_excluded(tmp_path):
    path = write_training_csv(weighted_table(str(tmp_path)), tmp_path / "t.csv", drop_excluded=True)
    assert pd.read_csv(path)["patch_id"].tolist() == ["a", "c"]


def test_relative_paths(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    path = write_training_csv(weighted_table(str(tmp_path)), out / "t.csv", relative_paths=True)
    written = pd.read_csv(path)
    assert written["image"].iloc[0] == os.path.join("..", "images", "t0.tif")
    assert written["mask"].iloc[2] == os.path.join("..", "masks", "t2.tif")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.drop(columns="sampler_weight"), "Combine sampler weights"),
        (lambda t: t.assign(sampler_weight=[1.0, np.nan, 1.0]), "row 1"),
        (lambda t: t.assign(sampler_weight=0.0), "positive"),
        (lambda t: t.drop(columns="mask_path"), "mask_path"),
    ],
)
def test_bad_tables(tmp_path, change, message):
    with pytest.raises(BalancedSamplingError, match=message):
        write_training_csv(change(weighted_table(str(tmp_path))), tmp_path / "t.csv")


@pytest.mark.parametrize("missing", [None, np.nan])
def test_null_sampler_weight_reads_null_not_nan(tmp_path, missing):
    table = weighted_table(str(tmp_path)).astype({"sampler_weight": object})
    table.loc[2, "sampler_weight"] = missing
    with pytest.raises(BalancedSamplingError) as error:
        training_frame(table)
    assert str(error.value) == (
        "Field 'sampler_weight' of the patch at row 2 is NULL (empty); expected a number >= 0. "
        "Re-run 'Combine sampler weights'."
    )


def test_all_excluded_and_dropped(tmp_path):
    table = weighted_table(str(tmp_path)).assign(excluded=True)
    with pytest.raises(BalancedSamplingError, match="excluded"):
        training_frame(table, drop_excluded=True)


def test_a_failure_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("old content\n")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write("half of the new")
            raise RuntimeError("disk full")
    assert path.read_text() == "old content\n"
    assert os.listdir(tmp_path) == ["train.csv"]  # no temporary file left behind


def test_a_failing_csv_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "train.csv"
    path.write_text("old content\n")

    def boom(self, handle, **kwargs):
        handle.write("image,mask\n")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError):
        write_training_csv(weighted_table(str(tmp_path)), path)
    assert path.read_text() == "old content\n"
    assert os.listdir(tmp_path) == ["train.csv"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_atomic_write_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    os.chmod(path, 0o640)
    with atomic_write(path) as handle:
        handle.write("new")
    assert path.read_text() == "new"
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_atomic_write_into_a_missing_folder(tmp_path):
    with pytest.raises(BalancedSamplingError, match="does not exist"):
        with atomic_write(tmp_path / "nope" / "x.csv") as handle:
            handle.write("x")
