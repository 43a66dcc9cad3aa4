"""Patch records from CSV / YAML files, and footprints of arbitrary records (no QGIS)."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.export import write_training_csv
from balanced_sampling_plugin.footprints import build_footprints
from balanced_sampling_plugin.progress import Progress
from balanced_sampling_plugin.records import patch_id
from balanced_sampling_plugin.sources import read_patch_records, record_footprints

PATCH = 64


@pytest.fixture(scope="module")
def grid(synthetic_dataset):
    """64 px footprints of the synthetic dataset, as made by the footprint grid."""
    return build_footprints(list(zip(synthetic_dataset.images, synthetic_dataset.masks)), PATCH)


def write_text(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return str(path)


# --------------------------------------------------------------------------- CSV


def test_csv_with_relative_paths_and_extra_columns(tmp_path):
    (tmp_path / "sub").mkdir()
    path = write_text(tmp_path / "sub" / "records.csv",
                      "image_path,mask_path,row_off,col_off,patch_size,split\n"
                      "../img/a.tif,../msk/a.tif,0,64,64,train\n"
                      "/abs/b.tif,/abs/b_mask.tif,128,0,64,val\n")
    records = read_patch_records(path)
    assert records["image_path"].tolist() == [str(tmp_path / "img" / "a.tif"), "/abs/b.tif"]
    assert records["mask_path"].tolist() == [str(tmp_path / "msk" / "a.tif"), "/abs/b_mask.tif"]
    assert records["row_off"].dtype == np.int64 and records["col_off"].tolist() == [64, 0]
    assert records["split"].tolist() == ["train", "val"]
    assert records.loc[0, "patch_id"] == patch_id(str(tmp_path / "img" / "a.tif"), 0, 64, 64)


def test_training_csv_round_trip(grid, tmp_path):
    table = grid.records.assign(sampler_weight=1.0)
    path = write_training_csv(table, tmp_path / "train.csv", relative_paths=True)
    records = read_patch_records(path)
    assert records["image_path"].tolist() == table["image_path"].tolist()
    assert records["patch_id"].tolist() == table["patch_id"].tolist()
    assert records["sampler_weight"].eq(1.0).all()


@pytest.mark.parametrize(
    "body, match",
    [
        ("image_path,mask_path,row_off,col_off,patch_size\na,b,0,0,64\na,b,abc,0,64\n",
         r"records\.csv, line 3: 'row_off' is 'abc'; expected a non-negative integer"),
        ("image_path,mask_path,row_off,col_off,patch_size\na,b,0,0,0\n",
         r"line 2: 'patch_size' is 0; expected a positive integer"),
        ("image_path,mask_path,row_off,col_off,patch_size\na,,0,0,64\n", r"line 2: 'mask_path' is empty"),
        ("image_path,mask_path,row_off,col_off\na,b,0,0\n", r"records\.csv: no 'patch_size' key"),
        ("image,image_path,mask,row_off,col_off,patch_size\na,a,b,0,0,64\n",
         r"line 2: both 'image' and 'image_path' are given"),
        ("", r"Cannot read the CSV file"),
    ],
)
def test_csv_errors_name_file_line_and_value(tmp_path, body, match):
    with pytest.raises(BalancedSamplingError, match=match) as error:
        read_patch_records(write_text(tmp_path / "records.csv", body))
    assert str(tmp_path / "records.csv") in str(error.value)


SEMICOLON_HINT = (
    "The file seems to be separated by ';' (its first line holds ';'), probably with decimal commas; the records "
    "CSV must be comma-separated (',') with '.' as decimal mark. Export it again with ',' as field separator and "
    "'.' as decimal mark."
)


def test_semicolon_csv_is_refused_with_a_separator_hint(tmp_path):
    path = write_text(tmp_path / "records.csv",
                      "image_path;mask_path;row_off;col_off;patch_size\na.tif;a_mask.tif;0;0;64\n")
    with pytest.raises(BalancedSamplingError) as error:
        read_patch_records(path)
    assert str(error.value) == (
        f"{path}: no 'image_path', 'mask_path', 'row_off', 'col_off', 'patch_size' column (the header was read "
        f"as 'image_path;mask_path;row_off;col_off;patch_size'). {SEMICOLON_HINT}"
    )


@pytest.mark.parametrize("rows, start", [
    # A decimal comma in every row: pandas takes the extra leading fields for an index.
    ("a.tif;m.tif;0;0;64;0,5;0,25\n", "{path}: no 'image_path'"),
    # Decimal commas from line 3 on: more fields than the header, pandas cannot tokenize it.
    ("a.tif;m.tif;0;0;64;1;2\na.tif;m.tif;0;64;64;0,5;0,25\n",
     "Cannot read the CSV file {path}: Error tokenizing data. C error: Expected 1 fields in line 3, saw 3. "),
])
def test_semicolon_csv_with_decimal_commas_is_refused_with_the_hint(tmp_path, rows, start):
    path = write_text(tmp_path / "records.csv",
                      "image_path;mask_path;row_off;col_off;patch_size;uniqueness_score;freq_cluster_weight\n" + rows)
    with pytest.raises(BalancedSamplingError) as error:
        read_patch_records(path)
    message = str(error.value)
    assert message.startswith(start.format(path=path)) and message.endswith(SEMICOLON_HINT)


def test_tab_separated_csv_gets_the_hint(tmp_path):
    path = write_text(tmp_path / "records.csv",
                      "image_path\tmask_path\trow_off\tcol_off\tpatch_size\na.tif\tm.tif\t0\t0\t64\n")
    with pytest.raises(BalancedSamplingError, match="The file seems to be separated by tabs .*comma-separated"):
        read_patch_records(path)


def test_quoted_decimal_commas_are_refused_not_read_as_text(tmp_path):
    path = write_text(tmp_path / "records.csv",
                      "image_path,mask_path,row_off,col_off,patch_size,uniqueness_score,split\n"
                      'a.tif,m.tif,0,0,64,1,train\n'
                      'a.tif,m.tif,0,64,64,"0,5",val\n')
    with pytest.raises(BalancedSamplingError) as error:
        read_patch_records(path)
    assert str(error.value) == (
        f"{path}, line 3: 'uniqueness_score' is '0,5', a number with a decimal comma; the records CSV must be "
        "comma-separated (',') with '.' as decimal mark. Export the file again with '.' as decimal mark."
    )
    path = write_text(tmp_path / "records.csv",
                      "image_path,mask_path,row_off,col_off,patch_size,split\n"
                      'a.tif,m.tif,0,0,64,train\na.tif,m.tif,"32,0",0,64,val\n')
    with pytest.raises(BalancedSamplingError, match=r"line 3: 'row_off' is '32,0', a number with a decimal comma"):
        read_patch_records(path)


def test_text_columns_with_commas_are_kept(tmp_path):
    path = write_text(tmp_path / "records.csv",
                      "image_path,mask_path,row_off,col_off,patch_size,note\n"
                      'a.tif,m.tif,0,0,64,"roads, fields"\na.tif,m.tif,0,64,64,"1,5"\n')
    assert read_patch_records(path)["note"].tolist() == ["roads, fields", "1,5"]


def test_unsupported_extension_and_missing_file(tmp_path):
    with pytest.raises(BalancedSamplingError, match=r"expected a CSV \(\.csv\) or a YAML config"):
        read_patch_records(write_text(tmp_path / "records.txt", "x"))
    with pytest.raises(BalancedSamplingError, match="does not exist"):
        read_patch_records(tmp_path / "absent.csv")


# --------------------------------------------------------------------------- YAML


YAML_CONFIG = """\
balanced_dataset:
  mode: masks_only
  input:
    patch_records:
      - image_path: images/t1.tif
        mask_path: masks/t1.tif
        row_off: 0
        col_off: 0
        patch_size: 64
      - {image: images/t1.tif, mask: masks/t1.tif, row_off: 0, col_off: 64, patch_size: 64}
  output:
    csv_path: out.csv
"""


def test_yaml_patch_records_resolve_against_the_config_folder(tmp_path):
    records = read_patch_records(write_text(tmp_path / "conf.yaml", YAML_CONFIG))
    assert len(records) == 2
    assert set(records["image_path"]) == {str(tmp_path / "images" / "t1.tif")}
    assert records["col_off"].tolist() == [0, 64]


def test_yaml_patch_records_may_name_a_csv(tmp_path):
    (tmp_path / "lists").mkdir()
    write_text(tmp_path / "lists" / "r.csv", "image,mask,row_off,col_off,patch_size\nimg.tif,m.tif,0,0,32\n")
    path = write_text(tmp_path / "conf.yml", "balanced_dataset:\n  input:\n    patch_records: lists/r.csv\n")
    records = read_patch_records(path)
    assert records.loc[0, "image_path"] == str(tmp_path / "lists" / "img.tif")  # relative to the CSV


@pytest.mark.parametrize(
    "text, match",
    [
        ("balanced_dataset:\n  input: {}\n",
         r"no balanced_dataset\.input\.patch_records \(found under balanced_dataset\.input: nothing\)"),
        ("train_dataset: {}\n", r"no balanced_dataset \(found under the top level: train_dataset\)"),
        ("balanced_dataset:\n  input:\n    patch_records: []\n", r"must be a non-empty list"),
        ("balanced_dataset:\n  input:\n    patch_records: [3]\n", r"patch_records\[0\] must be a mapping"),
        ("balanced_dataset:\n  input:\n    patch_records:\n"
         "      - {image_path: a, mask_path: b, row_off: 0, col_off: 0, patch_size: 64}\n"
         "      - {image_path: a, mask_path: b, row_off: 0, col_off: 1.5, patch_size: 64}\n",
         r"patch_records\[1\]: 'col_off' is 1\.5"),
        ("balanced_dataset:\n  input:\n    patch_records:\n"
         "      - {image_path: a, mask_path: b, row_off: 0, col_off: 0, patch_size: 64}\n"
         "      - {image_path: a, row_off: 0, col_off: 0, patch_size: 64}\n",
         r"patch_records\[1\]: 'mask_path' is empty"),
        ("balanced_dataset: [\n", r"is not valid YAML \(line 2"),
        ("balanced_dataset:\n  input:\n    patch_records:\n"
         "      - {image_path: a, mask_path: b, row_off: '0,5', col_off: 0, patch_size: 64}\n",
         r"patch_records\[0\]: 'row_off' is '0,5'; expected a non-negative integer \(pixels\)\. It looks like a "
         r"decimal comma: the records CSV must be comma-separated \(','\) with '\.' as decimal mark\."),
    ],
)
def test_yaml_errors_name_file_entry_and_key(tmp_path, text, match):
    with pytest.raises(BalancedSamplingError, match=match) as error:
        read_patch_records(write_text(tmp_path / "conf.yaml", text))
    assert str(tmp_path / "conf.yaml") in str(error.value)


# --------------------------------------------------------------------------- footprints of records


def test_record_footprints_match_the_grid(grid):
    shuffled = grid.records.sample(frac=1.0, random_state=0).drop(columns="patch_id")
    result = record_footprints(shuffled)
    assert (result.crs_authid, result.missing) == ("EPSG:32633", [])
    assert result.records.index.tolist() == list(range(len(shuffled)))
    rings_by_id = dict(zip(grid.records["patch_id"], grid.rings))
    for pid, ring in zip(result.records["patch_id"], result.rings):
        np.testing.assert_allclose(ring, rings_by_id[pid])


def copy_dataset(synthetic_dataset, folder, n=3):
    """Copies of the first ``n`` image/mask pairs in ``folder`` (so tests may delete them)."""
    pairs = []
    for image, mask in list(zip(synthetic_dataset.images, synthetic_dataset.masks))[:n]:
        name = os.path.basename(image)
        pairs.append((shutil.copy(image, str(folder / f"img_{name}")), shutil.copy(mask, str(folder / f"msk_{name}"))))
    return pairs


def test_missing_rasters_fail_or_skip(synthetic_dataset, tmp_path):
    pairs = copy_dataset(synthetic_dataset, tmp_path)
    records = build_footprints(pairs, 128).records
    os.remove(pairs[0][0])  # an image
    os.remove(pairs[1][1])  # a mask
    with pytest.raises(BalancedSamplingError, match=r"2 raster\(s\) do not exist") as error:
        record_footprints(records)
    assert pairs[0][0] in str(error.value) and pairs[1][1] in str(error.value)
    assert "32 of 48 patches use them" in str(error.value)

    warnings = []
    result = record_footprints(records, on_missing="skip", progress=Progress(warning=warnings.append))
    assert result.missing == sorted([pairs[0][0], pairs[1][1]])
    assert len(result.records) == len(result.rings) == 16
    assert set(result.records["image_path"]) == {pairs[2][0]}
    assert "were skipped" in warnings[0] and pairs[0][0] in warnings[0]


def test_missing_rasters_listing_is_capped(tmp_path):
    records = pd.DataFrame({"image_path": [str(tmp_path / f"i{k}.tif") for k in range(8)],
                            "mask_path": str(tmp_path / "m.tif"), "row_off": 0, "col_off": 0, "patch_size": 8})
    with pytest.raises(BalancedSamplingError, match=r"9 raster\(s\) do not exist \(.*and 4 more\)"):
        record_footprints(records)
    with pytest.raises(BalancedSamplingError, match="no patch is left"):
        record_footprints(records, on_missing="skip")
    with pytest.raises(BalancedSamplingError, match="on_missing must be one of fail, skip"):
        record_footprints(records, on_missing="ignore")


def test_window_past_the_raster_edge(synthetic_dataset):
    records = pd.DataFrame({"image_path": [synthetic_dataset.images[0]], "mask_path": [synthetic_dataset.masks[0]],
                            "row_off": [480], "col_off": [0], "patch_size": [64]})
    with pytest.raises(BalancedSamplingError, match=r"reaches past the edge of its 512x512 px raster"):
        record_footprints(records)


def test_rasters_in_different_crs_share_the_first_ones(synthetic_dataset, tmp_path):
    other = str(tmp_path / "wgs84.tif")
    with rasterio.open(other, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(10, 50, 0.001, 0.001)) as dst:
        dst.write(np.ones((1, 64, 64), np.uint8))
    records = pd.DataFrame({"image_path": [synthetic_dataset.images[0], other],
                            "mask_path": [synthetic_dataset.masks[0], other],
                            "row_off": 0, "col_off": 0, "patch_size": 64})
    infos = []
    result = record_footprints(records, progress=Progress(info=infos.append))
    assert result.crs_authid == "EPSG:32633"
    x, y = np.asarray(result.rings[1])[0]  # 10 E, 50 N in UTM zone 33 N (15 E): west of the central meridian
    assert 0 < x < 500_000 and 5_500_000 < y < 5_600_000
    assert any("wgs84.tif in EPSG:4326: their footprints are reprojected" in line for line in infos), infos


def test_mask_in_another_crs_than_its_image_is_refused(synthetic_dataset, tmp_path):
    image = synthetic_dataset.images[0]
    mask = str(tmp_path / "mask_wgs84.tif")
    with rasterio.open(synthetic_dataset.masks[0]) as src:
        profile, data = src.profile, src.read()
    with rasterio.open(mask, "w", **(profile | {"crs": "EPSG:4326",
                                                 "transform": from_origin(10, 50, 0.001, 0.001)})) as dst:
        dst.write(data)
    records = pd.DataFrame({"image_path": [image], "mask_path": [mask], "row_off": 0, "col_off": 0,
                            "patch_size": 64})
    with pytest.raises(BalancedSamplingError) as error:
        record_footprints(records)
    assert str(error.value).startswith(
        f"Mask {mask} is in EPSG:4326 but its image {image} is in EPSG:32633; a mask must share its image's "
        "CRS and pixel grid"
    )


def test_mask_on_another_pixel_grid_is_refused(synthetic_dataset, tmp_path):
    image = synthetic_dataset.images[0]
    small = str(tmp_path / "small_mask.tif")
    with rasterio.open(synthetic_dataset.masks[0]) as src:
        profile, data = src.profile, src.read()
    with rasterio.open(small, "w", **(profile | {"width": 256, "height": 256})) as dst:
        dst.write(data[:, :256, :256])
    records = pd.DataFrame({"image_path": [image, image], "mask_path": [synthetic_dataset.masks[0], small],
                            "row_off": 0, "col_off": [0, 64], "patch_size": 64})
    with pytest.raises(BalancedSamplingError, match=r"is 512 rows x 512 columns but its mask .*small_mask\.tif is 256 "
                                                    r"rows x 256 columns; they must share one pixel grid"):
        record_footprints(records)


def test_a_misspelt_window_key_of_a_yaml_record_is_named_with_a_suggestion(tmp_path):
    from balanced_sampling_plugin.sources.records_file import records_from_entries

    good = {"image_path": "a.tif", "mask_path": "m.tif", "row_off": 0, "col_off": 0, "patch_size": 64}
    typo = {"image_path": "a.tif", "mask_path": "m.tif", "row_off": 64, "col_off": 0, "patchsize": 64}
    with pytest.raises(BalancedSamplingError, match=r"c\.yaml: balanced_dataset\.input\.patch_records\[1\] has no "
                                                    r"'patch_size' key \(did you mean 'patchsize'\?\); every patch"):
        records_from_entries([good, typo], "c.yaml", str(tmp_path))
    bare = {"image_path": "a.tif", "mask_path": "m.tif", "row_off": 0, "patch_size": 64, "label": 3}
    with pytest.raises(BalancedSamplingError, match=r"patch_records\[0\] has no 'col_off' key; every patch"):
        records_from_entries([bare], "c.yaml", str(tmp_path))
