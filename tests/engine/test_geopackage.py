"""GeoPackage layers updated in place in one SQLite transaction (balanced_sampling_plugin.geopackage).

The GeoPackages are written by GDAL (``osgeo.ogr``), as QGIS would; every failure must leave the
file byte for byte as it was.
"""

import contextlib
import hashlib
import os
import sqlite3

import numpy as np
import pandas as pd
import pytest

from balanced_sampling_plugin import geopackage
from balanced_sampling_plugin.errors import BalancedSamplingError, OperationCanceled
from balanced_sampling_plugin.geopackage import column_type, feature_tables, update_fields_in_place
from balanced_sampling_plugin.progress import Progress
from tests.read_only import read_only_folder

ogr = pytest.importorskip("osgeo.ogr")
osr = pytest.importorskip("osgeo.osr")
ogr.UseExceptions()


# --------------------------------------------------------------------------- helpers


def make_geopackage(path, layers=("patches",), n=6):
    """A GeoPackage (GDAL) with ``n`` 5 m squares per layer at x = 0, 10, 20...; fids 1..n; field ``name``."""
    driver = ogr.GetDriverByName("GPKG")
    ds = driver.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    for layer_name in layers:
        layer = ds.CreateLayer(layer_name, srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
        for i in range(n):
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("name", f"{layer_name}{i + 1}")
            x = i * 10
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({x} 0,{x + 5} 0,{x + 5} 5,{x} 5,{x} 0))"))
            layer.CreateFeature(feature)
    ds = None
    return str(path)


@pytest.fixture
def gpkg(tmp_path):
    return make_geopackage(tmp_path / "patches.gpkg")


def sha1(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


def columns(path, layer="patches"):
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {row[1]: row[2] for row in db.execute(f'PRAGMA table_info("{layer}")')}


def values(path, column, layer="patches"):
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute(f'SELECT fid, "{column}" FROM "{layer}" ORDER BY fid').fetchall())


def sql(path, *statements):
    with contextlib.closing(sqlite3.connect(path)) as db:
        for statement in statements:
            db.execute(statement)
        db.commit()


def assert_unchanged(path, digest, listing):
    assert sha1(path) == digest
    assert sorted(os.listdir(os.path.dirname(path))) == listing  # no journal left behind


def snapshot(path):
    return sha1(path), sorted(os.listdir(os.path.dirname(path)))


# --------------------------------------------------------------------------- column types


def test_column_type():
    assert column_type(pd.Series([True, False])) == "BOOLEAN"
    assert column_type(pd.Series([1, 2], dtype="int32")) == "INTEGER"
    assert column_type(pd.Series([1, None], dtype="Int64")) == "INTEGER"
    assert column_type(pd.Series([1.5, np.nan])) == "REAL"
    assert column_type(pd.Series(["a", None])) == "TEXT"
    assert column_type(pd.Series(["a", "b"], dtype="category")) == "TEXT"


def test_feature_tables(tmp_path):
    path = make_geopackage(tmp_path / "two.gpkg", layers=("patches", "others"), n=2)
    assert feature_tables(path) == ["patches", "others"]


# --------------------------------------------------------------------------- writing


def test_new_columns_of_each_type_written_by_feature_id(gpkg):
    # rows out of fid order, and fid 6 not in the table: its new fields stay NULL
    table = pd.DataFrame(
        {
            "excluded": [True, False, True, False, False],
            "freq_cluster_id": np.array([7, 0, -3, 2**40, 5], dtype=np.int64),
            "uniqueness_score": [0.25, np.nan, 1.0, -2.5, 3.0],
            "label": ["c", None, "a", "b", np.nan],
            "count": pd.array([1, None, 3, 4, 5], dtype="Int64"),
        },
        index=[3, 1, 2, 5, 4],
    )
    update_fields_in_place(gpkg, table)

    types = columns(gpkg)
    assert types == {
        "fid": "INTEGER", "geom": "POLYGON", "name": "TEXT", "excluded": "BOOLEAN", "freq_cluster_id": "INTEGER",
        "uniqueness_score": "REAL", "label": "TEXT", "count": "INTEGER",
    }
    assert values(gpkg, "excluded") == {1: 0, 2: 1, 3: 1, 4: 0, 5: 0, 6: None}
    assert values(gpkg, "freq_cluster_id") == {1: 0, 2: -3, 3: 7, 4: 5, 5: 2**40, 6: None}
    assert values(gpkg, "uniqueness_score") == {1: None, 2: 1.0, 3: 0.25, 4: 3.0, 5: -2.5, 6: None}
    assert values(gpkg, "label") == {1: None, 2: "a", 3: "c", 4: None, 5: "b", 6: None}
    assert values(gpkg, "count") == {1: None, 2: 3, 3: 1, 4: 5, 5: 4, 6: None}
    assert values(gpkg, "name") == {i: f"patches{i}" for i in range(1, 7)}  # untouched

    # GDAL reads them with the types QGIS will show
    ds = ogr.Open(gpkg)
    layer = ds.GetLayerByName("patches")
    definition = layer.GetLayerDefn()
    fields = [definition.GetFieldDefn(i) for i in range(definition.GetFieldCount())]
    kinds = {field.GetName(): field for field in fields}
    assert kinds["excluded"].GetType() == ogr.OFTInteger and kinds["excluded"].GetSubType() == ogr.OFSTBoolean
    assert kinds["freq_cluster_id"].GetType() == ogr.OFTInteger64
    assert kinds["uniqueness_score"].GetType() == ogr.OFTReal
    assert kinds["label"].GetType() == ogr.OFTString
    feature = layer.GetFeature(3)
    assert feature.GetField("excluded") == 1 and feature.GetField("freq_cluster_id") == 7
    assert feature.GetField("uniqueness_score") == 0.25 and feature.GetField("label") == "c"
    assert layer.GetFeature(1).IsFieldNull("uniqueness_score") and layer.GetFeature(1).IsFieldNull("label")
    assert layer.GetFeature(5).GetField("freq_cluster_id") == 2**40
    ds = None


def test_existing_column_is_overwritten(gpkg):
    update_fields_in_place(gpkg, pd.DataFrame({"name": ["one", None]}, index=[1, 2]))
    assert values(gpkg, "name") == {1: "one", 2: None, 3: "patches3", 4: "patches4", 5: "patches5", 6: "patches6"}
    # a column spelled in another case is the same SQLite column: overwritten, not added
    update_fields_in_place(gpkg, pd.DataFrame({"NAME": ["six"], "score": [0.5]}, index=[6]))
    assert list(columns(gpkg)) == ["fid", "geom", "name", "score"]
    assert values(gpkg, "name")[6] == "six" and values(gpkg, "score")[6] == 0.5
    # a second run rewrites the column the first one added, with the new values only
    update_fields_in_place(gpkg, pd.DataFrame({"score": [1.5, np.nan]}, index=[1, 6]))
    assert values(gpkg, "score") == {1: 1.5, 2: None, 3: None, 4: None, 5: None, 6: None}


def test_column_names_that_need_quoting(gpkg):
    odd = 'my "odd" col; DROP TABLE patches'
    update_fields_in_place(gpkg, pd.DataFrame({odd: [1.0, 2.0]}, index=[1, 2]))
    assert odd in columns(gpkg)
    ds = ogr.Open(gpkg)
    feature = ds.GetLayerByName("patches").GetFeature(2)
    assert feature.GetField(odd) == 2.0
    ds = None


def test_gdal_reads_the_update_and_the_spatial_index_still_answers(gpkg):
    with contextlib.closing(sqlite3.connect(gpkg)) as db:
        before_change = db.execute("SELECT last_change FROM gpkg_contents WHERE table_name = 'patches'").fetchone()[0]
    percents = []
    table = pd.DataFrame({"sampler_weight": [0.1 * i for i in range(1, 7)]}, index=range(1, 7))
    update_fields_in_place(gpkg, table, progress=Progress(set_percent=percents.append))
    assert percents[-1] == 100.0

    with contextlib.closing(sqlite3.connect(gpkg)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute('SELECT count(*) FROM "rtree_patches_geom"').fetchone() == (6,)
        after_change = db.execute("SELECT last_change FROM gpkg_contents WHERE table_name = 'patches'").fetchone()[0]
    assert after_change >= before_change and after_change.endswith("Z")

    ds = ogr.Open(gpkg)
    layer = ds.GetLayerByName("patches")
    assert layer.GetFeatureCount() == 6
    assert layer.TestCapability(ogr.OLCFastSpatialFilter)  # the R-tree is still there and known
    weights = {f.GetFID(): round(f.GetField("sampler_weight"), 6) for f in layer}
    assert weights == {i: round(0.1 * i, 6) for i in range(1, 7)}
    layer.SetSpatialFilterRect(12, 1, 33, 2)  # squares at x=10..15, 20..25, 30..35
    found = {f.GetFID(): (f.GetField("name"), round(f.GetField("sampler_weight"), 6)) for f in layer}
    assert found == {2: ("patches2", 0.2), 3: ("patches3", 0.3), 4: ("patches4", 0.4)}
    layer.SetSpatialFilterRect(100, 100, 200, 200)
    assert [f.GetFID() for f in layer] == []
    ds = None
    # and GDAL can still write to it (its own triggers compile with its functions)
    ds = ogr.Open(gpkg, 1)
    layer = ds.GetLayerByName("patches")
    feature = layer.GetFeature(1)
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POLYGON((500 500,505 500,505 505,500 505,500 500))"))
    layer.SetFeature(feature)
    ds = None
    ds = ogr.Open(gpkg)
    layer = ds.GetLayerByName("patches")
    layer.SetSpatialFilterRect(499, 499, 501, 501)
    assert [f.GetFID() for f in layer] == [1]
    ds = None


def test_two_layers_need_a_layer_name(tmp_path):
    path = make_geopackage(tmp_path / "two.gpkg", layers=("patches", "others"), n=3)
    digest, listing = snapshot(path)
    table = pd.DataFrame({"score": [1.0, 2.0]}, index=[1, 3])
    with pytest.raises(BalancedSamplingError, match=r"holds 2 layers \(patches, others\); choose the layer itself"):
        update_fields_in_place(path, table)
    assert_unchanged(path, digest, listing)
    with pytest.raises(BalancedSamplingError, match=r"has no layer 'missing'"):
        update_fields_in_place(path, table, layer_name="missing")
    assert_unchanged(path, digest, listing)

    update_fields_in_place(path, table, layer_name="others")
    assert values(path, "score", layer="others") == {1: 1.0, 2: None, 3: 2.0}
    assert "score" not in columns(path, layer="patches")


# --------------------------------------------------------------------------- failures leave the file as it was


def test_trigger_refusing_one_feature_changes_nothing(gpkg):
    sql(gpkg, "CREATE TRIGGER frozen BEFORE UPDATE ON patches WHEN OLD.fid = 4 "
              "BEGIN SELECT RAISE(ABORT, 'patch 4 is frozen by the curator'); END")
    digest, listing = snapshot(gpkg)
    table = pd.DataFrame({"name": ["x"] * 6, "sampler_weight": np.arange(6.0)}, index=range(1, 7))
    with pytest.raises(BalancedSamplingError) as excinfo:
        update_fields_in_place(gpkg, table)
    message = str(excinfo.value)
    assert "Could not update feature 4 of the layer 'patches'" in message
    assert "patch 4 is frozen by the curator" in message and "Nothing was changed" in message
    assert gpkg in message
    assert_unchanged(gpkg, digest, listing)
    assert "sampler_weight" not in columns(gpkg)
    assert values(gpkg, "name")[1] == "patches1"


def test_trigger_refusing_a_feature_of_a_later_batch_changes_nothing(gpkg, monkeypatch):
    monkeypatch.setattr(geopackage, "BATCH", 2)
    sql(gpkg, "CREATE TRIGGER frozen BEFORE UPDATE ON patches WHEN OLD.fid = 5 "
              "BEGIN SELECT RAISE(ABORT, 'no'); END")
    digest, listing = snapshot(gpkg)
    with pytest.raises(BalancedSamplingError, match="Could not update feature 5 of the layer 'patches'.*: no"):
        update_fields_in_place(gpkg, pd.DataFrame({"name": list("abcdef")}, index=range(1, 7)))
    assert_unchanged(gpkg, digest, listing)


@pytest.mark.parametrize("new_column", [False, True])
def test_trigger_that_rolls_back_changes_nothing(gpkg, monkeypatch, new_column):
    """RAISE(ROLLBACK) ends the transaction itself: nothing may then run outside a transaction."""
    monkeypatch.setattr(geopackage, "BATCH", 3)
    sql(gpkg, "CREATE TRIGGER frozen BEFORE UPDATE ON patches WHEN OLD.fid = 5 "
              "BEGIN SELECT RAISE(ROLLBACK, 'patch 5 may not change'); END")
    digest, listing = snapshot(gpkg)
    table = pd.DataFrame({"name": list("abcdef")}, index=range(1, 7))
    if new_column:
        table["sampler_weight"] = np.arange(6.0)
    with pytest.raises(BalancedSamplingError, match=r"Could not update the layer 'patches' of '.*': "
                                                    r"patch 5 may not change\. Nothing was changed\."):
        update_fields_in_place(gpkg, table)
    assert_unchanged(gpkg, digest, listing)
    assert values(gpkg, "name") == {i: f"patches{i}" for i in range(1, 7)}


def test_trigger_that_ignores_a_feature_is_an_error(gpkg):
    sql(gpkg, "CREATE TRIGGER skip BEFORE UPDATE ON patches WHEN OLD.fid = 2 BEGIN SELECT RAISE(IGNORE); END")
    digest, listing = snapshot(gpkg)
    with pytest.raises(BalancedSamplingError, match=r"A trigger of the layer 'patches' of '.*' skipped feature 2 "
                                                    r"\(RAISE\(IGNORE\)\); nothing was changed"):
        update_fields_in_place(gpkg, pd.DataFrame({"name": list("abc")}, index=[1, 2, 3]))
    assert_unchanged(gpkg, digest, listing)


def test_feature_id_not_in_the_layer(gpkg, monkeypatch):
    digest, listing = snapshot(gpkg)
    with pytest.raises(BalancedSamplingError, match=r"The layer 'patches' of '.*patches\.gpkg' has no feature 99; "
                                                    r"nothing was changed"):
        update_fields_in_place(gpkg, pd.DataFrame({"score": [1.0, 2.0, 3.0]}, index=[1, 99, 2]))
    assert_unchanged(gpkg, digest, listing)
    assert "score" not in columns(gpkg)
    # in a later batch, after earlier batches went in
    monkeypatch.setattr(geopackage, "BATCH", 2)
    with pytest.raises(BalancedSamplingError, match="has no feature 0; nothing was changed"):
        update_fields_in_place(gpkg, pd.DataFrame({"name": list("abcde")}, index=[1, 2, 3, 4, 0]))
    assert_unchanged(gpkg, digest, listing)


def test_feature_id_not_in_the_layer_with_a_trigger_that_writes_elsewhere(gpkg):
    """A trigger's own writes (an audit table) must not hide a feature id that matched no row."""
    sql(gpkg, "CREATE TABLE audit (fid INTEGER, at TEXT)",
              "CREATE TRIGGER audited AFTER UPDATE ON patches BEGIN INSERT INTO audit VALUES (NEW.fid, 'now'); END")
    digest, listing = snapshot(gpkg)
    with pytest.raises(BalancedSamplingError, match="has no feature 99; nothing was changed"):
        update_fields_in_place(gpkg, pd.DataFrame({"score": [1.0, 2.0]}, index=[1, 99]))
    assert_unchanged(gpkg, digest, listing)
    # without a missing feature the audit trigger runs and the update goes in
    update_fields_in_place(gpkg, pd.DataFrame({"score": [1.0, 2.0]}, index=[1, 2]))
    assert values(gpkg, "score") == {1: 1.0, 2: 2.0, 3: None, 4: None, 5: None, 6: None}
    with contextlib.closing(sqlite3.connect(gpkg)) as db:
        assert db.execute("SELECT fid FROM audit ORDER BY fid").fetchall() == [(1,), (2,)]


def test_value_sqlite_cannot_store(gpkg):
    digest, listing = snapshot(gpkg)
    table = pd.DataFrame({"meta": ["fine", {"a": 1}]}, index=[1, 2])
    with pytest.raises(BalancedSamplingError, match="Could not update feature 2 of the layer 'patches'"):
        update_fields_in_place(gpkg, table)
    assert_unchanged(gpkg, digest, listing)


def test_read_only_geopackage(tmp_path):
    folder = str(tmp_path / "ro")
    path = os.path.join(folder, "patches.gpkg")
    with read_only_folder(folder, populate=lambda f: make_geopackage(path)):
        digest, listing = snapshot(path)
        with pytest.raises(BalancedSamplingError) as excinfo:
            update_fields_in_place(path, pd.DataFrame({"score": [1.0]}, index=[1]))
        message = str(excinfo.value)
        assert f"The GeoPackage '{path}'" in message and "read-only" in message
        assert "write a new layer instead" in message
        assert_unchanged(path, digest, listing)
        assert "score" not in columns(path)


@pytest.mark.parametrize("lock, expected", [
    ("EXCLUSIVE", r"Cannot read the GeoPackage '.*patches\.gpkg' \(database is locked\); nothing was changed"),
    ("IMMEDIATE", r"Could not update the layer 'patches' of '.*patches\.gpkg' \(database is locked\); "
                  r"nothing was changed"),
])
def test_locked_geopackage(gpkg, monkeypatch, lock, expected):
    """Another writer (QGIS saving edits) holds the database longer than BUSY_TIMEOUT."""
    monkeypatch.setattr(geopackage, "BUSY_TIMEOUT", 0.2)
    digest, listing = snapshot(gpkg)
    other = sqlite3.connect(gpkg, isolation_level=None)
    try:
        other.execute(f"BEGIN {lock}")
        with pytest.raises(BalancedSamplingError, match=expected):
            update_fields_in_place(gpkg, pd.DataFrame({"score": [1.0]}, index=[1]))
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert_unchanged(gpkg, digest, listing)
    update_fields_in_place(gpkg, pd.DataFrame({"score": [1.0]}, index=[1]))  # released: goes in
    assert values(gpkg, "score")[1] == 1.0


def test_cancel_after_the_first_batch_changes_nothing(gpkg, monkeypatch):
    monkeypatch.setattr(geopackage, "BATCH", 2)
    asked = []

    def is_canceled():
        asked.append(True)
        return len(asked) > 1  # the user pressed cancel while the first batch ran

    digest, listing = snapshot(gpkg)
    table = pd.DataFrame({"name": list("abcdef"), "score": np.arange(6.0)}, index=range(1, 7))
    with pytest.raises(OperationCanceled, match="Canceled by the user"):
        update_fields_in_place(gpkg, table, progress=Progress(is_canceled=is_canceled))
    assert len(asked) == 2
    assert_unchanged(gpkg, digest, listing)
    assert "score" not in columns(gpkg)


def test_cancel_after_the_last_batch_changes_nothing(gpkg):
    asked = []

    def is_canceled():
        asked.append(True)
        return len(asked) > 1  # every row written, not yet committed

    digest, listing = snapshot(gpkg)
    with pytest.raises(OperationCanceled):
        update_fields_in_place(gpkg, pd.DataFrame({"score": np.arange(6.0)}, index=range(1, 7)),
                               progress=Progress(is_canceled=is_canceled))
    assert_unchanged(gpkg, digest, listing)


def test_the_run_s_files_are_placed_inside_the_transaction(gpkg, tmp_path):
    from balanced_sampling_plugin.file_safety import OutputFiles

    table = pd.DataFrame({"sampler_weight": [0.5, 2.0]}, index=[1, 2])
    with OutputFiles() as outputs:
        with open(outputs.partial(tmp_path / "train.csv"), "w") as handle:
            handle.write("image,mask\n")
        update_fields_in_place(gpkg, table, outputs=outputs)
    assert values(gpkg, "sampler_weight")[2] == 2.0
    assert (tmp_path / "train.csv").read_text() == "image,mask\n"


def test_a_file_that_cannot_be_placed_leaves_the_layer_unchanged(gpkg, tmp_path):
    from balanced_sampling_plugin.file_safety import OutputFiles

    before = snapshot(gpkg)
    table = pd.DataFrame({"sampler_weight": [0.5, 2.0]}, index=[1, 2])
    with OutputFiles() as outputs:
        outputs.partial(tmp_path / "train.csv")  # never written: the commit of the files fails
        with pytest.raises(BalancedSamplingError, match="was not written completely"):
            update_fields_in_place(gpkg, table, outputs=outputs)
    assert snapshot(gpkg) == before
    assert "sampler_weight" not in columns(gpkg)
    assert not (tmp_path / "train.csv").exists()


def test_a_cancel_after_the_commit_is_not_reported(gpkg):
    calls = []

    def canceled():  # says yes from the moment the transaction is committed
        calls.append(1)
        return "sampler_weight" in columns(gpkg) and values(gpkg, "sampler_weight")[1] == 0.5

    table = pd.DataFrame({"sampler_weight": [0.5]}, index=[1])
    update_fields_in_place(gpkg, table, progress=Progress(is_canceled=canceled))
    assert values(gpkg, "sampler_weight")[1] == 0.5


def test_check_updatable_probes_the_folder(tmp_path, monkeypatch):
    """os.access says yes to root on a read-only mount: the folder is probed by creating a file there."""
    import tempfile

    from balanced_sampling_plugin.geopackage import check_updatable

    path = tmp_path / "layer.gpkg"
    path.write_bytes(b"")
    check_updatable(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer.gpkg"], "the probe leaves nothing behind"

    def read_only_mount(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only_mount)
    with pytest.raises(BalancedSamplingError, match=r"layer.gpkg' \(or its folder\) is read-only, so the layer cannot "
                                                    r"be updated in place"):
        check_updatable(path)
