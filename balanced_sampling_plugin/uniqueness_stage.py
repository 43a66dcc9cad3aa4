"""The "Compute DINOv2 uniqueness" stage: embeddings (cached) -> cosine kNN -> ``uniqueness_score``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .compute import executor_for
from .embeddings import extract_embeddings
from .errors import BalancedSamplingError
from .i18n import _
from .progress import Progress, as_progress
from .records import COL_OFF, IMAGE_PATH, PATCH_SIZE, ROW_OFF, UNIQUENESS_SCORE, patch_ids, validate_records
from .uniqueness import (
    DEFAULT_BACKEND,
    effective_k,
    preload_knn,
    reproducible_params,
    require_backend,
    uniqueness_scores,
)

WINDOW_RECORD = (IMAGE_PATH, ROW_OFF, COL_OFF, PATCH_SIZE)
#: Share of the progress bar given to embedding extraction; the kNN search gets the rest.
EXTRACTION_SHARE = 0.85


@dataclass
class UniquenessResult:
    """``table``: one row per record (same index) with :data:`UNIQUENESS_SCORE` (float, 0..2).

    ``computed``/``reused``: distinct patches embedded now / taken from the cache; rows that
    repeat a patch share its score (neighbours are searched among distinct patches);
    ``k_neighbors``: the k used (clipped to n - 1 for tiny tables); ``device``: None when
    no model ran.
    """

    table: pd.DataFrame
    computed: int
    reused: int
    model_name: str
    device: str | None
    k_neighbors: int
    backend: str


def compute_uniqueness(
    records: pd.DataFrame,
    dino_model: str = "dinov2-base",
    batch_size: int = 32,
    num_workers: int = 2,
    use_gpu: bool = False,
    parquet_path=None,
    k_neighbors: int = 5,
    backend: str = DEFAULT_BACKEND,
    bands=(1, 2, 3),
    stretch=(2, 98),
    progress: Progress | None = None,
    precision: str = "auto",
    reproducible: bool = False,
    executor=None,
    threads="all",
) -> UniquenessResult:
    """Uniqueness score of every patch: mean cosine distance of its DINOv2 CLS embedding to
    its ``k_neighbors`` nearest other patches. Parameters as in
    :func:`~balanced_sampling_plugin.embeddings.extract_embeddings` and
    :func:`~balanced_sampling_plugin.uniqueness.knn_cosine`; ``reproducible`` makes the
    ``nndescent`` graph return identical neighbours every run (pynndescent's is, on a given thread count;
    faiss's then runs on one thread, about 2x slower on 2 cores); the other backends are reproducible
    already and ignore it.
    ``executor``: a Dask executor computes the missing embeddings on its workers (see
    :func:`~balanced_sampling_plugin.embeddings.extract_embeddings`; the kNN runs here): an
    :class:`~balanced_sampling_plugin.compute.Executor` the caller closes, or a scheduler text (``""``,
    ``"local:N"``, ``"tcp://host:8786"``) for one opened and closed here. Same scores wherever it runs.
    """
    progress = as_progress(progress)
    # Fail on a bad backend, a missing kNN package or a too-small table before the long extraction.
    require_backend(backend)
    n_distinct = int(patch_ids(validate_records(records, required=WINDOW_RECORD)).nunique())
    k = effective_k(n_distinct, int(k_neighbors), progress)
    preload_knn(backend, n_distinct)

    with executor_for(executor) as own:
        embedded = extract_embeddings(
            records, dino_model=dino_model, batch_size=batch_size, num_workers=num_workers, use_gpu=use_gpu,
            parquet_path=parquet_path, bands=bands, stretch=stretch, progress=progress.child(0.0, EXTRACTION_SHARE),
            precision=precision, executor=own, threads=threads)
    knn_progress = progress.child(EXTRACTION_SHARE, 1.0)
    params = reproducible_params(backend) if reproducible else {}
    duplicates = len(records) - n_distinct
    if duplicates:
        # A twin would be its copy's nearest neighbour at distance 0 and pull every score down.
        progress.info(_("{duplicates} rows repeat a patch (same image and window) of another row; neighbours are "
                        "searched among the {distinct} distinct patches and each copy gets its patch's score.").format(
                            duplicates=duplicates, distinct=n_distinct))
    scores = uniqueness_scores(embedded.unique_embeddings, k=k, backend=backend, progress=knn_progress, **params)
    return UniquenessResult(
        table=pd.DataFrame({UNIQUENESS_SCORE: scores[embedded.row_to_unique]}, index=records.index),
        computed=embedded.computed,
        reused=embedded.reused,
        model_name=embedded.model_name,
        device=embedded.device,
        k_neighbors=k,
        backend=backend,
    )


def uniqueness_from_embeddings(
    records: pd.DataFrame,
    embeddings,
    k_neighbors: int = 5,
    backend: str = DEFAULT_BACKEND,
    source: str = "",
    progress: Progress | None = None,
    reproducible: bool = False,
) -> UniquenessResult:
    """:func:`compute_uniqueness` with embeddings given, not extracted: ``embeddings[i]`` belongs to the
    record at position ``i`` (e.g. read from a tile table's embedding column; ``source`` names them for
    :attr:`UniquenessResult.model_name`). Rows repeating a patch take its first row's embedding and
    share its score, as in :func:`compute_uniqueness`."""
    progress = as_progress(progress)
    require_backend(backend)
    vectors = np.asarray(embeddings)
    if vectors.ndim != 2 or len(vectors) != len(records):
        raise BalancedSamplingError(
            _("{n} embeddings of shape {shape} for {rows} patches; give one embedding (a row) per patch.").format(
                n=len(vectors), shape=vectors.shape, rows=len(records)))
    keys = patch_ids(validate_records(records, required=WINDOW_RECORD)).to_numpy()
    first_row, row_to_unique = np.unique(keys, return_index=True, return_inverse=True)[1:]
    k = effective_k(len(first_row), int(k_neighbors), progress)
    duplicates = len(records) - len(first_row)
    if duplicates:
        progress.info(_("{duplicates} rows repeat a patch (same image and window) of another row; neighbours are "
                        "searched among the {distinct} distinct patches and each copy gets its patch's score.").format(
                            duplicates=duplicates, distinct=len(first_row)))
    params = reproducible_params(backend) if reproducible else {}
    scores = uniqueness_scores(vectors[first_row], k=k, backend=backend, progress=progress, **params)
    return UniquenessResult(
        table=pd.DataFrame({UNIQUENESS_SCORE: scores[row_to_unique]}, index=records.index),
        computed=0,
        reused=len(first_row),
        model_name=source,
        device=None,
        k_neighbors=k,
        backend=backend,
    )
