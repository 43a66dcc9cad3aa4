"""DINOv2 embeddings as coarse tasks for an executor (a Dask cluster): the worker side and the plan.

The client (:func:`~balanced_sampling_plugin.embeddings.extract_embeddings`) checks the windows, estimates the
stretch and looks the cache up as in-process; only the missing patches go out, in image order, in tasks of
:data:`PATCHES_PER_TASK`. Each worker process loads the model once (:func:`worker_model`, run by the executor's
worker setup, a Dask ``WorkerPlugin``), on its GPU when asked for and present, and checks that its copy of a
local model folder has the same weights as the client's (the cache key says which weights made a vector).
A task reads its windows, runs the model and, for a partitioned cache (a folder), writes its rows as one new
part before returning them, so a finished task's work survives a later failure; with a single-file cache the
client saves what came back (also when the run stops on an error or a cancel).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .embedding_cache import cache_rows, write_part
from .errors import BalancedSamplingError
from .i18n import _
from .progress import Progress

#: Patches per task at most: a few seconds of a GPU, minutes of a CPU core; far above Dask's ~1 ms cost a task,
#: and small enough that a killed worker loses little and the bar moves...
PATCHES_PER_TASK = 512
#: ...and at least (a smaller run is cut into about TASKS_PER_THREAD tasks per worker thread, so every worker gets
#: some).
MIN_PATCHES_PER_TASK = 32
TASKS_PER_THREAD = 2

#: Threads reading windows ahead of the model in a task: one keeps a CPU worker's model fed (a reader does 900-1 350
#: patches/s, docs/benchmarks.md); a GPU runs thousands of patches a second, so it gets more.
READERS_CPU, READERS_GPU = 1, 4

#: The model each worker process holds: {ModelSpec: (model, input spec, device)} (one at a time)...
_MODELS: dict = {}
#: ...and, on a GPU, the largest batch found for it (searched by the first task only).
_GPU_BATCHES: dict = {}


@dataclass(frozen=True)
class ModelSpec:
    """What a worker loads: the resolved model ``name`` (hub id or folder), whether it is a ``local`` folder,
    the client's ``fingerprint`` of its weights (None: not known), the resolved ``precision``, whether to use a
    GPU, and the embedding size ``dim``."""

    name: str
    local: bool
    fingerprint: Optional[str]
    precision: str
    use_gpu: bool
    dim: int


@dataclass(frozen=True)
class EmbeddingTask:
    """``windows`` (image path, row_off, col_off, patch_size) and their cache ``keys``; how pixels are read
    (``bands``, ``stretch``); the model; ``batch_size``; ``identity`` (the cache's model column),
    ``cache_folder`` (a partitioned cache the task writes its part to, or None) and ``states`` (the images' file
    states the client took before any pixel was read, stored with the vectors in that part; None: not
    recorded)."""

    model: ModelSpec
    windows: tuple
    keys: tuple
    bands: tuple
    stretch: object
    batch_size: int
    identity: str
    cache_folder: Optional[str] = None
    states: Optional[tuple] = None

    def describe_chunk(self) -> str:
        first = self.windows[0]
        return _("{n} patches from '{image}' (first window at row {row}, column {col})").format(
            n=len(self.windows), image=first[0], row=first[1], col=first[2])


def patches_per_task(n: int, threads: int) -> int:
    """Patches a task for ``n`` patches on ``threads`` worker threads: :data:`PATCHES_PER_TASK`, or fewer so that
    each thread gets about :data:`TASKS_PER_THREAD` tasks, but not below :data:`MIN_PATCHES_PER_TASK`."""
    spread = -(-int(n) // max(1, TASKS_PER_THREAD * int(threads)))
    return max(1, min(PATCHES_PER_TASK, max(MIN_PATCHES_PER_TASK, spread)))


def plan_tasks(windows, keys, model: ModelSpec, bands, stretch, batch_size: int, identity: str,
               cache_folder: Optional[str] = None, per_task: Optional[int] = None, states=None) -> list:
    """The :class:`EmbeddingTask` list of ``windows`` (already in image order), their ``keys`` and their images'
    file ``states`` (or None), ``per_task`` (default :data:`PATCHES_PER_TASK`) to a task."""
    per_task = max(1, int(per_task or PATCHES_PER_TASK))
    return [EmbeddingTask(model, tuple(windows[i:i + per_task]), tuple(keys[i:i + per_task]), tuple(bands),
                          stretch, int(batch_size), identity, cache_folder,
                          None if states is None else tuple(states[i:i + per_task]))
            for i in range(0, len(windows), per_task)]


def worker_model(spec: ModelSpec):
    """(model, input spec, device) of ``spec`` in this process, loaded on first use and kept.

    A local folder whose weights differ from the client's (another copy on this worker) is refused: its
    vectors would be cached under the client's weights."""
    if spec in _MODELS:
        return _MODELS[spec]
    from .embeddings import load_model, model_fingerprint, quantized_int8

    forget_models()  # one model per worker: the last run's is not needed any more
    if spec.local:
        if not os.path.isdir(spec.name):
            raise BalancedSamplingError(
                _("The model folder '{folder}' does not exist on the Dask worker {worker}. Workers must see the "
                  "model at the same path as this machine (a shared folder).").format(
                    folder=spec.name, worker=_worker_name()))
        if spec.fingerprint is not None and model_fingerprint(spec.name, True) != spec.fingerprint:
            raise BalancedSamplingError(
                _("The model folder '{folder}' on the Dask worker {worker} holds other weights than on this machine; "
                  "copy the same model there (the embedding cache records which weights made each "
                  "vector).").format(folder=spec.name, worker=_worker_name()))
    device = _worker_device(spec)
    revision = None if spec.local else spec.fingerprint
    model, input_spec = load_model(spec.name, spec.local, device, revision=revision)
    if spec.precision == "int8":
        model = quantized_int8(model)
    _MODELS[spec] = (model, input_spec, device)
    return _MODELS[spec]


def forget_models() -> None:
    """Drop the models this process holds (the worker setup's teardown)."""
    _MODELS.clear()
    _GPU_BATCHES.clear()


def _worker_device(spec: ModelSpec) -> str:
    from .embeddings import _planned_device

    # int8 (quantised Linear layers) runs on the CPU only.
    return _planned_device(spec.use_gpu and spec.precision != "int8")


def _worker_name() -> str:
    try:
        import distributed

        return str(distributed.get_worker().address)
    except (ImportError, ValueError):
        return _("(this process)")


def _worker_threads() -> object:
    """torch threads for a task: the worker's own thread count on a Dask worker (so N workers on one machine do
    not each take every core), every usable core elsewhere."""
    try:
        import distributed

        return int(distributed.get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return "all"


def run_embedding_task(task: EmbeddingTask, stop) -> np.ndarray:
    """(len(task.windows), dim) float32 embeddings of one task; writes them as a part of a partitioned cache
    first when the task names one. Module level: the executor pickles it to the workers."""
    from .embeddings import _embed, _embed_on, gpu_batch_size
    from .patch_images import PatchReader

    spec = task.model
    model, input_spec, device = worker_model(spec)
    progress = Progress(is_canceled=stop)
    with PatchReader(task.bands, task.stretch) as reader:
        if device == "cpu":
            vectors = _embed(model, input_spec, device, reader, list(task.windows), spec.dim, task.batch_size,
                             READERS_CPU, progress, None, None, task.identity, spec.precision, _worker_threads())
        else:
            if spec not in _GPU_BATCHES:
                shape = input_spec(reader.read(*task.windows[0])).shape
                _GPU_BATCHES[spec] = gpu_batch_size(model, shape, device, spec.precision, task.batch_size)
            vectors = _embed_on(model, input_spec, device, reader, list(task.windows), spec.dim, _GPU_BATCHES[spec],
                                READERS_GPU, progress, None, None, task.identity, spec.precision, None)
    if task.cache_folder is not None:
        tag = hashlib.blake2b("\0".join(task.keys).encode(), digest_size=6).hexdigest()
        write_part(task.cache_folder, cache_rows(task.keys, task.identity, vectors, task.states), tag=tag)
    return vectors
