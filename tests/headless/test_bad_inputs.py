"""Bad or hostile input through qgis_process: a clear message, a non-zero exit, and the user's files untouched.

One row of ``CASES`` per case; add a case in one line. Placeholders in the arguments:
``{fp}`` footprints, ``{cl}`` clusters, ``{un}`` clusters + uniqueness (all GeoPackages),
``{records}`` a patch-records CSV, ``{csv}`` a training CSV, ``{config}`` a YAML config
(see ``configure``), ``{img}`` / ``{mask}`` a raster pair, ``{model}`` a tiny DINOv2 folder,
``{dir}`` the case's own folder (every input above is a fresh copy in it), ``{ro}`` a
read-only folder holding a copy of ``un.gpkg``. Each case must exit non-zero, print text
matching ``message``, keep every file of ``unchanged`` byte for byte, create none of
``absent``, and leave no partial output behind. docs/reliability.md lists these cases.
"""

import dataclasses
import hashlib
import os
import re
import shutil
import sqlite3
from typing import Callable, Optional

import pytest
import yaml

from tests.headless.conftest import HAS_QGIS_PROCESS, qgis_process
from tests.read_only import read_only_folder

pytestmark = pytest.mark.skipif(not HAS_QGIS_PROCESS,
                                reason="qgis_process.bin is not installed (make setup installs QGIS 3.22)")

INPUTS = ("fp.gpkg", "cl.gpkg", "un.gpkg", "records.csv", "train.csv")


@dataclasses.dataclass
class Case:
    id: str
    algorithm: str
    args: tuple
    message: str  # a regular expression searched in qgis_process's output
    unchanged: tuple = ()
    absent: tuple = ()
    setup: Optional[Callable] = None  # setup(work_folder, inputs) before the run


def sha1(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


def configure(**output):
    """A setup writing ``{dir}/config.yaml``: the records CSV as input, ``output`` as the output section."""
    def setup(work, inputs):
        config = {"balanced_dataset": {
            "mode": "masks_only", "input": {"patch_records": inputs["records"]},
            "clustering": {"k_selection": "fixed", "k": 3},
            "output": {key: value.format(**inputs) for key, value in output.items()}}}
        (work / "config.yaml").write_text(yaml.safe_dump(config))
    return setup


def shift_window(layer, column, value):
    """A setup moving feature 1's window of ``layer`` (a name in the case folder) to ``column = value``."""
    def setup(work, inputs):
        import pandas as pd

        from balanced_sampling_plugin.geopackage import update_fields_in_place

        update_fields_in_place(work / layer, pd.DataFrame({column: [value]}, index=[1]))
    return setup


def refusing_trigger(work, inputs):
    """A trigger in un.gpkg that refuses any update of feature 7, as a database rule might."""
    with sqlite3.connect(work / "un.gpkg") as db:
        table = db.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'").fetchone()[0]
        db.execute(f'CREATE TRIGGER refuse_7 BEFORE UPDATE ON "{table}" WHEN NEW.fid = 7 '
                   "BEGIN SELECT RAISE(ABORT, 'feature 7 is locked by the archive'); END")


def as_shapefile(work, inputs):
    from osgeo import gdal

    gdal.UseExceptions()
    gdal.VectorTranslate(str(work / "fp.shp"), str(work / "fp.gpkg"), format="ESRI Shapefile")


def configure_with_coreset(coreset_output, **output):
    """:func:`configure` plus a ``coreset:`` block writing ``coreset_output``."""
    def setup(work, inputs):
        configure(**output)(work, inputs)
        config = yaml.safe_load((work / "config.yaml").read_text())
        config["coreset"] = {"method": "lc", "budget": 0.5, "output_csv_path": coreset_output.format(**inputs)}
        (work / "config.yaml").write_text(yaml.safe_dump(config))
    return setup


COMBINE = "combinesamplerweights"
UNIQUENESS = "computedinov2uniqueness"
CONFIG = "buildfromconfig"
CASES = [
    # An output that is an input
    Case("combine-csv-over-input-layer", COMBINE, ("INPUT={un}", "OUTPUT_CSV={un}"),
         r"OUTPUT_CSV '.*un\.gpkg' is the input INPUT: writing it would destroy the input", ("un.gpkg",)),
    Case("combine-layer-over-input-layer", COMBINE, ("INPUT={un}", "OUTPUT={un}"),
         r"OUTPUT '.*un\.gpkg' is the input INPUT", ("un.gpkg",)),
    Case("combine-csv-over-an-image", COMBINE, ("INPUT={un}", "OUTPUT_CSV={img}", "OUTPUT={dir}/w.gpkg"),
         r"OUTPUT_CSV '.*\.tif' is the input raster of the field image_path", ("images/tile_00.tif",), ("w.gpkg",)),
    Case("uniqueness-cache-over-input-layer", UNIQUENESS, ("INPUT={cl}", "DINO_MODEL={model}", "PARQUET_PATH={cl}"),
         r"PARQUET_PATH '.*cl\.gpkg' is the input INPUT", ("cl.gpkg",)),
    Case("uniqueness-cache-over-a-csv", UNIQUENESS, ("INPUT={cl}", "DINO_MODEL={model}", "PARQUET_PATH={csv}",
                                                     "OUTPUT={dir}/u.gpkg"),
         r"train\.csv' is not a Parquet file, so it cannot be the embedding cache; it was left as it is",
         ("train.csv", "cl.gpkg"), ("u.gpkg",)),
    Case("config-csv-over-its-records", CONFIG, ("CONFIG={config}",),
         r"balanced_dataset\.output\.csv_path '.*records\.csv' is the input balanced_dataset\.input\.patch_records",
         ("records.csv",), setup=configure(csv_path="{records}")),
    Case("config-layer-over-its-records", CONFIG, ("CONFIG={config}", "OUTPUT={records}"),
         r"OUTPUT '.*records\.csv' is the input balanced_dataset\.input\.patch_records", ("records.csv",),
         ("out.csv",), setup=configure(csv_path="{dir}/out.csv")),
    # The coreset: block's CSV, checked with the run's outputs before the run (out.csv never appears)
    Case("config-coreset-over-its-config", CONFIG, ("CONFIG={config}",),
         r"coreset\.output_csv_path '.*config\.yaml' is the input the config file", ("config.yaml", "records.csv"),
         ("out.csv",), setup=configure_with_coreset("{config}", csv_path="{dir}/out.csv")),
    Case("config-coreset-over-its-records", CONFIG, ("CONFIG={config}",),
         r"coreset\.output_csv_path '.*records\.csv' is the input balanced_dataset\.input\.patch_records",
         ("records.csv", "config.yaml"), ("out.csv",),
         setup=configure_with_coreset("{records}", csv_path="{dir}/out.csv")),
    Case("import-over-its-records", "importpatchrecords", ("INPUT={records}", "OUTPUT={records}"),
         r"OUTPUT '.*records\.csv' is the input INPUT", ("records.csv",)),
    Case("import-over-the-csv-its-yaml-names", "importpatchrecords", ("INPUT={dir}/records.yaml",
                                                                      "OUTPUT={records}"),
         r"OUTPUT '.*records\.csv' is the input INPUT: writing it would destroy", ("records.csv", "records.yaml"),
         setup=lambda work, inputs: (work / "records.yaml").write_text(
             "balanced_dataset:\n  input:\n    patch_records: records.csv\n")),
    Case("combine-layer-name-without-extension-over-input", COMBINE, ("INPUT={un}", "OUTPUT={dir}/un"),
         r"OUTPUT '.*un\.gpkg' is the input INPUT", ("un.gpkg",)),
    Case("combine-same-layer-inside-the-input-geopackage", COMBINE,
         ("INPUT={un}", "OUTPUT=ogr:dbname='{un}' table=\"un\" (geom)"),
         r"OUTPUT '.*un\.gpkg' is the input INPUT", ("un.gpkg",)),
    Case("uniqueness-layer-over-the-model-config", UNIQUENESS, ("INPUT={cl}", "DINO_MODEL={dir}/model",
                                                                "OUTPUT={dir}/model/config.json"),
         r"OUTPUT '.*model/config\.json' is the input DINO_MODEL", ("model/config.json",),
         setup=lambda work, inputs: shutil.copytree(inputs["model"], work / "model")),
    # An existing file of another kind (not an input of this run) is not replaced either
    Case("combine-report-over-a-training-csv", COMBINE, ("INPUT={un}", "OUTPUT={dir}/w.gpkg", "OUTPUT_REPORT={csv}"),
         r"OUTPUT_REPORT '.*train\.csv' is an existing file of another kind", ("train.csv", "un.gpkg"), ("w.gpkg",)),
    Case("config-csv-over-a-json-file", CONFIG, ("CONFIG={config}",),
         r"balanced_dataset\.output\.csv_path '.*notes\.json' is an existing file of another kind", ("notes.json",),
         setup=lambda work, inputs: ((work / "notes.json").write_text("{}"),
                                     configure(csv_path="{dir}/notes.json")(work, inputs))),
    # Outputs that collide
    Case("combine-csv-and-report-collide", COMBINE, ("INPUT={un}", "OUTPUT={dir}/w.gpkg", "OUTPUT_CSV={dir}/s.csv",
                                                     "OUTPUT_REPORT={dir}/s.csv"),
         r"OUTPUT_CSV and OUTPUT_REPORT both point to '.*s\.csv'", ("un.gpkg",), ("s.csv", "w.gpkg")),
    Case("config-csv-and-geojson-collide", CONFIG, ("CONFIG={config}",),
         r"balanced_dataset\.output\.csv_path and balanced_dataset\.output\.geojson_path both point to",
         ("records.csv",), ("out.csv",), setup=configure(csv_path="{dir}/out.csv", geojson_path="{dir}/out.csv")),
    # Outputs that cannot be written: refused before the work
    Case("combine-csv-in-a-missing-folder", COMBINE, ("INPUT={un}", "OUTPUT_CSV={dir}/nope/t.csv",
                                                      "OUTPUT={dir}/w.gpkg"),
         r"Cannot write OUTPUT_CSV '.*nope/t\.csv': the folder '.*nope' does not exist", ("un.gpkg",), ("w.gpkg",)),
    Case("combine-csv-is-a-folder", COMBINE, ("INPUT={un}", "OUTPUT_CSV={dir}", "OUTPUT={dir}/w.gpkg"),
         r"OUTPUT_CSV '.*' is a folder", (), ("w.gpkg",)),
    Case("combine-csv-read-only-folder", COMBINE, ("INPUT={un}", "OUTPUT_CSV={ro}/t.csv", "OUTPUT={dir}/w.gpkg"),
         r"Cannot write OUTPUT_CSV '.*t\.csv': the folder '.*' is not writable", ("un.gpkg",), ("w.gpkg",)),
    Case("uniqueness-cache-read-only-folder", UNIQUENESS, ("INPUT={cl}", "DINO_MODEL={model}",
                                                           "PARQUET_PATH={ro}/e.parquet", "OUTPUT={dir}/u.gpkg"),
         r"Cannot write PARQUET_PATH '.*e\.parquet': the folder '.*' is not writable", ("cl.gpkg",), ("u.gpkg",)),
    Case("config-csv-read-only-folder", CONFIG, ("CONFIG={config}",),
         r"Cannot write balanced_dataset\.output\.csv_path '.*x\.csv'.*not writable", ("records.csv",),
         setup=configure(csv_path="{ro}/x.csv")),
    Case("combine-layer-as-shapefile", COMBINE, ("INPUT={un}", "OUTPUT={dir}/w.shp"),
         r"OUTPUT '.*w\.shp' is a shapefile, whose field names are cut to 10 characters "
         r"\(sampler_weight -> sampler_we\)", ("un.gpkg",), ("w.shp", "w.dbf")),
    # In place: all or nothing
    Case("in-place-trigger-refuses-a-row", COMBINE, ("INPUT={un}", "IN_PLACE=true"),
         r"Could not update feature 7 of the layer .*feature 7 is locked by the archive.*Nothing was changed",
         ("un.gpkg",), setup=refusing_trigger),
    Case("in-place-read-only-geopackage", COMBINE, ("INPUT={ro}/un.gpkg", "IN_PLACE=true"),
         r"is read-only, so the layer cannot be updated in place"),
    Case("in-place-shapefile", "computecompositionclusters", ("INPUT={dir}/fp.shp", "IN_PLACE=true"),
         r"In-place update writes all fields or none.*stored as ESRI Shapefile", ("fp.shp", "fp.dbf"),
         setup=as_shapefile),
    # A damaged input (e.g. a file an older version left when it was killed) is named as such
    Case("input-damaged-geopackage", "computecompositionclusters", ("INPUT={dir}/damaged.gpkg",
                                                                    "OUTPUT={dir}/c.gpkg"),
         r"INPUT '.*damaged\.gpkg' exists but no layer can be read from it: the file is damaged or unfinished",
         ("damaged.gpkg",), ("c.gpkg",), setup=lambda work, inputs: (work / "damaged.gpkg").write_bytes(
             (work / "fp.gpkg").read_bytes()[:65536])),
    # Windows and bands the rasters do not have
    Case("uniqueness-window-outside-image", UNIQUENESS, ("INPUT={cl}", "DINO_MODEL={model}", "OUTPUT={dir}/u.gpkg"),
         r"col_off=480.*outside the image raster '.*tile_0\d\.tif' \(512 rows x 512 columns\)", ("cl.gpkg",),
         ("u.gpkg",), setup=shift_window("cl.gpkg", "col_off", 480)),
    Case("composition-window-outside-mask", "computecompositionclusters", ("INPUT={fp}", "OUTPUT={dir}/c.gpkg"),
         r"outside the mask raster", ("fp.gpkg",), ("c.gpkg",), setup=shift_window("fp.gpkg", "col_off", 480)),
    Case("uniqueness-bands-the-image-lacks", UNIQUENESS, ("INPUT={cl}", "DINO_MODEL={model}", "BANDS=1,2,5",
                                                          "OUTPUT={dir}/u.gpkg"),
         r"has 3 bands; the band selection \(1, 2, 5\) must name 3 bands between 1 and 3", ("cl.gpkg",),
         ("u.gpkg",)),
]


@pytest.fixture(scope="module")
def base(profile, synthetic_dataset, tmp_path_factory):
    """Footprints, clusters and uniqueness layers (tiny DINOv2) made once through qgis_process."""
    from tests.tiny_dinov2 import build_tiny_dinov2

    folder = tmp_path_factory.mktemp("bad_inputs_base")
    model = build_tiny_dinov2(folder / "model")
    steps = [
        ("createpatchfootprints", [f"IMAGE_FOLDER={os.path.dirname(synthetic_dataset.images[0])}",
                                   f"MASK_FOLDER={os.path.dirname(synthetic_dataset.masks[0])}", "PATCH_SIZE=128",
                                   f"OUTPUT={folder / 'fp.gpkg'}"]),
        ("computecompositionclusters", [f"INPUT={folder / 'fp.gpkg'}", "K_SELECTION=1", "K=4",
                                        f"OUTPUT={folder / 'cl.gpkg'}"]),
        ("computedinov2uniqueness", [f"INPUT={folder / 'cl.gpkg'}", f"DINO_MODEL={model}", "BACKEND=1",
                                     f"OUTPUT={folder / 'un.gpkg'}"]),
        ("combinesamplerweights", [f"INPUT={folder / 'un.gpkg'}", f"OUTPUT_CSV={folder / 'train.csv'}",
                                   f"OUTPUT={folder / 'w.gpkg'}"]),
    ]
    for algorithm, arguments in steps:
        proc = qgis_process("run", f"balanced_sampling:{algorithm}", "--", *arguments, profile=profile)
        assert proc.returncode == 0, f"{algorithm}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    import pandas as pd

    train = pd.read_csv(folder / "train.csv")
    train.rename(columns={"image": "image_path", "mask": "mask_path"})[
        ["image_path", "mask_path", "row_off", "col_off", "patch_size"]].to_csv(folder / "records.csv", index=False)
    return {"folder": folder, "model": model, "dataset": synthetic_dataset}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, base, profile, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for name in INPUTS:
        shutil.copy(base["folder"] / name, work / name)
    rasters = base["dataset"]
    for kind, paths in (("images", rasters.images), ("masks", rasters.masks)):
        (work / kind).mkdir()
        for path in paths:
            shutil.copy(path, work / kind)
    # The layers point at the shared rasters; the cases that would overwrite one use the copies in {dir}.
    inputs = {"fp": str(work / "fp.gpkg"), "cl": str(work / "cl.gpkg"), "un": str(work / "un.gpkg"),
              "records": str(work / "records.csv"), "csv": str(work / "train.csv"),
              "config": str(work / "config.yaml"), "model": base["model"], "dir": str(work),
              "img": str(work / "images" / "tile_00.tif"), "mask": str(work / "masks" / "tile_00.tif"),
              "ro": str(tmp_path / "ro")}
    if case.id == "combine-csv-over-an-image":  # the layer must point at the copy it is asked to overwrite
        _point_layer_at(work / "un.gpkg", rasters.images[0], inputs["img"])
    with read_only_folder(tmp_path / "ro", [work / "un.gpkg"]):
        if case.setup is not None:
            case.setup(work, inputs)
        before = {name: sha1(work / name) for name in case.unchanged}
        ro_before = sha1(tmp_path / "ro" / "un.gpkg")
        proc = qgis_process("run", f"balanced_sampling:{case.algorithm}", "--",
                            *[arg.format(**inputs) for arg in case.args], profile=profile)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output[-3000:]
        assert re.search(case.message, output, re.DOTALL), output[-3000:]
        assert {name: sha1(work / name) for name in case.unchanged} == before
        assert sha1(tmp_path / "ro" / "un.gpkg") == ro_before
    for name in case.absent:
        assert not (work / name).exists(), f"{name} was written"
    leftovers = [p for p in os.listdir(work) if p.startswith(".balanced-sampling-partial")]
    assert leftovers == [], "a partial output was left behind"


def _point_layer_at(gpkg, old, new):
    import pandas as pd

    from balanced_sampling_plugin.geopackage import update_fields_in_place

    with sqlite3.connect(gpkg) as db:
        table = db.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'").fetchone()[0]
        fids = [row[0] for row in db.execute(f'SELECT fid FROM "{table}" WHERE image_path = ?', (old,))]
    update_fields_in_place(gpkg, pd.DataFrame({"image_path": [new] * len(fids)}, index=fids))


def test_a_killed_run_leaves_the_earlier_output_and_the_next_run_cleans_up(base, profile, tmp_path):
    """SIGTERM while Create patch footprints writes: the earlier file at OUTPUT stays valid and unchanged."""
    import signal
    import subprocess
    import time

    from tests.headless.conftest import QGIS_PROCESS, gpkg_rows

    output = tmp_path / "footprints.gpkg"
    shutil.copy(base["folder"] / "fp.gpkg", output)
    before = sha1(output)
    folders = [f"IMAGE_FOLDER={os.path.dirname(base['dataset'].images[0])}",
               f"MASK_FOLDER={os.path.dirname(base['dataset'].masks[0])}"]
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(profile))
    # 2 px patches: ~390 000 footprints, long enough to be killed while the layer is being written.
    run = subprocess.Popen([QGIS_PROCESS, "run", "balanced_sampling:createpatchfootprints", "--", *folders,
                            "PATCH_SIZE=2", f"OUTPUT={output}"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        partial = None
        while time.monotonic() < deadline and run.poll() is None:
            partials = [p for p in tmp_path.iterdir() if p.name.startswith(".balanced-sampling-partial")]
            if partials and (partials[0] / "footprints.gpkg").exists() and \
                    (partials[0] / "footprints.gpkg").stat().st_size > 512 * 1024:
                partial = partials[0]
                break
            time.sleep(0.2)
        assert partial is not None, "the run ended before it was writing its layer"
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    assert sha1(output) == before
    assert len(gpkg_rows(str(output))) == 96
    assert partial.exists(), "the killed process had no chance to clean up"

    proc = qgis_process("run", "balanced_sampling:createpatchfootprints", "--", *folders, "PATCH_SIZE=256",
                        f"OUTPUT={output}", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(gpkg_rows(str(output))) == 24
    assert not partial.exists(), "the next run removes what the killed one left"


def _fresh_copies(base, tmp_path, names=INPUTS):
    work = tmp_path / "work"
    work.mkdir()
    for name in names:
        shutil.copy(base["folder"] / name, work / name)
    return work


def gpkg_rows_of(path, layer):
    with sqlite3.connect(path) as db:
        return db.execute(f'SELECT * FROM "{layer}"').fetchall()


def _layers(path):
    with sqlite3.connect(path) as db:
        return sorted(row[0] for row in db.execute("SELECT table_name FROM gpkg_contents"))


def test_a_new_layer_in_an_existing_geopackage_keeps_its_other_layers(base, profile, tmp_path):
    work = _fresh_copies(base, tmp_path)
    shutil.copy(work / "un.gpkg", work / "multi.gpkg")
    before = _layers(work / "multi.gpkg")
    proc = qgis_process("run", f"balanced_sampling:{COMBINE}", "--", f"INPUT={work / 'un.gpkg'}",
                        f"OUTPUT=ogr:dbname='{work / 'multi.gpkg'}' table=\"weights\" (geom)", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert set(before) | {"weights"} <= set(_layers(work / "multi.gpkg"))
    assert len(gpkg_rows_of(work / "multi.gpkg", "un")) == 96, "the file's other layer is intact"
    # and a new layer inside the input's own file is fine: the input layer itself is untouched
    proc = qgis_process("run", f"balanced_sampling:{COMBINE}", "--", f"INPUT={work / 'un.gpkg'}",
                        f"OUTPUT=ogr:dbname='{work / 'un.gpkg'}' table=\"weights\" (geom)", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "weights" in _layers(work / "un.gpkg")


def test_an_output_of_another_format_beside_a_shapefile_leaves_the_shapefile(base, profile, tmp_path):
    work = _fresh_copies(base, tmp_path)
    as_shapefile(work, {})
    before = {ext: sha1(work / f"fp{ext}") for ext in (".shp", ".shx", ".dbf", ".prj")}
    proc = qgis_process("run", "balanced_sampling:createpatchfootprints", "--",
                        f"IMAGES={base['dataset'].images[0]}", f"MASKS={base['dataset'].masks[0]}",
                        "PATCH_SIZE=256", f"OUTPUT={work / 'fp.tab'}", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert {ext: sha1(work / f"fp{ext}") for ext in before} == before
    assert (work / "fp.tab").exists() and (work / "fp.dat").exists()


def test_an_output_name_without_extension_becomes_a_geopackage(base, profile, tmp_path):
    work = _fresh_copies(base, tmp_path, ())
    proc = qgis_process("run", "balanced_sampling:createpatchfootprints", "--",
                        f"IMAGES={base['dataset'].images[0]}", f"MASKS={base['dataset'].masks[0]}",
                        "PATCH_SIZE=256", f"OUTPUT={work / 'patches'}", profile=profile)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in work.iterdir()) == ["patches.gpkg"]
