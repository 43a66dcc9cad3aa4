"""DINOv2 CLS embeddings of patch windows, with the parquet cache.

Only patches missing from the cache (by patch key, model AND the image file's state: its size and
modification time, see :mod:`.embedding_cache`) are computed. Windows are
read by a thread pool (rasterio releases the GIL) a few batches ahead of the model, so
the model does not wait on disk; threads rather than processes because QGIS cannot
safely fork or spawn its own interpreter.

On a cancel or an error the embeddings computed so far are added to the cache (atomic
rewrite) before the exception propagates, so a re-run resumes where this one stopped. Long
runs also checkpoint the cache every :data:`CHECKPOINT_SECONDS`, so that even a crash of
QGIS itself (or a killed process) loses at most that much work.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .contract import PRECISIONS
from .embedding_cache import EmbeddingCache, image_states, with_digests
from .embedding_tasks import (
    ModelSpec,
    forget_models,
    patches_per_task,
    plan_tasks,
    run_embedding_task,
    worker_model,
)
from .errors import BalancedSamplingError, OperationCanceled, require
from .i18n import N_, _
from .patch_images import PatchReader, Stretch, check_windows, estimate_stretch
from .progress import Progress, as_progress
from .records import (
    COL_OFF,
    IMAGE_PATH,
    PATCH_SIZE,
    ROW_OFF,
    describe_patch,
    normalize_path,
    patch_ids,
    validate_records,
)

SHORT_NAMES = {
    "dinov2-small": "facebook/dinov2-small",
    "dinov2-base": "facebook/dinov2-base",
    "dinov2-large": "facebook/dinov2-large",
}
#: Batches read ahead of the model.
PREFETCH_BATCHES = 2
#: Seconds a CPU forward pass may take between two looks at the cancel flag; the batch is run in
#: chunks sized from the measured time per patch (the first chunk holds FIRST_CPU_CHUNK patches).
CANCEL_LATENCY = 1.0
FIRST_CPU_CHUNK = 4
#: Seconds between cache checkpoints while embedding (each rewrites the parquet file: a few
#: seconds at 155k x 768 floats, so ~1 % of a long CPU run).
CHECKPOINT_SECONDS = 300

#: Largest share of the available memory the embeddings of a run may take in memory; beyond, a memory map
#: (:func:`vector_store`).
VECTORS_MEMORY_SHARE = 0.25

#: Seconds between two looks at how many cores other processes keep busy (threads="auto", CPU).
THREADS_RECHECK_SECONDS = 5.0


def prefer_passive_openmp() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` while torch is not imported yet and the user has not chosen one.

    OpenMP threads that spin while waiting for work steal the cores a busy neighbour process needs, and the
    spinning threads are then descheduled at every barrier of the forward pass (the demo ran 7x slower beside
    busy processes). Passive threads sleep instead; on an idle machine this costs nothing measurable
    (docs/benchmarks.md). ``BALANCED_SAMPLING_OMP_WAIT=keep`` leaves OpenMP's default (for benchmarks).
    Returns whether the variable was set now.
    """
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return False
    if os.environ.get("BALANCED_SAMPLING_OMP_WAIT", "").lower() == "keep":
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


prefer_passive_openmp()


#: Where a container's CPU quota is written: cgroup v2 "quota period" (or "max"), cgroup v1 quota and period.
CGROUP_CPU_FILES = ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                    "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _cgroup_cpu_limit() -> float | None:
    """Cores a CPU quota (``docker --cpus``, Kubernetes limits) allows this process, or None without a quota."""
    v2, v1_quota, v1_period = CGROUP_CPU_FILES
    try:
        with open(v2) as handle:
            quota, period = (handle.read().split() + ["100000"])[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open(v1_quota) as quota_file, open(v1_period) as period_file:
            quota, period = int(quota_file.read()), int(period_file.read())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity (e.g. a container's cpuset), capped by a CPU quota
    (rounded up), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, int(np.ceil(limit)))
    return max(1, cores)


def _own_running_threads() -> int:
    count = 0
    try:
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat") as handle:
                    # "pid (comm) S ...": the state follows the last ')'.
                    if handle.read().rsplit(")", 1)[1].split()[0] == "R":
                        count += 1
            except (OSError, IndexError):
                continue
    except OSError:
        return 0
    return count


def busy_elsewhere(samples: int = 5, interval: float = 0.002) -> float:
    """How many cores other processes keep busy now: runnable tasks of the whole system (``/proc/loadavg``)
    minus this process's own, median of ``samples`` looks; where /proc is missing, the 1-minute load average
    (which includes this process's own recent work), else 0."""
    looks = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as handle:
                running = int(handle.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            looks = []
            break
        looks.append(max(0, running - _own_running_threads()))
        if i + 1 < samples:
            time.sleep(interval)
    if looks:
        # /proc/loadavg counts the whole machine's runnable tasks; a process that may use only part of the machine
        # (cpuset, quota) takes its part of them, as if the others were spread evenly over all cores.
        share = min(1.0, usable_cores() / max(1, os.cpu_count() or 1))
        return float(np.median(looks)) * share
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def cpu_threads(threads="auto") -> int:
    """torch threads for a CPU forward pass: ``"auto"`` = the cores other processes leave free while some are
    free, and every usable core once none is; ``"all"`` = every usable core; or a positive number as given.

    Why (docs/benchmarks.md, contention): the collapse beside busy processes came from OpenMP threads spinning
    (see :func:`prefer_passive_openmp`). With passive waiting, a thread on a core shared with a busy process
    still stalls the others at every barrier, so while some cores are free the model keeps to them; once every
    core is busy, the scheduler shares the CPU out per thread and fewer threads would only shrink the model's
    part (measured on 2 cores beside 2 busy processes: 1 thread half the speed of 2). On the shared 2-core
    benchmark machine ``"auto"`` was not better than ``"all"`` (which the engine uses by default), so it is an
    option for a machine where the model should leave free cores to others.
    """
    cores = usable_cores()
    if threads == "all":
        return cores
    if threads == "auto":
        free = cores - int(round(busy_elsewhere()))
        return int(min(cores, free)) if free >= 1 else cores
    value = int(threads)
    if value < 1:
        raise BalancedSamplingError(_("The number of CPU threads must be at least 1; got {value}.").format(
            value=threads))
    return value


class CpuThreads:
    """Holds torch's intra-op thread count at :func:`cpu_threads` during a CPU run, re-checked every
    :data:`THREADS_RECHECK_SECONDS` under ``"auto"``, and gives the old count back at the end."""

    def __init__(self, threads="all", progress: Progress | None = None, clock=time.monotonic):
        self.threads, self.progress, self.clock = threads, as_progress(progress), clock
        self.current = None
        self._checked = None
        self._previous = None

    def __enter__(self):
        torch = require("torch", _("DINOv2 embeddings"))
        self._previous = torch.get_num_threads()
        self._apply(cpu_threads(self.threads))
        self.progress.info(_("Using {n} CPU threads for the model ({cores} cores usable).").format(
            n=self.current, cores=usable_cores()))
        return self

    def recheck(self) -> None:
        if self.threads == "auto" and self.clock() - self._checked >= THREADS_RECHECK_SECONDS:
            self._apply(cpu_threads("auto"))

    def _apply(self, n: int) -> None:
        torch = require("torch", _("DINOv2 embeddings"))
        self._checked = self.clock()
        if n != self.current:
            torch.set_num_threads(n)
            self.current = n

    def __exit__(self, *exc):
        torch = require("torch", _("DINOv2 embeddings"))
        torch.set_num_threads(self._previous)


# Translated where shown: _(OFFLINE_HELP).
OFFLINE_HELP = N_(
    "Without internet access, save the model on a machine that has it, e.g.\n"
    "  python -c \"from transformers import AutoModel, AutoImageProcessor; m = 'facebook/dinov2-base'; "
    "AutoModel.from_pretrained(m).save_pretrained('dinov2-base'); "
    "AutoImageProcessor.from_pretrained(m).save_pretrained('dinov2-base')\"\n"
    "then copy the folder 'dinov2-base' to this machine and give the folder's path as the model."
)


@dataclass
class EmbeddingResult:
    """Embeddings aligned to the rows of the record table.

    ``computed`` and ``reused`` count distinct patches (rows sharing a patch key share one embedding);
    ``device`` is None when everything came from the cache and no model ran, "cluster" when Dask workers ran it.
    ``unique_embeddings`` may be a memory map (see :func:`vector_store`).
    """

    computed: int
    reused: int
    model_name: str
    device: str | None
    unique_embeddings: np.ndarray  # (n_distinct, d) float32: one row per distinct patch
    row_to_unique: np.ndarray  # (n_rows,) int: the distinct patch of each row

    @property
    def embeddings(self) -> np.ndarray:
        """(n_rows, d) float32, one row per record row (a copy: ``unique_embeddings[row_to_unique]``)."""
        return self.unique_embeddings[self.row_to_unique]


def resolve_model_name(dino_model: str) -> tuple[str, bool]:
    """(name to load, is a local folder) for a short name, hub id or local folder.

    Short names ``dinov2-small|base|large`` map to ``facebook/dinov2-*``; an existing
    folder becomes its absolute normalised path; a path-like name that does not exist
    raises.
    """
    name = str(dino_model).strip()
    if not name:
        raise BalancedSamplingError(
            _("No DINOv2 model given; use e.g. 'dinov2-base' or the folder of a saved model."))
    if name in SHORT_NAMES:
        return SHORT_NAMES[name], False
    if os.path.isdir(os.path.expanduser(name)):
        return normalize_path(name), True
    # Hub ids are 'name' or 'owner/name'; anything else is meant as a folder.
    if os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1:
        raise BalancedSamplingError(
            _("The model folder '{folder}' does not exist.").format(folder=name) + "\n" + _(OFFLINE_HELP))
    return name, False


def _load_failed(name: str, exc: Exception) -> BalancedSamplingError:
    return BalancedSamplingError(
        _("Cannot load the DINOv2 model '{model}': {error}").format(model=name, error=exc) + "\n" + _(OFFLINE_HELP))


def model_dimension(name: str, local: bool) -> int:
    """Embedding size (``hidden_size``) from the model's config, without loading the weights."""
    transformers = require("transformers", _("DINOv2 embeddings"))
    try:
        return int(transformers.AutoConfig.from_pretrained(name, local_files_only=local).hidden_size)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for a bad model
        raise _load_failed(name, exc) from exc


def load_model(name: str, local: bool, device: str, revision: str | None = None):
    """(model in eval mode on ``device``, :class:`InputSpec` from its image processor).

    ``revision`` pins a hub model to the snapshot the cache key was made from, so a newer upload
    is never computed under an older key.
    """
    transformers = require("transformers", _("DINOv2 embeddings"))
    # Its "Loading weights" bars would land in the algorithm log (and a Dask worker's in the client's).
    transformers.utils.logging.disable_progress_bar()
    pinned = {} if local or not revision else {"revision": revision}
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(name, local_files_only=local, **pinned)
        model = transformers.AutoModel.from_pretrained(name, local_files_only=local, **pinned)
    except Exception as exc:  # see model_dimension
        raise _load_failed(name, exc) from exc
    return model.to(device).eval(), InputSpec.from_processor(processor)


def pick_device(use_gpu: bool, progress: Progress) -> str:
    """'cuda' when asked for and available, else 'cpu'; says which in the log."""
    torch = require("torch", _("DINOv2 embeddings"))
    if use_gpu and torch.cuda.is_available():
        progress.info(_("Computing embeddings on the GPU ({gpu}).").format(gpu=torch.cuda.get_device_name(0)))
        return "cuda"
    progress.info(
        _("No CUDA GPU is available to PyTorch; computing embeddings on the CPU.")
        if use_gpu
        else _("Computing embeddings on the CPU.")
    )
    return "cpu"


@dataclass(frozen=True)
class InputSpec:
    """The image processor's resize / center crop / rescale / normalise, replayed in torch.

    ``resize`` is ``{"shortest_edge": s}`` or ``{"height": h, "width": w}`` (or None),
    ``crop`` is (height, width) or None; ``mean``/``std`` are per channel after rescale.
    """

    resize: dict | None
    crop: tuple[int, int] | None
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_processor(cls, processor) -> "InputSpec":
        size = dict(processor.size) if getattr(processor, "do_resize", False) else None
        if size is not None and "shortest_edge" not in size and not {"height", "width"} <= set(size):
            raise BalancedSamplingError(
                _("Unsupported image-processor size setting {size}; expected shortest_edge or height and width.")
                .format(size=size)
            )
        crop = None
        if getattr(processor, "do_center_crop", False):
            crop_size = dict(processor.crop_size)
            crop = (int(crop_size["height"]), int(crop_size["width"]))
        normalize = getattr(processor, "do_normalize", False)
        return cls(
            resize=size,
            crop=crop,
            scale=float(processor.rescale_factor) if getattr(processor, "do_rescale", False) else 1.0,
            mean=tuple(float(v) for v in processor.image_mean) if normalize else (0.0, 0.0, 0.0),
            std=tuple(float(v) for v in processor.image_std) if normalize else (1.0, 1.0, 1.0),
        )

    def _resized_shape(self, height: int, width: int) -> tuple[int, int]:
        if "shortest_edge" in self.resize:
            short = int(self.resize["shortest_edge"])
            if height <= width:
                return short, int(short * width / height)
            return int(short * height / width), short
        return int(self.resize["height"]), int(self.resize["width"])

    def __call__(self, image: np.ndarray):
        """(3, H, W) float 0..255 numpy image -> (3, h, w) float32 model-input tensor.

        Runs in the reader threads: crop and normalisation are numpy, and torch (its thread pool) is used only
        for a resize that changes the size, so the readers never compete with the model's threads for
        intra-op parallelism on tiny operations (which cost 4-10x under contention).
        """
        torch = require("torch", _("DINOv2 embeddings"))
        image = np.ascontiguousarray(image, dtype=np.float32)
        if self.resize is not None and self._resized_shape(*image.shape[-2:]) != tuple(image.shape[-2:]):
            # (A resize to the same size is the identity: bicubic samples fall on the pixels. Skipped.)
            shape = self._resized_shape(*image.shape[-2:])
            tensor = torch.nn.functional.interpolate(torch.from_numpy(image)[None], size=shape, mode="bicubic",
                                                     antialias=True)
            image = tensor.clamp(0.0, 255.0)[0].numpy()  # bicubic overshoots
        if self.crop is not None:
            height, width = image.shape[-2:]
            top, left = max(0, (height - self.crop[0]) // 2), max(0, (width - self.crop[1]) // 2)
            image = image[..., top : top + self.crop[0], left : left + self.crop[1]]
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return torch.from_numpy(np.ascontiguousarray((image * np.float32(self.scale) - mean) / std))


def _batches(windows, load, batch_size: int, num_workers: int, pin: bool = False):
    """Yield stacked model inputs for consecutive ``batch_size`` slices of ``windows``.

    ``num_workers`` threads run ``load(window)`` up to :data:`PREFETCH_BATCHES` batches
    ahead; 0 loads in the calling thread. ``pin``: batches in page-locked memory, so the copy
    to the GPU runs asynchronously (``non_blocking``).
    """
    torch = require("torch", _("DINOv2 embeddings"))
    if pin:
        with closing(_batches(windows, load, batch_size, num_workers)) as batches:
            for batch in batches:
                yield batch.pin_memory()
        return
    slices = [windows[i : i + batch_size] for i in range(0, len(windows), batch_size)]
    if num_workers <= 0:
        for part in slices:
            yield torch.stack([load(w) for w in part])
        return
    pool = ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="patch-reader")
    try:
        pending = deque()
        for part in slices:
            pending.append([pool.submit(load, w) for w in part])
            if len(pending) > PREFETCH_BATCHES:
                yield torch.stack([f.result() for f in pending.popleft()])
        while pending:
            yield torch.stack([f.result() for f in pending.popleft()])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


#: Numeric precisions of the forward pass (docs/benchmarks.md, "DINOv2 on the CPU (issue 16)").


def quantized_int8(model):
    """A copy of ``model`` whose Linear layers run int8 dynamic quantisation (weights int8, activations
    quantised per batch); CPU only. The patch-embedding convolution, norms and attention stay float32."""
    torch = require("torch", _("DINOv2 embeddings"))
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu(), {torch.nn.Linear},
                                                      dtype=torch.qint8)


#: Autocast dtype of each precision that runs under autocast (int8 runs a quantised copy of the model instead).
AUTOCAST = {"bf16": "bfloat16", "fp16": "float16"}
#: On a GPU the batch grows by doubling from the batch size asked for up to this many patches, while it fits
#: (a cap: with PREFETCH_BATCHES read ahead, 256 patches of 224 px hold ~0.6 GB of host memory as float32).
GPU_MAX_BATCH = 256


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16 in /proc/cpuinfo's flags). Without
    it bf16 autocast is emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: str) -> str:
    """The precision a run uses on ``device``: ``auto`` becomes bf16 on a CPU with native bfloat16 (else fp32)
    and bf16 on a GPU that has it (else fp16); int8 runs on the CPU only."""
    if precision == "auto":
        if device == "cpu":
            return "bf16" if cpu_has_bf16() else "fp32"
        torch = require("torch", _("DINOv2 embeddings"))
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "int8" and device != "cpu":
        raise BalancedSamplingError(_("The int8 precision runs on the CPU only; on the GPU choose {choices}.").format(
            choices="bf16, fp16, auto"))
    return precision


def cls_embeddings(model, batch, device: str, precision: str = "fp32") -> np.ndarray:
    """(b, d) float32 CLS embeddings of a (b, 3, h, w) model-input batch; ``precision`` in :data:`PRECISIONS`
    (resolved: not ``auto``; for int8 ``model`` is the :func:`quantized_int8` copy)."""
    import contextlib

    torch = require("torch", _("DINOv2 embeddings"))
    autocast = (torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, AUTOCAST[precision]))
                if precision in AUTOCAST else contextlib.nullcontext())
    with torch.inference_mode(), autocast:
        # DINOv2's CLS token: first token of the (layer-normed) last hidden state.
        pixels = batch.to(device, non_blocking=True)
        return model(pixel_values=pixels).last_hidden_state[:, 0].float().cpu().numpy()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the GPU ran out of memory (torch.cuda.OutOfMemoryError, or a RuntimeError that
    says so: older torch)."""
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def find_batch_size(fits, start: int, maximum: int = GPU_MAX_BATCH, on_oom=None) -> int:
    """The largest batch that fits, found by trying: ``fits(n)`` runs a batch of ``n`` patches and raises an
    out-of-memory error (:func:`is_out_of_memory`) when it does not fit. From ``start`` the size doubles while
    it fits, up to ``maximum``; if ``start`` does not fit it halves until one does (``on_oom()`` runs after
    each failure, e.g. ``torch.cuda.empty_cache``). Raises the last error when even 1 patch does not fit."""
    size, best = max(1, int(start)), 0
    maximum = max(size, int(maximum))
    while True:
        try:
            fits(size)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            if on_oom is not None:
                on_oom()
            if best:  # a smaller size fitted already: that is the largest
                return best
            if size == 1:
                raise
            size //= 2
            continue
        best = size
        if size >= maximum:
            return best
        if best < start:  # found by halving: doubling again would only fail again
            return best
        size = min(maximum, size * 2)


#: Files of a model folder that shape its embeddings: configs (model, image processor) and weights.
#: Anything else (a README, training checkpoints in sub-folders) is left out of the fingerprint.
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".pth", ".msgpack", ".h5", ".onnx")
_FILE_DIGESTS: dict = {}


def _file_digest(path: str) -> str:
    """blake2b of a file's bytes, remembered per (path, size, mtime, inode) for the process's lifetime."""
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _FILE_DIGESTS:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _FILE_DIGESTS[key] = digest.hexdigest()
    return _FILE_DIGESTS[key]


def model_fingerprint(name: str, local: bool) -> str | None:
    """What identifies the model's weights and image processor, for the embedding cache key.

    A local folder: a digest of every file in it (names and bytes; ~0.5 s per GB, once per
    process), so weights replaced inside the same folder never reuse old embeddings. A hub
    id: the revision (commit) of the snapshot in the local Hugging Face cache. None when
    it cannot be told (a hub model not cached yet): then no cached embedding is trusted.
    """
    if local:
        digest = hashlib.blake2b(digest_size=12)
        for file in sorted(os.listdir(name)):  # save_pretrained writes its files at the top level
            path = os.path.join(name, file)
            if file.lower().endswith(MODEL_FILE_SUFFIXES) and not file.startswith(".") and os.path.isfile(path):
                digest.update(f"{file}\0{_file_digest(path)}\0".encode())
        return digest.hexdigest()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(name, "config.json")
    if not isinstance(cached, str):
        return None
    return os.path.basename(os.path.dirname(cached))  # .../snapshots/<commit>/config.json


#: The percentiles of the dataset-wide stretch unless told otherwise.
DEFAULT_STRETCH = (2, 98)


def cache_identity(model_name: str, fingerprint: str, bands, stretch, values=None, precision: str = "fp32") -> str:
    """What an embedding depends on besides the patch: the model's weights and how pixels reach it.

    Stored in the cache's ``model`` column, so changing the weights, the bands, the stretch
    percentiles or the stretch values estimated from them (non-uint8 imagery) never reuses
    embeddings made from other inputs. ``values`` is the :class:`~.patch_images.Stretch`
    applied, or None for uint8 imagery.
    """
    kind = stretch if isinstance(stretch, str) else f"{stretch[0]:g}-{stretch[1]:g}"  # "fixed": given values
    identity = f"{model_name}|weights={fingerprint}|bands={','.join(str(int(b)) for b in bands)}|stretch={kind}"
    if values is not None:
        raw = np.concatenate([values.low, values.high]).astype("<f8").tobytes()
        identity += f"@{hashlib.blake2b(raw, digest_size=8).hexdigest()}"
    return identity + ("" if precision == "fp32" else f"|{precision}")


def extract_embeddings(records: pd.DataFrame, dino_model: str = "dinov2-base", batch_size: int = 32,
                       num_workers: int = 2, use_gpu: bool = False, parquet_path=None, bands=(1, 2, 3),
                       stretch=(2, 98), progress: Progress | None = None,
                       precision: str = "auto", threads="all", executor=None) -> EmbeddingResult:
    """DINOv2 CLS embeddings of every patch of ``records``, reusing and updating the cache.

    Parameters
    ----------
    records : DataFrame with ``image_path, row_off, col_off, patch_size`` (pixels).
    dino_model : ``dinov2-small|base|large``, a hub id, or a folder saved with ``save_pretrained``.
    batch_size, num_workers : patches per forward pass; threads reading windows (0 = none).
    use_gpu : use CUDA when available (else CPU, said in the log).
    parquet_path : embedding cache file (see :mod:`.embedding_cache`), or None.
    bands : 3 raster bands (1-based) for images with more than one band.
    stretch : (low, high) percentiles of the dataset-wide stretch of non-uint8 imagery, estimated from the patches;
        or a :class:`~.patch_images.Stretch` of fixed values (:func:`~.patch_images.stretch_from_text`), which
        stays the same when the patch list grows, so cached embeddings stay usable.
    progress : updated per batch; cancel raises ``OperationCanceled`` within one batch.
    precision : ``fp32``; ``bf16`` or ``fp16`` autocast; ``int8`` dynamic quantisation of the Linear layers
        (CPU only); ``auto`` = bf16 where the CPU/GPU has native bfloat16, else fp32 (CPU) or fp16 (GPU). Each
        precision is cached apart (``auto`` under the one it resolves to); see docs/benchmarks.md for speed and
        agreement with fp32.
    threads : torch threads on the CPU: ``"all"`` usable cores (the default: with OpenMP's passive waiting it
        keeps running beside busy processes, and fewer threads were not consistently faster, docs/benchmarks.md),
        ``"auto"`` (the cores other processes leave
        free, re-checked while running) or a number (see :func:`cpu_threads`).
    executor : a :class:`~balanced_sampling_plugin.compute.Executor` on a Dask cluster, to compute the missing
        patches on its workers (:mod:`.embedding_tasks`: the model loads once per worker, on its GPU when
        ``use_gpu`` and it has one; the workers must see the images and a model folder at the same paths); None
        or an in-process executor: here. Same embeddings either way.

    Every window is checked against its image (inside it, bands present) before the model loads.
    """
    progress = as_progress(progress)
    if precision not in PRECISIONS:
        raise BalancedSamplingError(_("Unknown precision {value}; choose one of {choices}.").format(
            value=repr(precision), choices=", ".join(PRECISIONS)))
    if int(batch_size) < 1:
        raise BalancedSamplingError(_("The batch size must be at least 1; got {value}.").format(value=batch_size))
    if threads not in ("auto", "all"):
        cpu_threads(threads)  # a bad count fails before the model loads
    asked = precision
    precision = resolve_precision(precision, _planned_device(use_gpu))  # before the cache key is made from it
    table = validate_records(records, required=(IMAGE_PATH, ROW_OFF, COL_OFF, PATCH_SIZE))
    keys = patch_ids(table).to_numpy()
    unique_keys, first_row, row_to_unique = np.unique(keys, return_index=True, return_inverse=True)
    firsts = table.iloc[first_row]
    windows = list(zip([normalize_path(p) for p in firsts[IMAGE_PATH]], firsts[ROW_OFF].tolist(),
                       firsts[COL_OFF].tolist(), firsts[PATCH_SIZE].tolist()))
    name, local = resolve_model_name(dino_model)
    dim = model_dimension(name, local)
    cache = EmbeddingCache(parquet_path, progress) if parquet_path else None
    if cache is not None and cache.read_only:
        progress.info(_("The embedding cache '{path}' is read-only: its embeddings are reused, and those this run "
                        "computes are not stored in it.").format(path=cache.path))
    # Each image's file state (size, modification time) now, before any pixel is read: a cached vector is reused
    # only for the same state, and a new one is stored with it (an image changed during the run is recomputed next
    # time). One stat per image.
    image_paths = np.asarray([window[0] for window in windows], dtype=object)
    states = image_states(image_paths) if cache else None

    with PatchReader(bands) as reader:
        by_image = sorted(range(len(windows)), key=windows.__getitem__)
        # Opening every image first takes minutes for thousands of them (network storage): cancel is checked.
        opening = progress.child(0.0, 0.0)
        check_windows(reader, [windows[i] for i in by_image],
                      lambda i: describe_patch(table, firsts.index[by_image[i]]), opening)
        if windows:
            first = windows[by_image[0]][0]
            count = reader.dataset(first).count
            if count == 1:
                progress.info(_("Model input: the single band of the images, repeated in the three channels."))
            else:
                progress.info(_("Model input: bands {bands} of the images as red, green, blue ('{path}' has {count} "
                                "bands; set the bands to choose others).").format(
                                    bands=",".join(map(str, bands)), path=os.path.basename(first), count=count))
        fixed = isinstance(stretch, Stretch)
        reader.stretch = estimate_stretch(reader, sorted(windows), stretch, progress=opening)  # fixed: as given
        if reader.stretch is not None:
            low, high = (np.round(v, 3).tolist() for v in (reader.stretch.low, reader.stretch.high))
            if fixed:
                progress.info(_("Non-uint8 imagery stretched to 0-255 with the given values: {low} to {high}.")
                              .format(low=low, high=high))
            else:
                progress.info(_("Non-uint8 imagery stretched to 0-255 (percentiles {percentiles}): {low} to {high}.")
                              .format(percentiles=stretch, low=low, high=high))
        fingerprint = model_fingerprint(name, local) if cache else None
        # Fixed values on 8-bit imagery stretch nothing: keyed like the default, so those embeddings are shared.
        label = ("fixed" if reader.stretch is not None else DEFAULT_STRETCH) if fixed else stretch
        identity = cache_identity(name, fingerprint, bands, label, reader.stretch, precision)
        vectors = vector_store(len(unique_keys), dim, cache.path if cache and not cache.read_only else None, progress)
        if cache and fingerprint is None:
            progress.warning(_("Cannot tell which revision of '{model}' is loaded, so no cached embedding is "
                               "reused.").format(model=name))
            found = np.zeros(len(unique_keys), bool)
        elif cache:
            found = cache.lookup_into(unique_keys, identity, vectors, states, image_paths)
            if cache.outdated.any():  # same bytes, new file time: stored again with it, so the next run reads nothing
                cache.save(unique_keys[cache.outdated], identity, vectors[cache.outdated],
                           with_digests(states[cache.outdated], image_paths[cache.outdated]))
        else:
            found = np.zeros(len(unique_keys), bool)
        # Image order lets each reader thread reuse its open dataset.
        todo = sorted(np.flatnonzero(~found), key=windows.__getitem__)
        if cache and todo and reader.stretch is not None:
            _say_if_the_stretch_moved(cache, unique_keys[todo], identity, reader.stretch, progress)
        if cache:
            progress.info(_("Embedding cache '{path}': {reused} of {total} patches reused, {todo} to compute.").format(
                path=cache.path, reused=int(found.sum()), total=len(unique_keys), todo=len(todo)))
            # Each image to read gets its bytes' digest stored with its vectors (read once per image): a later run
            # that finds only its time changed (a copy that does not keep times) compares it instead of recomputing.
            states[todo] = with_digests(states[todo], image_paths[todo], opening)
        device = None
        if todo and executor is not None and not executor.in_process:
            device = "cluster"
            spec = ModelSpec(name, local, fingerprint, precision, bool(use_gpu), dim)
            _embed_on_workers(executor, spec, reader, windows, np.asarray(todo, dtype=np.int64), unique_keys, vectors,
                              bands, int(batch_size), identity, cache if fingerprint else None, progress, states)
        elif todo:
            device = pick_device(use_gpu, progress)
            model, spec = load_model(name, local, device, revision=fingerprint)
            if precision == "int8":
                model = quantized_int8(model)
            if asked == "auto":
                progress.info(_("Precision auto: computing in {precision}.").format(precision=precision))
            if cache and fingerprint is None:  # a hub model fetched just now: its revision is known from here on
                fingerprint = model_fingerprint(name, local)
                identity = cache_identity(name, fingerprint or "unknown", bands, label, reader.stretch, precision)
            computed = _embed(model, spec, device, reader, [windows[i] for i in todo], dim, int(batch_size),
                              int(num_workers), progress, cache if fingerprint else None, unique_keys[todo],
                              identity, precision, threads, states[todo] if cache else None)
            vectors[todo] = computed
            if cache and fingerprint:
                cache.save(unique_keys[todo], identity, computed, states[todo])
        if device == "cluster" and cache and fingerprint and not cache.partitioned:
            cache.save(unique_keys[todo], identity, vectors[todo], states[todo])
    if cache is not None and cache.read_only and len(todo):
        progress.warning(_("{n} embeddings computed in this run were not stored: the cache '{path}' is read-only, so "
                           "a later run computes them again. Give a writable copy of the cache to keep them.").format(
            n=len(todo), path=cache.path))
    return EmbeddingResult(computed=len(todo), reused=int(found.sum()), model_name=name, device=device,
                           unique_embeddings=vectors, row_to_unique=row_to_unique)


def _say_if_the_stretch_moved(cache, keys, identity: str, stretch, progress: Progress) -> None:
    """Log why patches with cached embeddings are computed again when only the stretch values differ: they are
    estimated from the patch list, so adding patches of non-8-bit imagery moves them (a little)."""
    import re

    def without_values(text: str) -> str:
        return re.sub(r"@[0-9a-f]+", "", text)

    if any(other != identity and without_values(other) == without_values(identity)
           for other in cache.models_for(keys)):
        low, high = (np.round(v, 3).tolist() for v in (stretch.low, stretch.high))
        progress.info(_("Cached embeddings of these patches were computed with other stretch values: the stretch of "
                        "non-8-bit imagery is estimated from the patch list, which changed, and is now {low} to "
                        "{high}. They are computed again, so that every vector saw the same stretch.").format(
                            low=low, high=high))


def _embed_on_workers(executor, spec, reader, windows, rows, keys, into, bands, batch_size, identity, cache,
                      progress, states=None) -> None:
    """Compute the embeddings of ``windows[rows]`` in tasks on ``executor``'s workers (:mod:`.embedding_tasks`),
    written into ``into[rows]`` as they arrive (``into`` may be a memory map: nothing else holds them).

    A partitioned ``cache`` gets each finished task's part from the worker; a single-file one is checkpointed here
    as results arrive, saved at the end by the caller, and on an error or a cancel with what came back so far.
    ``states`` (aligned with ``keys``): the images' file states taken by the client, stored with the vectors
    (the tasks carry them to the parts the workers write)."""
    import functools

    folder = cache.path if cache is not None and cache.partitioned and not cache.read_only else None
    per_task = patches_per_task(len(rows), executor.worker_threads())
    tasks = plan_tasks([windows[i] for i in rows], keys[rows], spec, bands, reader.stretch, batch_size, identity,
                       folder, per_task, None if states is None else states[rows])
    starts = np.cumsum([0] + [len(task.windows) for task in tasks])
    arrived = np.zeros(len(rows), dtype=bool)
    last_checkpoint = [time.monotonic()]

    def keep(i, vectors):
        if vectors.shape != (starts[i + 1] - starts[i], spec.dim):
            raise BalancedSamplingError(_("The model gives {given}-d embeddings, not {expected}.").format(
                given=vectors.shape[-1], expected=spec.dim))
        into[rows[starts[i]:starts[i + 1]]] = vectors
        arrived[starts[i]:starts[i + 1]] = True
        # A single-file cache is checkpointed as in-process, so a crash of this process loses little.
        if folder is None and cache is not None and time.monotonic() - last_checkpoint[0] >= CHECKPOINT_SECONDS:
            _checkpoint(cache, keys[rows[arrived]], identity, into[rows[arrived]], progress,
                        None if states is None else states[rows[arrived]])
            last_checkpoint[0] = time.monotonic()

    progress.info(_("Computing {n} embeddings {where}, in {tasks} tasks; each worker loads the model once ({gpu}).")
                  .format(n=len(rows), where=executor.description, tasks=len(tasks),
                          gpu=_("on its GPU when it has one") if spec.use_gpu else _("on its CPU")))
    try:
        with executor.worker_setup("balanced-sampling-dinov2", functools.partial(worker_model, spec), forget_models):
            executor.map_chunks(run_embedding_task, tasks, progress, sizes=[len(t.windows) for t in tasks],
                                on_result=keep)
    except BaseException as exc:
        # The workers wrote a partitioned cache's parts themselves (None: nothing to save, nor to read back).
        _keep_done_and_raise(exc, cache, keys[rows[arrived]], identity,
                             into[rows[arrived]] if folder is None else None,
                             None if states is None else states[rows[arrived]])


def vector_store(n: int, dim: int, near=None, progress: Progress | None = None) -> np.ndarray:
    """(n, dim) float32 zeros for the embeddings of a run: in memory when they take at most
    :data:`VECTORS_MEMORY_SHARE` of the available memory, else a memory map in a temporary folder beside the cache
    ``near`` (or the system's temporary folder), deleted with the array. The kNN then runs out of core
    (:func:`~balanced_sampling_plugin.uniqueness.uniqueness_scores`)."""
    import shutil
    import tempfile
    import weakref

    from .uniqueness_out_of_core import available_memory_bytes

    available = available_memory_bytes()
    size = int(n) * int(dim) * 4
    if available is None or size <= VECTORS_MEMORY_SHARE * available:
        return np.zeros((n, dim), dtype=np.float32)
    base = os.path.dirname(os.path.abspath(os.fspath(near).rstrip("/\\"))) if near else None
    folder = tempfile.mkdtemp(prefix=".balanced-sampling-vectors-", dir=base if base and os.path.isdir(base) else None)
    vectors = np.lib.format.open_memmap(os.path.join(folder, "embeddings.npy"), mode="w+", dtype=np.float32,
                                        shape=(n, dim))
    weakref.finalize(vectors, shutil.rmtree, folder, True)
    as_progress(progress).info(
        _("{n} embeddings take {size:.1f} GB, more than a quarter of the {free:.1f} GB of memory available: they are "
          "kept in a temporary file in {folder} (deleted after the run).").format(
            n=n, size=size / 1e9, free=available / 1e9, folder=folder))
    return vectors


def _planned_device(use_gpu: bool) -> str:
    """'cuda' when a GPU is asked for and PyTorch sees one, else 'cpu' (quietly: :func:`pick_device` says which)."""
    if not use_gpu:
        return "cpu"
    torch = require("torch", _("DINOv2 embeddings"))
    return "cuda" if torch.cuda.is_available() else "cpu"


def _checkpoint(cache, keys, name, vectors, progress, states=None) -> None:
    """Save the embeddings done so far (``states``: their images' file states); a failure (disk full, file locked)
    only warns: the run goes on."""
    try:
        cache.save(keys, name, vectors, states)
    except OSError as exc:
        progress.warning(_("Could not checkpoint the embedding cache '{path}' ({error}); the run continues and saves "
                           "at the end.").format(path=cache.path, error=exc))


def _embed(model, spec, device, reader, windows, dim, batch_size, num_workers, progress, cache, keys, name,
           precision="fp32", threads="all", states=None):
    """(len(windows), dim) embeddings; on cancel/error the rows done so far go to the cache first,
    and every :data:`CHECKPOINT_SECONDS` during the run (with ``states``, the images' file states aligned with
    ``keys``)."""
    if device != "cpu":
        batch_size = gpu_batch_size(model, spec(reader.read(*windows[0])).shape, device, precision, batch_size,
                                    progress)
        return _embed_on(model, spec, device, reader, windows, dim, batch_size, num_workers, progress, cache, keys,
                         name, precision, None, states)
    with CpuThreads(threads, progress) as cpu:
        return _embed_on(model, spec, device, reader, windows, dim, batch_size, num_workers, progress, cache, keys,
                         name, precision, cpu, states)


def _empty_gpu_cache() -> None:
    torch = require("torch", _("DINOv2 embeddings"))
    torch.cuda.empty_cache()


def gpu_batch_size(model, shape, device, precision, start, progress=None, maximum=GPU_MAX_BATCH) -> int:
    """The largest batch of ``shape`` (3, h, w) inputs the GPU runs, by trying (:func:`find_batch_size`)."""
    torch = require("torch", _("DINOv2 embeddings"))
    progress = as_progress(progress)

    def fits(n):
        cls_embeddings(model, torch.zeros((n, *shape)), device, precision)

    size = find_batch_size(fits, start, maximum, on_oom=torch.cuda.empty_cache)
    progress.info(_("Batches of {n} patches fit on the GPU.").format(n=size))
    return size


def _embed_on(model, spec, device, reader, windows, dim, batch_size, num_workers, progress, cache, keys, name,
              precision, cpu, states=None):
    out = np.zeros((len(windows), dim), dtype=np.float32)
    done = 0
    last_checkpoint = time.monotonic()
    # On the CPU a forward pass of a whole batch can take tens of seconds (dinov2-base, a busy machine):
    # run it in chunks short enough that cancel is seen within about CANCEL_LATENCY seconds.
    chunk = batch_size if device != "cpu" else min(batch_size, FIRST_CPU_CHUNK)
    try:
        pin = device != "cpu"
        with closing(_batches(windows, lambda w: spec(reader.read(*w)), batch_size, num_workers, pin)) as batches:
            for batch in batches:
                if cpu is not None:
                    cpu.recheck()
                start = 0
                while start < len(batch):
                    began = time.monotonic()
                    part = batch[start : start + chunk]
                    try:
                        vectors = cls_embeddings(model, part, device, precision)
                    except Exception as exc:
                        # Another process took GPU memory since the batch size was found: halve and retry.
                        if device == "cpu" or chunk == 1 or not is_out_of_memory(exc):
                            raise
                        _empty_gpu_cache()
                        chunk = max(1, chunk // 2)
                        progress.warning(_("The GPU ran out of memory; continuing with batches of {n} patches.")
                                         .format(n=chunk))
                        continue
                    start += len(part)
                    if vectors.shape[1] != dim:
                        raise BalancedSamplingError(_("The model gives {given}-d embeddings, not {expected}.").format(
                            given=vectors.shape[1], expected=dim))
                    out[done : done + len(vectors)] = vectors
                    done += len(vectors)
                    if device == "cpu":
                        per_patch = (time.monotonic() - began) / len(part)
                        chunk = max(1, min(batch_size, int(CANCEL_LATENCY / max(per_patch, 1e-6))))
                    progress.update(done, len(windows))
                if cache and done < len(windows) and time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                    _checkpoint(cache, keys[:done], name, out[:done], progress,
                                None if states is None else states[:done])
                    last_checkpoint = time.monotonic()
    except BaseException as exc:
        _keep_done_and_raise(exc, cache, keys[:done], name, out[:done], None if states is None else states[:done])
    return out


def _keep_done_and_raise(exc: BaseException, cache, keys, identity, vectors, states=None):
    """On an error or a cancel: add the ``vectors`` (m, d) of ``keys`` (m,) done so far to ``cache`` (None: they
    are in it already), with their images' file ``states``, then raise ``exc``, a cancel as one saying what was
    kept."""
    if cache and len(keys) and vectors is not None:
        cache.save(keys, identity, vectors, states)
    if isinstance(exc, OperationCanceled):
        if cache and len(keys):
            message = _("Canceled by the user; the {done} embeddings computed so far were added to the cache "
                        "'{path}'.").format(done=len(keys), path=cache.path)
        else:
            message = _("Canceled by the user; no embedding was written.")
        raise OperationCanceled(message) from exc
    raise exc
