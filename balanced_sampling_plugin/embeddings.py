"""DINOv2 CLS embeddings of patch windows, with the parquet cache.

Only patches missing from the cache (by patch key AND model) are computed. Windows are
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
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .contract import PRECISIONS
from .embedding_cache import EmbeddingCache
from .errors import BalancedSamplingError, OperationCanceled, require
from .i18n import N_, _
from .patch_images import PatchReader, check_windows, estimate_stretch
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

    ``embeddings`` is (n_rows, d) float32; ``computed`` and ``reused`` count distinct
    patches (rows sharing a patch key share one embedding: ``unique_embeddings[row_to_unique]``); ``device`` is None when
    everything came from the cache and no model ran.
    """

    embeddings: np.ndarray
    computed: int
    reused: int
    model_name: str
    device: str | None
    unique_embeddings: np.ndarray | None = None  # (n_distinct, d): one row per distinct patch
    row_to_unique: np.ndarray | None = None  # (n_rows,) int: the distinct patch of each row


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
        """(3, H, W) float 0..255 numpy image -> (3, h, w) float32 model-input tensor."""
        torch = require("torch", _("DINOv2 embeddings"))
        tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
        if self.resize is not None:
            shape = self._resized_shape(*tensor.shape[-2:])
            tensor = torch.nn.functional.interpolate(tensor, size=shape, mode="bicubic", antialias=True)
            tensor = tensor.clamp(0.0, 255.0)  # bicubic overshoots
        if self.crop is not None:
            height, width = tensor.shape[-2:]
            top, left = max(0, (height - self.crop[0]) // 2), max(0, (width - self.crop[1]) // 2)
            tensor = tensor[..., top : top + self.crop[0], left : left + self.crop[1]]
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((tensor * self.scale - mean) / std)[0]


def _batches(windows, load, batch_size: int, num_workers: int):
    """Yield stacked model inputs for consecutive ``batch_size`` slices of ``windows``.

    ``num_workers`` threads run ``load(window)`` up to :data:`PREFETCH_BATCHES` batches
    ahead; 0 loads in the calling thread.
    """
    torch = require("torch", _("DINOv2 embeddings"))
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


#: Numeric precisions of the forward pass. bf16 autocast: 1.0-1.2x faster on an AVX-512-bf16 CPU,
#: uniqueness ranking Spearman 0.9994-0.9999 vs fp32 (docs/benchmarks.md, Stages).


def cls_embeddings(model, batch, device: str, precision: str = "fp32") -> np.ndarray:
    """(b, d) float32 CLS embeddings of a (b, 3, h, w) model-input batch; ``precision`` in :data:`PRECISIONS`."""
    import contextlib

    torch = require("torch", _("DINOv2 embeddings"))
    autocast = (torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    with torch.inference_mode(), autocast:
        # DINOv2's CLS token: first token of the (layer-normed) last hidden state.
        return model(pixel_values=batch.to(device)).last_hidden_state[:, 0].float().cpu().numpy()


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


def cache_identity(model_name: str, fingerprint: str, bands, stretch, values=None, precision: str = "fp32") -> str:
    """What an embedding depends on besides the patch: the model's weights and how pixels reach it.

    Stored in the cache's ``model`` column, so changing the weights, the bands, the stretch
    percentiles or the stretch values estimated from them (non-uint8 imagery) never reuses
    embeddings made from other inputs. ``values`` is the :class:`~.patch_images.Stretch`
    applied, or None for uint8 imagery.
    """
    identity = (f"{model_name}|weights={fingerprint}|bands={','.join(str(int(b)) for b in bands)}"
                f"|stretch={stretch[0]:g}-{stretch[1]:g}")
    if values is not None:
        raw = np.concatenate([values.low, values.high]).astype("<f8").tobytes()
        identity += f"@{hashlib.blake2b(raw, digest_size=8).hexdigest()}"
    return identity + ("" if precision == "fp32" else f"|{precision}")


def extract_embeddings(records: pd.DataFrame, dino_model: str = "dinov2-base", batch_size: int = 32,
                       num_workers: int = 2, use_gpu: bool = False, parquet_path=None, bands=(1, 2, 3),
                       stretch=(2, 98), progress: Progress | None = None,
                       precision: str = "fp32") -> EmbeddingResult:
    """DINOv2 CLS embeddings of every patch of ``records``, reusing and updating the cache.

    Parameters
    ----------
    records : DataFrame with ``image_path, row_off, col_off, patch_size`` (pixels).
    dino_model : ``dinov2-small|base|large``, a hub id, or a folder saved with ``save_pretrained``.
    batch_size, num_workers : patches per forward pass; threads reading windows (0 = none).
    use_gpu : use CUDA when available (else CPU, said in the log).
    parquet_path : embedding cache file (see :mod:`.embedding_cache`), or None.
    bands : 3 raster bands (1-based) for images with more than one band.
    stretch : (low, high) percentiles of the dataset-wide stretch of non-uint8 imagery.
    progress : updated per batch; cancel raises ``OperationCanceled`` within one batch.
    precision : ``fp32``, or ``bf16`` autocast (faster where the CPU/GPU has bf16; cached apart).

    Every window is checked against its image (inside it, bands present) before the model loads.
    """
    progress = as_progress(progress)
    if precision not in PRECISIONS:
        raise BalancedSamplingError(_("Unknown precision {value}; choose one of {choices}.").format(
            value=repr(precision), choices=", ".join(PRECISIONS)))
    if int(batch_size) < 1:
        raise BalancedSamplingError(_("The batch size must be at least 1; got {value}.").format(value=batch_size))
    table = validate_records(records, required=(IMAGE_PATH, ROW_OFF, COL_OFF, PATCH_SIZE))
    keys = patch_ids(table).to_numpy()
    unique_keys, first_row, row_to_unique = np.unique(keys, return_index=True, return_inverse=True)
    firsts = table.iloc[first_row]
    windows = list(zip([normalize_path(p) for p in firsts[IMAGE_PATH]], firsts[ROW_OFF].tolist(),
                       firsts[COL_OFF].tolist(), firsts[PATCH_SIZE].tolist()))
    name, local = resolve_model_name(dino_model)
    dim = model_dimension(name, local)
    cache = EmbeddingCache(parquet_path, progress) if parquet_path else None

    with PatchReader(bands) as reader:
        by_image = sorted(range(len(windows)), key=windows.__getitem__)
        check_windows(reader, [windows[i] for i in by_image],
                      lambda i: describe_patch(table, firsts.index[by_image[i]]))
        reader.stretch = estimate_stretch(reader, sorted(windows), stretch)
        if reader.stretch is not None:
            low, high = (np.round(v, 3).tolist() for v in (reader.stretch.low, reader.stretch.high))
            progress.info(_("Non-uint8 imagery stretched to 0-255 (percentiles {percentiles}): {low} to {high}.")
                          .format(percentiles=stretch, low=low, high=high))
        fingerprint = model_fingerprint(name, local) if cache else None
        identity = cache_identity(name, fingerprint, bands, stretch, reader.stretch, precision)
        if cache and fingerprint is None:
            progress.warning(_("Cannot tell which revision of '{model}' is loaded, so no cached embedding is "
                               "reused.").format(model=name))
            found, cached = np.zeros(len(unique_keys), bool), None
        elif cache:
            found, cached = cache.lookup(unique_keys, identity, dim)
        else:
            found, cached = np.zeros(len(unique_keys), bool), None
        vectors = np.zeros((len(unique_keys), dim), dtype=np.float32)
        if found.any():
            vectors[found] = cached
        # Image order lets each reader thread reuse its open dataset.
        todo = sorted(np.flatnonzero(~found), key=windows.__getitem__)
        if cache:
            progress.info(_("Embedding cache '{path}': {reused} of {total} patches reused, {todo} to compute.").format(
                path=cache.path, reused=int(found.sum()), total=len(unique_keys), todo=len(todo)))
        device = None
        if todo:
            device = pick_device(use_gpu, progress)
            model, spec = load_model(name, local, device, revision=fingerprint)
            if cache and fingerprint is None:  # a hub model fetched just now: its revision is known from here on
                fingerprint = model_fingerprint(name, local)
                identity = cache_identity(name, fingerprint or "unknown", bands, stretch, reader.stretch, precision)
            computed = _embed(model, spec, device, reader, [windows[i] for i in todo], dim, int(batch_size),
                              int(num_workers), progress, cache if fingerprint else None, unique_keys[todo],
                              identity, precision)
            vectors[todo] = computed
            if cache and fingerprint:
                cache.save(unique_keys[todo], identity, computed)
    return EmbeddingResult(vectors[row_to_unique], computed=len(todo), reused=int(found.sum()), model_name=name,
                           device=device, unique_embeddings=vectors, row_to_unique=row_to_unique)


def _checkpoint(cache, keys, name, vectors, progress) -> None:
    """Save the embeddings done so far; a failure (disk full, file locked) only warns: the run goes on."""
    try:
        cache.save(keys, name, vectors)
    except OSError as exc:
        progress.warning(_("Could not checkpoint the embedding cache '{path}' ({error}); the run continues and saves "
                           "at the end.").format(path=cache.path, error=exc))


def _embed(model, spec, device, reader, windows, dim, batch_size, num_workers, progress, cache, keys, name,
           precision="fp32"):
    """(len(windows), dim) embeddings; on cancel/error the rows done so far go to the cache first,
    and every :data:`CHECKPOINT_SECONDS` during the run."""
    out = np.zeros((len(windows), dim), dtype=np.float32)
    done = 0
    last_checkpoint = time.monotonic()
    # On the CPU a forward pass of a whole batch can take tens of seconds (dinov2-base, a busy machine):
    # run it in chunks short enough that cancel is seen within about CANCEL_LATENCY seconds.
    chunk = batch_size if device != "cpu" else min(batch_size, FIRST_CPU_CHUNK)
    try:
        with closing(_batches(windows, lambda w: spec(reader.read(*w)), batch_size, num_workers)) as batches:
            for batch in batches:
                start = 0
                while start < len(batch):
                    began = time.monotonic()
                    part = batch[start : start + chunk]
                    start += len(part)
                    vectors = cls_embeddings(model, part, device, precision)
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
                    _checkpoint(cache, keys[:done], name, out[:done], progress)
                    last_checkpoint = time.monotonic()
    except BaseException as exc:
        if cache and done:
            cache.save(keys[:done], name, out[:done])
        if isinstance(exc, OperationCanceled):
            if cache and done:
                message = _("Canceled by the user; the {done} embeddings computed so far were added to the cache "
                            "'{path}'.").format(done=done, path=cache.path)
            else:
                message = _("Canceled by the user; no embedding was written.")
            raise OperationCanceled(message) from exc
        raise
    return out
