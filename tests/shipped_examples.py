"""The configs of examples/, pointed at test data: shared by the engine's and qgis_process's end-to-end tests.

:func:`localised_example` keeps every key of a shipped config as it is, except its placeholders: the
/data/... records, folders, model, cache and outputs, and the PostgreSQL connection (the throw-away
server of :mod:`tests.postgres_server`, whose ``tiles`` table holds the synthetic dataset's windows).
"""

from __future__ import annotations

import os

import yaml

from balanced_sampling_plugin.footprints import raster_windows

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
SHIPPED_EXAMPLES = sorted(name for name in os.listdir(EXAMPLES) if name.endswith(".yaml"))
#: The trainer's columns, first in every training CSV.
CSV_COLUMNS = ["image", "mask", "row_off", "col_off", "patch_size", "sampler_weight"]
#: pytorch-smt-tools' diagnostics, after them (issue 13); uniqueness_score only when the run has scores.
TOOL_DIAGNOSTICS = ["class_entropy", "nodata_ratio", "has_mask_border_nodata", "has_image_black_border",
                    "has_low_entropy", "has_high_nodata", "excluded", "freq_cluster_id", "freq_cluster_size",
                    "freq_cluster_weight", "uniqueness_score", "class_dist_json"]
PATCH = 64


def example_patch_records(synthetic_dataset, patch: int = PATCH) -> list:
    """``patch_records`` entries (``patch`` px windows) of the synthetic dataset, paths relative to its folder."""
    folder = synthetic_dataset.folder
    return [
        {"image_path": os.path.relpath(image, folder), "mask_path": os.path.relpath(mask, folder),
         "row_off": int(r), "col_off": int(c), "patch_size": patch}
        for image, mask in zip(synthetic_dataset.images, synthetic_dataset.masks)
        for r, c in raster_windows(512, 512, patch, patch)
    ]


def load_example(name: str) -> dict:
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["balanced_dataset"]


def localised_example(name, synthetic_dataset, patch_records, tmp_path, request) -> dict:
    """The example's ``balanced_dataset`` with its placeholders pointed at the synthetic dataset (its records,
    folders or tile table), the tiny offline DINOv2 (fixture ``tiny_model``) and ``tmp_path``; every other key
    as shipped. A PostgreSQL example uses fixture ``tiles_database``."""
    body = load_example(name)
    folder = synthetic_dataset.folder
    source = body.get("postgres", body.get("input"))
    if "patch_records" in source:
        source["patch_records"] = [{**record, "image_path": os.path.join(folder, record["image_path"]),
                                    "mask_path": os.path.join(folder, record["mask_path"])} for record in patch_records]
    elif "image_dir" in source:
        source.update(image_dir=os.path.join(folder, "images"), mask_dir=os.path.join(folder, "masks"))
    else:
        tiles = request.getfixturevalue("tiles_database")
        source.update({k: v for k, v in tiles.connection.items() if k != "dbname"}, database=tiles.dbname,
                      table="tiles")
    output = body["output"]
    output["csv_path"] = str(tmp_path / "out" / "balanced_train.csv")
    if output.get("geojson_path"):
        output["geojson_path"] = str(tmp_path / "out" / "balanced_train.geojson")
    if "embeddings" in body:
        body["embeddings"].update(dino_model=request.getfixturevalue("tiny_model"), num_workers=0,
                                  parquet_path=str(tmp_path / "embeddings.parquet"))
    return body


def write_config(folder, body) -> str:
    """``body`` as ``folder/balanced.yaml`` under ``balanced_dataset``; returns the path."""
    path = os.path.join(folder, "balanced.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"balanced_dataset": body}, handle, sort_keys=False)
    return path
