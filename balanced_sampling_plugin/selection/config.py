"""The tool's YAML ``coreset:`` block (pytorch-smt-tools ``select-coreset``) and a run of it on a training CSV.

::

    coreset:
      method: lc_fd                  # lc, cb, fd, fa, lc_fd, fa_cb
      budget: 0.3                    # a fraction of the pool (budget_mode: fraction) or a count
      budget_mode: fraction
      input_csv_path: /data/balanced_train.csv      # the training CSV of Combine / build-balanced-dataset
      output_csv_path: /data/coreset_train.csv      # the selected rows, sampler weights re-normalised
      parquet_path: /data/embeddings.parquet        # the embedding cache (fd, fa, lc_fd, fa_cb)
      embedding_column: embedding
      fd_k_min: 2
      fd_k_max: 20
      fd_use_vendi: false
      fd_vendi_delta: 0.005
      lc_fd_cutoff_m: null           # default 10% of the pool
      fa_cb_lambda: 0.5
      score_column: coreset_score

Other top-level sections of the file (``balanced_dataset``) are not read here. Relative paths resolve against
the file's folder. Unknown keys are errors naming the dotted key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Optional, Union

import numpy as np
import pandas as pd

from ..config import (
    _boolean,
    _choice,
    _integer,
    _mapping,
    _number,
    _optional,
    _section,
    _setting,
    _text,
    read_config,
)
from ..contract import (
    BUDGET_MODES,
    CORESET_EMBEDDING_METHODS,
    CORESET_METHODS,
    CORESET_SCORE,
    SAMPLER_WEIGHT,
    SELECTION_STEP,
)
from ..errors import BalancedSamplingError
from ..export import DEFAULT_DIAGNOSTIC_COLUMNS, expand_class_dist, missing_files_note, training_frame
from ..file_safety import CSV_FILES, atomic_write, check_paths, check_replaced_kind, create_output_folders
from ..i18n import _
from ..progress import Progress, as_progress
from ..records import IMAGE_PATH, MASK_PATH, normalize_path
from ..sources.records_file import read_yaml_file, records_from_csv, resolve_path
from .budget import DEFAULT_BUDGET, DEFAULT_BUDGET_MODE, check_budget
from .coreset import select_coreset, subset_weights
from .measures import compare_with_random
from .scores import DEFAULT_FA_CB_LAMBDA, DEFAULT_FD_K_MAX, DEFAULT_FD_K_MIN, DEFAULT_FD_VENDI_DELTA

ROOT = "coreset"
DEFAULT_METHOD = "lc"


@dataclass
class CoresetConfig:
    method: str = _setting(DEFAULT_METHOD, _choice(CORESET_METHODS))
    budget: float = _setting(DEFAULT_BUDGET, _number(0.0))
    budget_mode: str = _setting(DEFAULT_BUDGET_MODE, _choice(BUDGET_MODES))
    embedding_column: str = _setting("embedding", _text)
    fd_k_min: int = _setting(DEFAULT_FD_K_MIN, _integer(1))
    fd_k_max: int = _setting(DEFAULT_FD_K_MAX, _integer(1))
    fd_vendi_delta: float = _setting(DEFAULT_FD_VENDI_DELTA, _number(0.0))
    fd_use_vendi: bool = _setting(False, _boolean)
    lc_fd_cutoff_m: Optional[int] = _setting(None, _optional(_integer(0)))
    fa_cb_lambda: float = _setting(DEFAULT_FA_CB_LAMBDA, _number(0.0, 1.0))
    score_column: str = _setting(CORESET_SCORE, _text)
    output_csv_path: Optional[str] = _setting(None, _optional(_text))
    input_csv_path: Optional[str] = _setting(None, _optional(_text))
    parquet_path: Optional[str] = _setting(None, _optional(_text))
    source: Optional[str] = field(default=None)


def load_coreset_config(config: Union[str, os.PathLike, Mapping], base_dir: Optional[str] = None,
                        require_paths: bool = True) -> CoresetConfig:
    """The checked ``coreset:`` block of a YAML file or of a loaded mapping (``{"coreset": {...}}``).

    Relative paths resolve against the file's folder (a mapping: ``base_dir``, default the current folder).
    ``require_paths``: input_csv_path and output_csv_path must be given (a QGIS run may supply them).
    """
    def parse(document, source, base_dir):
        parsed = _section(CoresetConfig, _mapping(document[ROOT], ROOT), ROOT)
        try:
            check_budget(parsed.budget, parsed.budget_mode)
        except BalancedSamplingError as exc:
            raise BalancedSamplingError(_("{key}: {error}").format(key=f"{ROOT}.budget", error=exc)) from None
        _check_score_column(parsed.score_column, TRAINING_COLUMNS)
        if parsed.fd_k_max < parsed.fd_k_min:
            raise BalancedSamplingError(_("{key} ({k_max}) is smaller than {other} ({k_min}).").format(
                key=f"{ROOT}.fd_k_max", k_max=parsed.fd_k_max, other=f"{ROOT}.fd_k_min", k_min=parsed.fd_k_min))
        for name in ("output_csv_path", "input_csv_path", "parquet_path"):
            value = getattr(parsed, name)
            if value is not None and value.strip():
                setattr(parsed, name, resolve_path(value, base_dir))
            else:
                setattr(parsed, name, None)
        if require_paths:
            for name in ("input_csv_path", "output_csv_path"):
                if getattr(parsed, name) is None:
                    raise BalancedSamplingError(_("{key} is missing; give the path of the {what}.").format(
                        key=f"{ROOT}.{name}", what=_("training CSV to select from") if name.startswith("input")
                        else _("CSV of the selected patches")))
        if parsed.method in CORESET_EMBEDDING_METHODS and require_paths and not parsed.parquet_path:
            raise BalancedSamplingError(_("{key} is missing; coreset method {method} reads the DINOv2 embeddings "
                                          "from the embedding cache.").format(key=f"{ROOT}.parquet_path",
                                                                              method=parsed.method))
        parsed.source = source
        return parsed

    return read_config(config, base_dir, ROOT, parse)


#: Columns the coreset's CSV always has (the trainer's, the diagnostics, the selection step): never the score's.
TRAINING_COLUMNS = ("image", "mask", "row_off", "col_off", "patch_size", "sampler_weight", SELECTION_STEP,
                    *DEFAULT_DIAGNOSTIC_COLUMNS)


def _check_score_column(name: str, columns) -> None:
    """Refuse a ``score_column`` that would overwrite a column of the CSV (e.g. ``sampler_weight``: the trainer
    would draw patches by coreset scores)."""
    taken = {str(column).casefold() for column in columns}
    if not str(name).strip() or str(name).casefold() in taken:
        raise BalancedSamplingError(
            _("{key} '{name}' is a column the coreset CSV already has (its training columns and diagnostics); "
              "the scores would replace it. Choose a new name, such as {default}.").format(
                key=f"{ROOT}.score_column", name=name, default=CORESET_SCORE))


def coreset_block_beside(path, balanced_csv: Optional[str] = None, parquet_path: Optional[str] = None,
                         writes_cache: bool = True) -> Optional[CoresetConfig]:
    """The ``coreset:`` block of a YAML that also holds ``balanced_dataset:`` (None when it has none), checked
    before anything runs. Its input_csv_path defaults to ``balanced_csv`` (the CSV the balanced_dataset run
    writes) and its parquet_path to ``parquet_path`` (the run's embedding cache, which the run fills when
    ``writes_cache``); output_csv_path is needed, and a method that reads embeddings needs a cache that exists
    or that the run writes."""
    document = read_yaml_file(os.fspath(path))
    if not isinstance(document, Mapping) or ROOT not in document:
        return None
    settings = load_coreset_config(path, require_paths=False)
    if settings.output_csv_path is None:
        raise BalancedSamplingError(_("{key} is missing; give the path of the {what}.").format(
            key=f"{ROOT}.output_csv_path", what=_("CSV of the selected patches")))
    settings.input_csv_path = settings.input_csv_path or balanced_csv
    settings.parquet_path = settings.parquet_path or parquet_path
    if settings.method in CORESET_EMBEDDING_METHODS:
        written = writes_cache and parquet_path and settings.parquet_path == parquet_path
        if not settings.parquet_path:
            raise BalancedSamplingError(
                _("{key} is missing; coreset method {method} reads the DINOv2 embeddings from the embedding cache, "
                  "and the balanced_dataset run beside it computes none. Give the cache of an earlier run, set "
                  "balanced_dataset.mode to 'both' with an embeddings.parquet_path, or choose a coreset method that "
                  "needs no embeddings (lc, cb).").format(key=f"{ROOT}.parquet_path", method=settings.method))
        if not written and not os.path.exists(settings.parquet_path):
            raise BalancedSamplingError(
                _("{key} '{path}' does not exist, and the balanced_dataset run beside it does not write it; coreset "
                  "method {method} reads the DINOv2 embeddings from it.").format(
                    key=f"{ROOT}.parquet_path", path=settings.parquet_path, method=settings.method))
    return settings


@dataclass
class CoresetRun:
    """What :func:`run_coreset_config` wrote and measured."""

    output_csv_path: str
    method: str
    n_pool: int
    n_selected: int
    budget: int
    comparison: dict
    details: dict


def coreset_frame(table: pd.DataFrame, result, score_column: str = CORESET_SCORE,
                  csv_folder: Optional[str] = None) -> pd.DataFrame:
    """The training CSV's rows of the selected patches (Combine's columns, in selection order), their sampler
    weights re-normalised to mean 1 over the subset, then ``score_column`` and ``selection_step``."""
    rows = result.selection.order
    chosen = np.zeros(len(table), dtype=bool)
    chosen[rows] = True
    weights = np.zeros(len(table))
    weights[chosen] = subset_weights(table, chosen)
    subset = table.iloc[rows].copy()
    subset[SAMPLER_WEIGHT] = weights[rows]
    frame = training_frame(subset, csv_folder)
    frame[score_column] = result.scores[rows]
    frame[SELECTION_STEP] = result.step[rows]
    return frame


def run_coreset_config(config: Union[str, os.PathLike, Mapping], progress: Optional[Progress] = None,
                       base_dir: Optional[str] = None) -> CoresetRun:
    """Read ``input_csv_path``, select the coreset, write ``output_csv_path`` atomically; log the subset's
    coverage next to a random subset of the same size."""
    progress = as_progress(progress)
    settings = config if isinstance(config, CoresetConfig) else load_coreset_config(config, base_dir)
    writes = {f"{ROOT}.output_csv_path": settings.output_csv_path}
    reads = {f"{ROOT}.input_csv_path": settings.input_csv_path, f"{ROOT}.parquet_path": settings.parquet_path,
             _("the config file"): getattr(settings, "source", None)}
    check_paths(writes, reads, writable=False)  # collisions first: a refused run creates no folder
    if settings.input_csv_path and not os.path.isfile(settings.input_csv_path):
        raise BalancedSamplingError(_("{key} '{path}' does not exist; give the training CSV to select from.").format(
            key=f"{ROOT}.input_csv_path", path=settings.input_csv_path))
    create_output_folders(writes)  # as balanced_dataset's outputs: made for you
    check_paths(writes)
    table = expand_class_dist(records_from_csv(settings.input_csv_path))
    # The rasters the CSV names are inputs too (the trainer reads them): never written over.
    check_paths(writes, {_("raster of the CSV's {field}").format(field=column):
                         table[column].dropna().map(normalize_path).unique()
                         for column in (IMAGE_PATH, MASK_PATH) if column in table.columns}, writable=False)
    check_replaced_kind(settings.output_csv_path, CSV_FILES, f"{ROOT}.output_csv_path")
    progress.info(_("{n} patches read from {path}.").format(n=len(table), path=settings.input_csv_path))
    result = select_coreset(
        table, settings.method, settings.budget, settings.budget_mode, parquet_path=settings.parquet_path,
        embedding_column=settings.embedding_column, fd_k_min=settings.fd_k_min, fd_k_max=settings.fd_k_max,
        fd_use_vendi=settings.fd_use_vendi, fd_vendi_delta=settings.fd_vendi_delta,
        lc_fd_cutoff_m=settings.lc_fd_cutoff_m, fa_cb_lambda=settings.fa_cb_lambda, progress=progress.child(0, 0.8))
    if result.selection.n_selected == 0:
        raise BalancedSamplingError(_("No patch was selected (every patch is excluded); {path} was not written.")
                                    .format(path=settings.output_csv_path))
    frame = coreset_frame(table, result, settings.score_column)
    note = missing_files_note(table.iloc[result.selection.order])
    if note:
        progress.warning(note)
    progress.check_canceled()
    with atomic_write(settings.output_csv_path, newline="") as handle:
        frame.to_csv(handle, index=False, lineterminator="\n")
    comparison = compare_with_random(table, result.selected, result.pool, result.pool_embeddings)
    progress.info(describe_comparison(result.method, comparison))
    progress.update(1, 1, check_cancel=False)
    return CoresetRun(settings.output_csv_path, result.method, int(result.pool.sum()), result.selection.n_selected,
                      result.budget, comparison, result.details)


def describe_comparison(method: str, comparison: dict) -> str:
    """One log line: the method's coverage next to random selection's."""
    def part(measures):
        text = _("class-share L1 distance to the pool {l1:.3f}").format(l1=measures["class_share_l1"])
        if measures["clusters_covered"] is not None:
            text += _(", clusters {covered}/{total}").format(covered=measures["clusters_covered"],
                                                             total=measures["clusters_in_pool"])
        if measures["tiles_covered"] is not None:
            text += _(", tiles {covered}/{total}").format(covered=measures["tiles_covered"],
                                                          total=measures["tiles_in_pool"])
        if measures["coverage_radius"] is not None:
            text += _(", coverage radius {radius:.3f}").format(radius=measures["coverage_radius"])
        return text

    return _("{method}: {selected} of {pool} patches; {method_measures}. Random selection of as many: "
             "{random_measures}.").format(method=method, selected=comparison["method"]["selected"],
                                          pool=comparison["method"]["pool"],
                                          method_measures=part(comparison["method"]),
                                          random_measures=part(comparison["random"]))
