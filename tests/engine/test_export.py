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
        "patch_id", "excluded", "freq_cluster_id", "class_dist_json",
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


TRAINER = ["image", "mask", "row_off", "col_off", "patch_size", "sampler_weight"]
TOOL = ["class_entropy", "nodata_ratio", "has_mask_border_nodata", "has_image_black_border", "has_low_entropy",
        "has_high_nodata", "excluded", "freq_cluster_id", "freq_cluster_size", "freq_cluster_weight",
        "uniqueness_score", "class_dist_json"]


def composition_table(folder):
    """A table as composition + uniqueness + combine leave it (booleans as QGIS may give them back)."""
    return pd.DataFrame({
        "image_path": [os.path.join(folder, f"t{i}.tif") for i in range(5)],
        "mask_path": [os.path.join(folder, f"m{i}.tif") for i in range(5)],
        "row_off": 0, "col_off": [0, 64, 128, 192, 256], "patch_size": 64,
        "patch_id": list("abcde"),
        "cls_1": [1 / 3, 1.0, 0.0, 0.25, 0.0],
        "cls_2": [2 / 3, 0.0, 0.0, 0.75, 0.0],
        "cls_10": [0.0, 0.0, 1.0, 0.0, None],
        "class_entropy": [0.6365141682948128, 0.0, 0.0, 0.5623351446188083, 0.0],
        "nodata_ratio": [0.0, 0.1, 0.9, 0.0, 1.0],
        "border_nodata": [False, True, 1, 0, None],
        "black_border": [False, False, "true", "false", False],
        "excluded": [False, True, True, False, True],
        "exclusion_reason": ["", "border_nodata,has_low_entropy", "black_border,nodata_ratio,has_low_entropy",
                             None, "nodata_ratio"],
        "freq_cluster_id": [0, -1, -1, 1, -1],
        "freq_cluster_size": [1, 0, 0, 1, 0],
        "freq_cluster_weight": [1.0, 0.0, 0.0, 1.0, 0.0],
        "uniqueness_score": [0.5, 0.2, 0.1, 0.9, 0.3],
        "sampler_weight": [0.8, 0.0, 0.0, 1.2, 0.0],
    })


def test_the_tools_diagnostics_follow_the_trainers_columns(tmp_path):
    import json

    table = composition_table(str(tmp_path))
    written = pd.read_csv(write_training_csv(table, tmp_path / "train.csv"), keep_default_na=False)
    assert list(written.columns) == TRAINER + ["patch_id"] + TOOL
    assert written["has_mask_border_nodata"].tolist() == [False, True, True, False, False]
    assert written["has_image_black_border"].tolist() == [False, False, True, False, False]
    # the has_* flags match the exclusion reasons
    assert written["has_low_entropy"].tolist() == [False, True, True, False, False]
    assert written["has_high_nodata"].tolist() == [False, False, True, False, True]
    assert written["excluded"].tolist() == [False, True, True, False, True]
    for column in ("class_entropy", "nodata_ratio", "freq_cluster_id", "freq_cluster_size", "freq_cluster_weight",
                   "uniqueness_score"):
        np.testing.assert_allclose(written[column], table[column], err_msg=column)
    # class_dist_json parses back to the cls_<c> shares (6 significant digits), keys are the class values
    shares = [json.loads(text) for text in written["class_dist_json"]]
    assert [list(s) for s in shares] == [["1", "2", "10"]] * 5
    for parsed, (_, row) in zip(shares, table.iterrows()):
        for c in ("1", "2", "10"):
            value = row[f"cls_{c}"]
            if value is None or np.isnan(value):
                assert parsed[c] is None
            else:
                assert parsed[c] == pytest.approx(value, rel=5e-6)  # 6 significant digits
    assert written["class_dist_json"].iloc[0] == '{"1":0.333333,"2":0.666667,"10":0.0}'


def test_diagnostics_need_their_source_fields(tmp_path):
    table = composition_table(str(tmp_path)).drop(columns=["border_nodata", "exclusion_reason", "cls_1", "cls_2",
                                                           "cls_10"])
    written = pd.read_csv(write_training_csv(table, tmp_path / "train.csv"))
    assert list(written.columns) == TRAINER + ["patch_id", "class_entropy", "nodata_ratio", "has_image_black_border",
                                               "excluded", "freq_cluster_id", "freq_cluster_size",
                                               "freq_cluster_weight", "uniqueness_score"]


def test_dropping_excluded_rows_keeps_the_diagnostics_aligned(tmp_path):
    table = composition_table(str(tmp_path))
    written = pd.read_csv(write_training_csv(table, tmp_path / "train.csv", drop_excluded=True))
    assert written["patch_id"].tolist() == ["a", "d"]
    assert written["class_dist_json"].tolist() == ['{"1":0.333333,"2":0.666667,"10":0.0}',
                                                   '{"1":0.25,"2":0.75,"10":0.0}']
    assert not written[["has_low_entropy", "has_high_nodata", "excluded"]].to_numpy().any()


def test_a_renamed_excluded_field_is_written_as_excluded(tmp_path):
    table = composition_table(str(tmp_path)).rename(columns={"excluded": "skip"})
    frame = training_frame(table, excluded_field="skip")
    assert frame["excluded"].tolist() == [False, True, True, False, True]


def test_missing_files_note_names_the_absent_rasters_once_each(tmp_path):
    from balanced_sampling_plugin.export import missing_files_note

    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / "a_mask.tif").write_bytes(b"x")
    gone = str(tmp_path / "gone.tif")
    table = pd.DataFrame({"image_path": [str(tmp_path / "a.tif"), gone, gone],
                          "mask_path": [str(tmp_path / "a_mask.tif")] * 2 + [str(tmp_path / "gone_mask.tif")]})
    note = missing_files_note(table)
    assert note.startswith("3 rows of the training CSV point at 2 image or mask files that do not exist here (")
    assert str(tmp_path / "gone.tif") in note and str(tmp_path / "gone_mask.tif") in note
    assert missing_files_note(table.iloc[:1]) is None
