"""Patch-table validation and stable ids."""

import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin.errors import BalancedSamplingError
from balanced_sampling_plugin.records import class_columns, patch_id, shown_value, validate_records


def table(**overrides):
    base = {"image_path": ["/a/x.tif", "/a/x.tif"], "mask_path": ["/m/x.tif", "/m/x.tif"],
            "row_off": [0, 64], "col_off": [0, 0], "patch_size": [64, 64]}
    base.update(overrides)
    return pd.DataFrame(base)


def test_patch_id_is_stable_and_window_specific():
    assert patch_id("/a/x.tif", 0, 64, 64) == patch_id("/a/../a/x.tif", 0, 64, 64)
    assert patch_id("/a/x.tif", 0, 64, 64) != patch_id("/a/x.tif", 64, 0, 64)
    assert len(patch_id("/a/x.tif", 0, 0, 64)) == 16


def test_validate_adds_ids_and_integer_windows():
    out = validate_records(table(row_off=[0.0, 64.0]))
    assert out["row_off"].dtype.kind == "i"
    assert out["patch_id"].tolist() == [patch_id("/a/x.tif", 0, 0, 64), patch_id("/a/x.tif", 64, 0, 64)]


@pytest.mark.parametrize("column, values, message", [
    ("row_off", [0, -5], "Field 'row_off' of the patch at row 1"),
    ("patch_size", [64, 0], "positive integer"),
    ("col_off", [0, 1.5], "Field 'col_off'"),
    ("mask_path", ["/m/x.tif", ""], "Field 'mask_path' is empty for the patch at row 1"),
])
def test_bad_values_name_the_row_and_field(column, values, message):
    with pytest.raises(BalancedSamplingError, match=message):
        validate_records(table(**{column: values}))


@pytest.mark.parametrize("column, expected", [
    ("row_off", "a non-negative integer"),
    ("col_off", "a non-negative integer"),
    ("patch_size", "a positive integer"),
])
@pytest.mark.parametrize("missing", [None, np.nan, pd.NA])
def test_null_window_value_reads_null_not_nan(column, expected, missing):
    records = table(**{column: pd.Series([64, missing], dtype=object)})
    with pytest.raises(BalancedSamplingError) as error:
        validate_records(records, source="tiles.gpkg")
    assert str(error.value) == (
        f"Field '{column}' of the patch at row 1 of tiles.gpkg is NULL (empty); expected {expected} (pixels)."
    )


def test_bad_window_value_is_shown_as_given():
    with pytest.raises(BalancedSamplingError) as error:
        validate_records(table(row_off=[0, "abc"]))
    assert str(error.value) == (
        "Field 'row_off' of the patch at row 1 of the patch table is 'abc'; expected a non-negative integer (pixels)."
    )


@pytest.mark.parametrize("value, shown", [
    (None, "NULL (empty)"), (np.nan, "NULL (empty)"), (pd.NA, "NULL (empty)"), (pd.NaT, "NULL (empty)"),
    ("", "'' (empty)"), ("  ", "'  ' (empty)"), ("abc", "'abc'"), (-5, "-5"), (1.5, "1.5"),
    (np.int64(-5), "-5"), (np.float64(1.5), "1.5"), (np.float64(np.inf), "inf"),
])
def test_shown_value(value, shown):
    assert shown_value(value) == shown


def test_missing_column_lists_what_is_there():
    with pytest.raises(BalancedSamplingError, match="no field 'mask_path'.*available fields: image_path"):
        validate_records(table().drop(columns="mask_path"))


def test_class_columns_sorted_numerically():
    assert class_columns(["cls_10", "x", "cls_2", "cls_a", "cls_1"]) == ["cls_1", "cls_2", "cls_10"]
