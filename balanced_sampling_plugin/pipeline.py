"""The whole ``build-balanced-dataset`` chain from one ``balanced_dataset`` config.

records (``input.patch_records``, the windows of ``input.image_dir``/``mask_dir``, or a
PostgreSQL tile table) -> footprints -> composition clusters -> uniqueness -> sampler weights
(+ the optional rare-class boost) -> the training CSV (+ an optional GeoJSON of the patch
footprints).

Decisions
---------
Class proportions
    When the records carry ``cls_<c>`` fields (a tile table's ``class_dist``), masks are
    not read; the border-nodata / black-border exclusions, which need pixels, are skipped.
Uniqueness
    ``mode: both`` (the documentation's ``embeddings``) and ``embeddings_only`` always compute
    DINOv2 uniqueness with the configured model, k and backend (embeddings are cached in
    ``parquet_path``, so re-runs are cheap); a ``uniqueness_score`` column of the input is
    replaced, because it may come from another model or k. ``mode: masks_only`` runs no
    model: it reuses the input's ``uniqueness_score`` when every included patch has one;
    otherwise a method that needs uniqueness is an error naming the method and the ways out
    (as pytorch-smt-tools fails fast there), raised before any mask is read when the input
    carries no scores at all.
Embeddings from the tile table
    With ``fetch_embeddings: true`` (backend postgres) in a mode that computes uniqueness, the
    tile table's ``embedding_column`` is read by the same query as the other columns and the kNN
    score runs on those vectors: DINOv2 does not run and the ``embeddings`` keys (model, cache)
    are not used. In ``masks_only`` the column is not read (the log says so), as uniqueness is
    only computed in the other modes.
Composition in ``embeddings_only``
    Masks are still read (exclusions, class shares, the CSV's diagnostics) but the patches
    form one composition cluster: every included patch gets the same composition weight, so
    the method effectively ranks uniqueness (said in the log).
GeoJSON
    Without ``output.geojson_crs`` footprints are written in the rasters' CRS, not
    reprojected to WGS 84; with it they are reprojected (corner points, rasterio/PROJ, x =
    easting/longitude first). The file carries the legacy ``crs`` member
    (``urn:ogc:def:crs:EPSG::<code>``), which QGIS/GDAL read, except for EPSG:4326, GeoJSON's
    default. A CRS without EPSG code cannot be named there; the file then has no ``crs``
    member (a warning says so) and the layer's CRS must be set by hand. The GeoJSON keeps
    excluded patches even with ``output.include_excluded: false`` (they are drawn with weight 0).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Mapping, Optional, Union

import numpy as np
import pandas as pd

from .composition import CompositionResult, compute_composition
from .config import ROOT, BalancedDatasetConfig, DirectoryInput, LocalInput, load_config
from .errors import BalancedSamplingError, require
from .i18n import _
from .export import write_training_csv
from .embedding_cache import cache_output
from .file_safety import (
    CSV_FILES,
    GEOJSON_FILES,
    OutputFiles,
    check_paths,
    check_replaced_kind,
    create_output_folders,
    files_under,
)
from .footprints import build_footprints, find_pairs
from .progress import Progress, as_progress
from .records import (
    COL_OFF,
    EXCLUDED,
    FREQ_CLUSTER_ID,
    NODATA_RATIO,
    IMAGE_PATH,
    MASK_PATH,
    PATCH_ID,
    PATCH_SIZE,
    ROW_OFF,
    SAMPLER_WEIGHT,
    UNIQUENESS_SCORE,
    class_columns,
    normalize_path,
)
from .sources.footprints_for_records import record_footprints
from .sources.postgres import TileEmbeddings, load_tiles, load_tiles_with_embeddings
from .uniqueness_stage import UniquenessResult, compute_uniqueness, uniqueness_from_embeddings
from .weights import WeightResult, combine_weights, included_mask, method_signals

#: Feature properties of the GeoJSON, in order (absent fields are written as null).
GEOJSON_PROPERTIES = (
    PATCH_ID, IMAGE_PATH, MASK_PATH, ROW_OFF, COL_OFF, PATCH_SIZE,
    SAMPLER_WEIGHT, FREQ_CLUSTER_ID, UNIQUENESS_SCORE, EXCLUDED, NODATA_RATIO,
)
#: GeoJSON's default CRS is WGS 84 lon/lat, which needs no ``crs`` member.
_GEOJSON_DEFAULT_CRS = "EPSG:4326"
_UNIQUENESS_SIGNAL = "uniqueness"


@dataclass
class PipelineResult:
    """Everything :func:`run_config` produced.

    table : one row per patch: the input fields plus composition (``cls_<c>``,
        ``class_entropy``, ``nodata_ratio``, ``excluded``, ``freq_cluster_*``), possibly
        ``uniqueness_score``, and ``sampler_weight``; row ``i`` has ``rings[i]``.
    rings : closed footprint rings (5 ``(x, y)``) in the rasters' CRS.
    crs_wkt, crs_authid : that CRS.
    csv_path, geojson_path : the files written (``geojson_path`` None when not asked for).
    sampling_method : the method applied.
    composition, uniqueness, weights : the stage results (``uniqueness`` None when no model ran).
    """

    table: pd.DataFrame
    rings: list
    crs_wkt: str
    crs_authid: str
    csv_path: str
    geojson_path: Optional[str]
    sampling_method: str
    composition: CompositionResult
    uniqueness: Optional[UniquenessResult]
    weights: WeightResult


def run_config(
    config: Union[BalancedDatasetConfig, str, os.PathLike, Mapping],
    progress: Optional[Progress] = None,
    other_outputs: Optional[Mapping[str, str]] = None,
    outputs: Optional[OutputFiles] = None,
) -> PipelineResult:
    """Run the whole chain of a ``balanced_dataset`` config (a loaded one, a YAML path or a mapping).

    Progress: 10 % records, 5 % footprints, composition, uniqueness (embeddings mode),
    then weights and writing. Before any work, every output path is checked against the
    config, the records file, the rasters and the other outputs (:func:`check_output_paths`).
    Outputs are written to partial files at the very end and renamed into place together, so
    a failed or cancelled run leaves earlier files as they were.

    ``other_outputs`` (name -> path) are files the caller writes too (e.g. a QGIS layer), checked
    with the config's. With ``outputs`` given, the CSV and GeoJSON are written as its partial
    files and the caller commits them (together with its own); otherwise they are committed here.
    """
    if not isinstance(config, BalancedDatasetConfig):
        config = load_config(config)
    progress = as_progress(progress)
    embeddings = config.runs_embeddings
    check_output_paths(config, other_outputs=other_outputs)
    log_documented_defaults(config, progress)

    records, fetched = read_input(config, progress.child(0.0, 0.10))
    check_output_paths(config, records, other_outputs)
    check_mode(records, config)
    footprints = record_footprints(records, on_missing="fail", progress=progress.child(0.10, 0.15))
    table = footprints.records
    # compute.scheduler (the plugin's own key): mask reads and embeddings on one Dask cluster for both stages;
    # empty = threads in this process, as before.
    executor = config.compute.executor(config.num_workers) if config.compute.scheduler else None
    try:
        composition = run_composition(table, config, progress.child(0.15, 0.45 if embeddings else 0.90), executor)
        table = _replace_columns(table, composition.table)

        uniqueness = None
        if embeddings:
            uniqueness = run_uniqueness(table, config, progress.child(0.45, 0.90), fetched, executor)
            table = _replace_columns(table, uniqueness.table)
        else:
            table = without_partial_uniqueness(table, progress)
    finally:
        if executor is not None:
            executor.close()
    method = sampling_method_for(table, config, progress)
    boost = config.boost
    weights = combine_weights(table, method, rare_boost=boost.multiplier,
                              rare_classes=boost.rare_class_ids if boost.multiplier else None, progress=progress,
                              **config.weights.options())
    table[SAMPLER_WEIGHT] = weights.weights

    progress.check_canceled()
    csv_path, geojson_path = config.output.csv_path, config.output.geojson_path
    geojson = None
    if geojson_path:
        # Serialised before anything is written, so a failure here leaves no half-written outputs.
        rings, authid = footprints.rings, footprints.crs_authid
        if config.output.geojson_crs:
            rings, authid = reproject_rings(rings, footprints.crs_wkt or authid, config.output.geojson_crs)
        collection = footprints_geojson(table, rings, authid, progress)
        geojson = json.dumps(collection, allow_nan=False)
    with contextlib.ExitStack() as stack:
        files = outputs if outputs is not None else stack.enter_context(OutputFiles())
        write_training_csv(table, files.partial(csv_path), drop_excluded=not config.output.include_excluded)
        if geojson is not None:
            with open(files.partial(geojson_path), "w", encoding="utf-8") as handle:
                handle.write(geojson)
        progress.check_canceled()
        if outputs is None:
            files.commit()
    progress.update(1, 1)
    if outputs is None:  # else the caller says so once it has put them in place
        if geojson_path:
            progress.info(_("Wrote {n} patches ({excluded} excluded, method {method}) to {csv} and {geojson}.").format(
                n=len(table), excluded=weights.n_excluded, method=method, csv=csv_path, geojson=geojson_path))
        else:
            progress.info(_("Wrote {n} patches ({excluded} excluded, method {method}) to {csv}.").format(
                n=len(table), excluded=weights.n_excluded, method=method, csv=csv_path))
    return PipelineResult(
        table, footprints.rings, footprints.crs_wkt, footprints.crs_authid, csv_path, geojson_path, method,
        composition, uniqueness, weights,
    )


def check_output_paths(
    config: BalancedDatasetConfig,
    records: Optional[pd.DataFrame] = None,
    other_outputs: Optional[Mapping[str, str]] = None,
) -> None:
    """Refuse a config whose outputs would overwrite the config, the records file, a raster
    (once ``records`` are known), the embedding cache or each other; create the outputs'
    folders and check they can be written. See :func:`.file_safety.check_paths`."""
    output = config.output
    writes = {
        f"{ROOT}.output.csv_path": output.csv_path,
        f"{ROOT}.output.geojson_path": output.geojson_path,
        f"{ROOT}.embeddings.parquet_path":
            cache_output(config.embeddings.parquet_path) if config.runs_dinov2 else None,
        **(other_outputs or {}),
    }
    reads = {_("the config file"): config.source}
    if config.runs_dinov2:  # a local model folder's weights and config
        reads[f"{ROOT}.embeddings.dino_model"] = files_under(config.embeddings.dino_model)
    if isinstance(config.input, LocalInput):
        reads[f"{ROOT}.input.patch_records"] = config.input.records_file
    if records is not None:
        for column in (IMAGE_PATH, MASK_PATH):
            if column in records.columns:
                reads[_("a raster of the records' {field}").format(field=column)] = (
                    records[column].dropna().map(normalize_path).unique())
    check_paths(writes, reads, writable=False)  # collisions first: a refused run creates no folder
    if records is not None:  # after the rasters are known: an output over one is named as such first
        check_replaced_kind(output.csv_path, CSV_FILES, f"{ROOT}.output.csv_path")
        check_replaced_kind(output.geojson_path, GEOJSON_FILES, f"{ROOT}.output.geojson_path")
    create_output_folders(writes)
    check_paths(writes)  # collisions with the reads were proven above: the outputs' folders, now they exist


def load_records(config: BalancedDatasetConfig, progress: Optional[Progress] = None) -> pd.DataFrame:
    """The config's patch table: ``input.patch_records``, the windows of the image/mask folders, or the
    rows of its tile table."""
    return read_input(config, progress)[0]


def read_input(
    config: BalancedDatasetConfig, progress: Optional[Progress] = None
) -> tuple[pd.DataFrame, Optional[TileEmbeddings]]:
    """(:func:`load_records`, the tile table's embeddings when the config fetches them, else None)."""
    source = config.input
    fetched = None
    if isinstance(source, LocalInput):
        records = source.patch_records.copy()
    elif isinstance(source, DirectoryInput):
        pairs = find_pairs(source.image_dir, source.pattern, source.mask_dir, source.pattern)
        records = build_footprints(pairs, source.patch_size, source.stride, edge="drop", progress=progress).records
        as_progress(progress).info(
            _("{n} patches of {size} px (stride {stride} px) cut from {pairs} image/mask pairs of {folder}.").format(
                n=len(records), size=source.patch_size, stride=source.stride, pairs=len(pairs),
                folder=source.image_dir))
    elif config.fetches_embeddings:
        records, fetched = load_tiles_with_embeddings(
            source.connection(), source.table, source.where_clause, source.columns, source.embedding_column,
            nodata_class=config.exclusion.nodata_class, progress=progress,
            statement_timeout=source.statement_timeout,
        )
    else:
        if source.fetch_embeddings:
            as_progress(progress).info(
                _("fetch_embeddings is true, but mode '{mode}' computes no uniqueness, so the table's embeddings "
                  "(column '{column}') are not read.").format(mode=config.mode, column=source.embedding_column))
        records = load_tiles(
            source.connection(), source.table, source.where_clause, source.columns,
            nodata_class=config.exclusion.nodata_class, progress=progress,
            statement_timeout=source.statement_timeout,
        )
    if MASK_PATH not in records.columns:
        raise BalancedSamplingError(
            _("The tile table has no mask path column, which the training CSV needs; name it with "
              "balanced_dataset.input.mask_path_column.")
        )
    return records, fetched


def run_composition(
    table: pd.DataFrame, config: BalancedDatasetConfig, progress: Optional[Progress] = None, executor=None
) -> CompositionResult:
    """Composition clusters with the config's clustering and exclusion keys.

    The table's own ``cls_<c>`` proportions are used when it has them (no mask read). ``executor``: where the
    mask reads run (None: threads here).
    """
    exclusion, clustering = config.exclusion, config.clustering
    k_options = {"k_selection": clustering.k_selection, "k_min": clustering.k_min, "k_max": clustering.k_max,
                 "k": clustering.k}
    if config.mode == "embeddings_only":
        # One cluster: the same composition weight for every included patch, a neutral signal.
        k_options = {"k_selection": "fixed", "k_min": 1, "k_max": 1, "k": 1}
        as_progress(progress).info(
            _("mode 'embeddings_only': every included patch gets the same composition weight (one cluster; "
              "the clustering keys are not used), so sampling_method '{method}' effectively ranks visual "
              "uniqueness.").format(method=config.sampling_method))
    return compute_composition(
        table,
        nodata_class=exclusion.nodata_class,
        exclude_border_nodata=exclusion.exclude_border_nodata,
        exclude_black_border=exclusion.exclude_black_border,
        black_tolerance=exclusion.black_tolerance,
        max_nodata_ratio=exclusion.max_nodata_ratio,
        min_entropy_threshold=exclusion.min_entropy_threshold,
        random_state=clustering.random_state,
        workers=config.num_workers,
        proportions=table if class_columns(table.columns) else None,
        progress=progress,
        **k_options,
        executor=executor,
    )


def run_uniqueness(
    table: pd.DataFrame,
    config: BalancedDatasetConfig,
    progress: Optional[Progress] = None,
    fetched: Optional[TileEmbeddings] = None,
    executor=None,
) -> UniquenessResult:
    """DINOv2 uniqueness with the config's embeddings and uniqueness keys; with ``fetched`` (the tile
    table's embeddings, see :func:`read_input`), the kNN score of those vectors instead. ``executor``: where the
    missing embeddings are computed (None: here)."""
    progress = as_progress(progress)
    embeddings, uniqueness = config.embeddings, config.uniqueness
    if fetched is not None:
        source = _("column '{column}' of the tile table").format(column=fetched.column)
        if UNIQUENESS_SCORE in table.columns:
            progress.info(_("The input's {field} values are replaced by scores from the embeddings of {source} "
                            "(mode: {mode}).").format(field=UNIQUENESS_SCORE, source=source, mode=config.mode))
        progress.info(_("Uniqueness from the {dim}-dimension embeddings of {source} (fetch_embeddings): DINOv2 does "
                        "not run, and balanced_dataset.embeddings is not used.").format(
                            dim=fetched.dimension, source=source))
        return uniqueness_from_embeddings(
            table, fetched.for_patches(table[PATCH_ID].to_numpy()), k_neighbors=uniqueness.k_neighbors,
            backend=uniqueness.backend, source=source, progress=progress, reproducible=uniqueness.reproducible)
    if UNIQUENESS_SCORE in table.columns:
        progress.info(
            _("The input's {field} values are replaced by scores from {model} (mode: {mode}).").format(
                field=UNIQUENESS_SCORE, model=embeddings.dino_model, mode=config.mode)
        )
    return compute_uniqueness(
        table,
        dino_model=embeddings.dino_model,
        batch_size=embeddings.batch_size,
        num_workers=embeddings.num_workers,
        use_gpu=embeddings.use_gpu,
        parquet_path=embeddings.parquet_path,
        k_neighbors=uniqueness.k_neighbors,
        backend=uniqueness.backend,
        reproducible=uniqueness.reproducible,
        progress=progress,
        executor=executor,
    )


def without_partial_uniqueness(table: pd.DataFrame, progress: Optional[Progress] = None) -> pd.DataFrame:
    """``table`` without its ``uniqueness_score`` column when an included patch lacks a finite value.

    A precomputed score (e.g. from a tile table) is only usable when every drawable patch has one.
    """
    if UNIQUENESS_SCORE not in table.columns:
        return table
    scores = pd.to_numeric(table[UNIQUENESS_SCORE], errors="coerce").to_numpy(dtype=np.float64)
    unknown = ~np.isfinite(scores) & included_mask(table)
    if not unknown.any():
        return table
    as_progress(progress).warning(
        _("{n} included patches have no {field}; the input's scores are ignored.").format(
            n=int(unknown.sum()), field=UNIQUENESS_SCORE)
    )
    return table.drop(columns=UNIQUENESS_SCORE)


def log_documented_defaults(config: BalancedDatasetConfig, progress: Optional[Progress] = None) -> None:
    """Say which defaults of the pytorch-smt-tools documentation applied where its code has others."""
    used = [(key, value) for key, value in config.defaults_applied
            if (".embeddings." in key and config.runs_dinov2)
            or (".clustering." in key and config.mode != "embeddings_only"
                and config.clustering.k_selection == "elbow")]
    if used:
        shown = ", ".join(f"{key} = {str(value).lower() if isinstance(value, bool) else value}" for key, value in used)
        as_progress(progress).info(
            _("Not set in the config, so the pytorch-smt-tools documentation's defaults apply (its code has "
              "other ones): {defaults}.").format(defaults=shown))


def _needs_uniqueness(config: BalancedDatasetConfig) -> bool:
    return _UNIQUENESS_SIGNAL in method_signals(config.sampling_method)


def check_mode(records: pd.DataFrame, config: BalancedDatasetConfig) -> None:
    """Refuse, before any mask is read, ``masks_only`` with a method that needs uniqueness when the
    records carry no ``uniqueness_score`` at all (see :func:`sampling_method_for`)."""
    if config.mode == "masks_only" and _needs_uniqueness(config) and UNIQUENESS_SCORE not in records.columns:
        raise _masks_only_error(config)


def _masks_only_error(config: BalancedDatasetConfig) -> BalancedSamplingError:
    if config.sampling_method_given:
        message = _("balanced_dataset.sampling_method '{method}' needs uniqueness scores, which mode 'masks_only' "
                    "does not compute and the input does not carry. Set balanced_dataset.mode to 'both' (or "
                    "'embeddings') to compute them with DINOv2, or choose a sampling_method that needs no "
                    "uniqueness, such as class_balanced or composition_only.")
    else:
        message = _("balanced_dataset.sampling_method is not set, and its default, '{method}', needs uniqueness "
                    "scores, which mode 'masks_only' does not compute and the input does not carry. Set "
                    "balanced_dataset.mode to 'both' (or 'embeddings') to compute them with DINOv2, or set a "
                    "sampling_method that needs no uniqueness, such as class_balanced or composition_only.")
    return BalancedSamplingError(message.format(method=config.sampling_method))


def sampling_method_for(table: pd.DataFrame, config: BalancedDatasetConfig, progress: Optional[Progress] = None) -> str:
    """The config's sampling method, checked against the signals the table carries.

    Raises for a method that needs a ``uniqueness_score`` the table lacks (``masks_only``
    without precomputed scores), naming the method and the two ways out: a mode that
    computes uniqueness, or a method that needs none. A table that carries every included
    patch's ``uniqueness_score`` (e.g. a tile table) works in ``masks_only`` too.
    """
    progress = as_progress(progress)
    method = config.sampling_method
    if not config.sampling_method_given:
        progress.info(
            _("balanced_dataset.sampling_method is not set: using pytorch-smt-tools' default, {method}. Rank methods "
              "draw a patch at most about 1.5-2x as often as uniform sampling; for a class of 1-2 % of the pixels set "
              "sampling_method: class_balanced.").format(method=method)
        )
    if not _needs_uniqueness(config):
        return method
    if UNIQUENESS_SCORE in table.columns:
        if config.mode == "masks_only":
            progress.info(_("Using the input's precomputed {field} (mode: masks_only runs no model).").format(
                field=UNIQUENESS_SCORE))
        return method
    raise _masks_only_error(config)


def reproject_rings(rings: list, src_crs: str, dst_crs: str) -> tuple:
    """``rings`` (closed, in ``src_crs``) in ``dst_crs``, and ``dst_crs``'s authid (``EPSG:<code>``, "" without one).

    Corner points are transformed with rasterio (PROJ), which keeps the traditional GIS axis
    order: x is the easting or the longitude, as GeoJSON wants.
    """
    from rasterio.crs import CRS
    from rasterio.warp import transform

    if not src_crs:
        raise BalancedSamplingError(
            _("The rasters have no CRS, so the footprints cannot be reprojected to balanced_dataset.output.geojson_crs "
              "({crs}); remove that key or give the rasters a CRS.").format(crs=dst_crs))
    target = CRS.from_user_input(dst_crs)
    epsg = target.to_epsg()
    authid = f"EPSG:{epsg}" if epsg else ""
    if not rings:
        return [], authid
    points = np.asarray(rings, dtype=np.float64)  # (n, 5, 2)
    xs, ys = transform(CRS.from_user_input(src_crs), target, points[..., 0].ravel(), points[..., 1].ravel())
    moved = np.stack([np.asarray(xs), np.asarray(ys)], axis=-1).reshape(points.shape)
    if not np.isfinite(moved).all():
        raise BalancedSamplingError(
            _("Some footprints fall outside the area of balanced_dataset.output.geojson_crs ({crs}); choose a CRS "
              "that covers the rasters.").format(crs=dst_crs))
    return [[(float(x), float(y)) for x, y in ring] for ring in moved], authid


def footprints_geojson(
    table: pd.DataFrame, rings: list, crs_authid: str, progress: Optional[Progress] = None
) -> dict:
    """A GeoJSON FeatureCollection (as a dict): one polygon per row, :data:`GEOJSON_PROPERTIES` as properties.

    Coordinates stay in the rasters' CRS, named by a legacy ``crs`` member when it has an
    EPSG code (see the module docstring). NaN values become null.
    """
    geometry = require("shapely.geometry", _("the GeoJSON output"), pip_name="shapely")
    if len(rings) != len(table):
        raise BalancedSamplingError(
            _("{footprints} footprints for {patches} patches; they must pair one to one.").format(
                footprints=len(rings), patches=len(table)))
    values = table.reindex(columns=list(GEOJSON_PROPERTIES)).to_dict("records")
    features = [
        {"type": "Feature", "geometry": geometry.mapping(geometry.Polygon(ring)), "properties": _plain(props)}
        for ring, props in zip(rings, values)
    ]
    collection = {"type": "FeatureCollection", "features": features}
    if crs_authid and crs_authid != _GEOJSON_DEFAULT_CRS:
        code = crs_authid.split(":", 1)[1]
        collection["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{code}"}}
    elif not crs_authid:
        as_progress(progress).warning(
            _("The rasters' CRS has no EPSG code, so the GeoJSON cannot name it; set the layer's CRS by hand in QGIS.")
        )
    return collection


def _plain(properties: dict) -> dict:
    """JSON-ready properties: numpy scalars as Python numbers, NaN as None."""
    out = {}
    for key, value in properties.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            value = None
        out[key] = value
    return out


def _replace_columns(table: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the columns of ``new`` (same index) added, replacing those of the same name."""
    return table.drop(columns=[c for c in new.columns if c in table.columns]).join(new)
