"""DINOv2 on the CPU: forward modes side by side, the FLOPs floor, contention, and the window readers.

Every comparison is one run of this script, on random-weight DINOv2 (real architecture, so real cost:
balanced_sampling_plugin/random_dinov2.py) fed windows of the synthetic dataset, batch 32, 224 px:

- modes: plain fp32 loop, bf16 autocast, int8 dynamic quantisation of the Linear layers (torch), ONNX
  Runtime fp32 and its dynamic int8 quantisation (when ``onnxruntime`` imports; ``--ort-path`` adds a folder
  to ``sys.path`` for a copy installed aside). Each mode is scored against fp32: mean cosine of the
  embeddings and Spearman of the uniqueness score (exact kNN, k = 5);
- the floor: FLOPs per patch counted from the matrix products of the architecture, x patches/s, against
  the measured float32 GEMM rate (torch and numpy);
- contention (``--contention``): engine throughput (``extract_embeddings``) with 0, 1, 2 competing busy
  processes, under the old thread setting (torch default threads, OpenMP default wait policy), all cores
  with passive waiting (the engine's default now), the engine's ``threads="auto"`` and free cores only, each
  in a fresh process;
- readers: windows read + resized alone (no model), 256 px, 1 and 2 threads.

Writes the section "DINOv2 on the CPU (issue 16)" of docs/benchmarks.md unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, write_section  # noqa: E402

SECTION = "DINOv2 on the CPU (issue 16)"
CONTENTION_SECTION = "DINOv2 under CPU contention (issue 16)"


def load() -> str:
    return "load {:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())


def dinov2_flops(hidden: int, layers: int, image: int = 224, patch: int = 14, mlp_ratio: int = 4) -> float:
    """FLOPs (2 x multiply-adds) of one DINOv2 forward pass, counting its matrix products.

    Patch embedding (a 14x14 conv = one product per patch), per layer: Q, K, V and output projections
    (4 T D^2), the MLP (2 T D * ratio D), attention scores and their product with V (2 T^2 D). T = tokens
    (patches + CLS). Norms, softmax, GELU and the layer scale are left out (< 1 %).
    """
    grid = image // patch
    tokens = grid * grid + 1
    embed = grid * grid * (3 * patch * patch) * hidden
    per_layer = 4 * tokens * hidden * hidden + 2 * tokens * hidden * mlp_ratio * hidden + 2 * tokens * tokens * hidden
    return 2.0 * (embed + layers * per_layer)


def gemm_rates(repeats: int = 5) -> dict:
    """GFLOP/s of a float32 4096x768 @ 768x4096 product: numpy (OpenBLAS) and torch (MKL)."""
    import torch

    a = np.random.default_rng(0).standard_normal((4096, 768), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((768, 4096), dtype=np.float32)
    flops = 2.0 * 4096 * 768 * 4096
    out = {}
    for name, mul, x, y in (("numpy", np.matmul, a, b), ("torch", torch.matmul, torch.from_numpy(a),
                                                          torch.from_numpy(b))):
        mul(x, y)
        best = min(_timed(lambda: mul(x, y)) for _ in range(repeats))
        out[name] = flops / best / 1e9
    try:
        from threadpoolctl import threadpool_info

        out["openblas"] = ", ".join(f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info()
                                    if i.get("internal_api") == "openblas") or "?"
    except ImportError:
        out["openblas"] = "?"
    out["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return out


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def dataset_windows(folder: str, count: int, size: int = 256):
    """``count`` (path, row, col, size) windows of ``size`` px from a synthetic dataset (stride size/2)."""
    from balanced_sampling_plugin.synthetic import make_synthetic_dataset

    tile = 1024 if count <= 400 else 2048
    offsets = range(0, tile - size + 1, size // 2)
    tiles = max(1, int(np.ceil(count / len(offsets) ** 2)))
    data = make_synthetic_dataset(folder, n_tiles=tiles, tile_size=tile, seed=3)
    windows = [(path, r, c, size) for path in data.images for r in offsets for c in offsets]
    return windows[:count]


def model_inputs(model_dir: str, windows):
    import torch
    from transformers import AutoImageProcessor

    from balanced_sampling_plugin.embeddings import InputSpec
    from balanced_sampling_plugin.patch_images import PatchReader

    spec = InputSpec.from_processor(AutoImageProcessor.from_pretrained(model_dir))
    with PatchReader() as reader:
        return torch.stack([spec(reader.read(*w)) for w in windows])


def _old_preprocess(spec, image):
    """The preprocessing as it was before issue 16: every step a torch op (intra-op threads included)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    shape = spec._resized_shape(*tensor.shape[-2:])
    tensor = torch.nn.functional.interpolate(tensor, size=shape, mode="bicubic", antialias=True).clamp(0.0, 255.0)
    height, width = tensor.shape[-2:]
    top, left = max(0, (height - spec.crop[0]) // 2), max(0, (width - spec.crop[1]) // 2)
    tensor = tensor[..., top : top + spec.crop[0], left : left + spec.crop[1]]
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    return ((tensor * spec.scale - mean) / std)[0]


def _old_read(reader, window):
    """The window read as it was before issue 16: masked float64 read for every window."""
    values, valid = reader.read_raw(*window)
    image = values.astype(np.float32)
    image[:, ~valid] = 0.0
    return image


def reader_rates(model_dir: str, windows, threads=(1, 2), before: bool = False) -> dict:
    """Patches/s of reading + preprocessing alone (a fresh reader per setting, so no warm dataset);
    ``before``: also the read and preprocessing as they were before issue 16, keyed ("before", n)."""
    from concurrent.futures import ThreadPoolExecutor

    from transformers import AutoImageProcessor

    from balanced_sampling_plugin.embeddings import InputSpec
    from balanced_sampling_plugin.patch_images import PatchReader

    spec = InputSpec.from_processor(AutoImageProcessor.from_pretrained(model_dir))
    ways = {"now": lambda reader, w: spec(reader.read(*w))}
    if before:
        ways["before"] = lambda reader, w: _old_preprocess(spec, _old_read(reader, w))
    out = {}
    for way, load_one in ways.items():
        for n in threads:
            with PatchReader() as reader:
                with ThreadPoolExecutor(n) as pool:
                    list(pool.map(lambda w: load_one(reader, w), windows[:8]))  # warm: open datasets
                    seconds = _timed(lambda: list(pool.map(lambda w: load_one(reader, w), windows)))
            out[n if way == "now" else (way, n)] = len(windows) / seconds
    return out


def run_modes(model_dir: str, inputs, batch: int, modes, ort_ok: bool) -> dict:
    """{mode: (seconds, embeddings)} for each mode, all on the same inputs.

    The modes take turns batch by batch (fp32 batch 1, bf16 batch 1, ..., fp32 batch 2, ...), so load that
    other processes put on a shared machine falls on every mode alike instead of on whichever ran then.
    """
    from transformers import AutoModel

    from balanced_sampling_plugin.embeddings import cls_embeddings, quantized_int8

    base = AutoModel.from_pretrained(model_dir).eval()
    runners = {}
    for mode in modes:
        if mode in ("fp32", "bf16"):
            runners[mode] = (lambda part, m=mode: cls_embeddings(base, part, "cpu", m))
        elif mode == "int8":
            runners[mode] = (lambda part, q=quantized_int8(base): cls_embeddings(q, part, "cpu", "fp32"))
        elif mode.startswith("ort") and ort_ok:
            runners[mode] = _ort_runner(base, inputs[:2], mode)
    for run in runners.values():
        run(inputs[:4])  # warm up (allocations, kernels chosen)
    seconds = dict.fromkeys(runners, 0.0)
    vectors = {mode: [] for mode in runners}
    for i in range(0, len(inputs), batch):
        part = inputs[i : i + batch]
        for mode, run in runners.items():
            began = time.perf_counter()
            vectors[mode].append(run(part))
            seconds[mode] += time.perf_counter() - began
        print(f"  {i + len(part)} patches: " + ", ".join(f"{m} {(i + len(part)) / t:.2f}/s" for m, t in
                                                         seconds.items()) + f" ({load()})", flush=True)
    return {mode: (seconds[mode], np.concatenate(vectors[mode])) for mode in runners}


def _ort_runner(model, example, mode: str):
    import onnxruntime as ort
    import torch

    class ClsToken(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(pixel_values=x).last_hidden_state[:, 0]

    folder = tempfile.mkdtemp(prefix="ort-")
    path = os.path.join(folder, "model.onnx")
    torch.onnx.export(ClsToken(model), (example,), path, dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, opset_version=17)
    if mode == "ort-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = os.path.join(folder, "model-int8.onnx")
        quantize_dynamic(path, quantized, weight_type=QuantType.QInt8)
        path = quantized
    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda part: session.run(None, {"x": part.numpy()})[0].astype(np.float32)


def agreement(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(mean cosine of matching rows, Spearman of the exact k=5 uniqueness scores)."""
    from scipy.stats import spearmanr

    from balanced_sampling_plugin.uniqueness import uniqueness_scores

    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = other / np.linalg.norm(other, axis=1, keepdims=True)
    cosine = float((a * b).sum(axis=1).mean())
    rho = spearmanr(uniqueness_scores(reference, 5, backend="sklearn"),
                    uniqueness_scores(other, 5, backend="sklearn")).statistic
    return cosine, float(rho)


CONTENTION_CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
import pandas as pd
from balanced_sampling_plugin.embeddings import busy_elsewhere, extract_embeddings, usable_cores
threads = {threads!r}
if threads == "free":  # the cores others leave free, at least 1, as the engine's auto did first
    threads = max(1, usable_cores() - round(busy_elsewhere()))
records = pd.DataFrame(json.loads({windows!r}), columns=["image_path", "row_off", "col_off", "patch_size"])
extract_embeddings(records.iloc[:4], {model!r}, batch_size=32, num_workers=2, threads=threads)  # warm
began = time.perf_counter()
extract_embeddings(records, {model!r}, batch_size=32, num_workers=2, threads=threads)
print(json.dumps(len(records) / (time.perf_counter() - began)))
"""


def contention(model_dir: str, windows, busy_counts=(0, 1, 2)) -> list:
    """[(busy processes, policy, patches/s, load)] of the engine, each in a fresh interpreter."""
    policies = {
        # What the engine did before: torch's default (all cores), OpenMP's default wait policy.
        "before (all cores, OpenMP default wait)": ({"OMP_WAIT_POLICY": None}, "all"),
        "engine default now: all cores, PASSIVE wait": ({"OMP_WAIT_POLICY": "PASSIVE"}, "all"),
        "auto (free cores, or all when none is free; PASSIVE wait)": ({"OMP_WAIT_POLICY": "PASSIVE"}, "auto"),
        "free cores only (at least 1), PASSIVE wait": ({"OMP_WAIT_POLICY": "PASSIVE"}, "free"),
    }
    rows = []
    for busy in busy_counts:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(2.0)
            for name, (env_change, threads) in policies.items():
                env = dict(os.environ)
                for key, value in env_change.items():
                    env.pop(key, None) if value is None else env.__setitem__(key, value)
                env["BALANCED_SAMPLING_OMP_WAIT"] = "keep" if env_change["OMP_WAIT_POLICY"] is None else ""
                code = CONTENTION_CHILD.format(root=str(ROOT), windows=json.dumps(windows), model=model_dir,
                                               threads=threads)
                began_load = load()
                done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    print(done.stderr[-2000:], flush=True)
                    continue
                rate = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append((busy, name, rate, began_load))
                print(f"  busy={busy} {name}: {rate:.2f} patches/s ({began_load})", flush=True)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="small,base")
    parser.add_argument("--patches", type=int, default=96, help="patches per model and mode")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--modes", default="fp32,bf16,int8,ort-fp32,ort-int8")
    parser.add_argument("--ort-path", default="", help="folders (os.pathsep) with onnxruntime, onnx")
    parser.add_argument("--contention", action="store_true")
    parser.add_argument("--contention-patches", type=int, default=48)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--workdir", default="")
    args = parser.parse_args(argv)
    for folder in filter(None, args.ort_path.split(os.pathsep)):
        sys.path.insert(0, folder)
    import balanced_sampling_plugin.embeddings  # noqa: F401  (before torch: the engine's OpenMP wait policy)

    try:
        import onnxruntime  # noqa: F401

        ort_ok = True
    except ImportError:
        ort_ok = False
    import torch

    from balanced_sampling_plugin.random_dinov2 import ARCHITECTURES, build_random_dinov2

    work = args.workdir or tempfile.mkdtemp(prefix="bench-emb-")
    windows = dataset_windows(os.path.join(work, "data"), max(args.patches, 196))
    lines = [f"Machine: {machine()}; torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
             f"{torch.get_num_threads()} threads; random-weight DINOv2, batch {args.batch}, 224 px, "
             f"{args.patches} windows (256 px) of the synthetic dataset. "
             f"Run: `python bench/bench_embeddings_cpu.py {' '.join(argv or sys.argv[1:])}`.", ""]
    gemm = gemm_rates()
    lines += [f"float32 GEMM 4096x768 @ 768x4096: torch {gemm['torch']:.0f} GFLOP/s, numpy {gemm['numpy']:.0f} "
              f"GFLOP/s (OpenBLAS {gemm['openblas']}, OPENBLAS_CORETYPE={gemm['OPENBLAS_CORETYPE']}); {load()}.", ""]
    print(lines[-2], flush=True)
    modes = [m for m in args.modes.split(",") if ort_ok or not m.startswith("ort")]
    if not ort_ok:
        lines += ["ONNX Runtime: not importable here, its modes were skipped.", ""]
    lines += ["Bar to adopt a mode: >= 1.5x fp32, uniqueness Spearman >= 0.98 and mean cosine >= 0.99 vs fp32. "
              "\"of GEMM\" = model GFLOP/s (FLOPs per patch counted from the matrix products x patches/s) over the "
              "float32 torch GEMM rate above: the floor is 1.0 for a float32 forward pass.", "",
              "| model | mode | patches/s | speed-up vs fp32 | GFLOP/s | of GEMM | mean cosine | "
              "uniqueness Spearman | meets the bar | load at start |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in filter(None, args.models.split(",")):
        hidden, layers, _, _ = ARCHITECTURES[name]
        flops = dinov2_flops(hidden, layers)
        model_dir = build_random_dinov2(os.path.join(work, f"dinov2-{name}"), name)
        inputs = model_inputs(model_dir, windows[: args.patches])
        print(f"dinov2-{name}: {flops / 1e9:.1f} GFLOP/patch", flush=True)
        began_load = load()
        results = run_modes(model_dir, inputs, args.batch, modes, ort_ok)
        ref_seconds, ref = results["fp32"]
        for mode, (seconds, vectors) in results.items():
            rate = len(inputs) / seconds
            cosine, rho = agreement(ref, vectors) if mode != "fp32" else (1.0, 1.0)
            speedup = ref_seconds / seconds
            bar = "-" if mode == "fp32" else ("yes" if speedup >= 1.5 and rho >= 0.98 and cosine >= 0.99 else "no")
            lines.append(f"| dinov2-{name} ({flops / 1e9:.1f} GFLOP) | {mode} | {rate:.2f} | "
                         f"{speedup:.2f}x | {rate * flops / 1e9:.0f} | "
                         f"{rate * flops / 1e9 / gemm['torch']:.2f} | {cosine:.5f} | {rho:.4f} | {bar} | "
                         f"{began_load} |")
            print(lines[-1], flush=True)
    lines += ["", "Random weights: the agreement columns measure the numeric error of each mode on the real "
              "architecture, not on trained features; trained ViTs have outlier activations that int8 dynamic "
              "quantisation is known to be more sensitive to, so check int8 on the real model before relying on it. "
              "Not measured: OpenVINO (left for time), `torch.compile` (minutes of compilation on 2 cores, paid again "
              "by every `qgis_process` run), channels-last (in a ViT only the patch embedding is a convolution); SDPA "
              "attention is already what transformers runs for DINOv2.", ""]
    model_dir = build_random_dinov2(os.path.join(work, "dinov2-small"), "small")
    readers = reader_rates(model_dir, windows[:192], before=True) if args.models else None
    lines += [] if readers is None else [
              "Window readers alone (read 256 px + resize/crop/normalise to 224, no model, 192 windows), now: " +
              ", ".join(f"{n} thread{'s' if n > 1 else ''} {readers[n]:.0f} patches/s" for n in (1, 2)) +
              "; before (masked float64 read, torch preprocessing): " +
              ", ".join(f"{n} thread{'s' if n > 1 else ''} {readers['before', n]:.0f} patches/s" for n in (1, 2)) +
              f"; {load()}.", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_doc and args.models:
        write_section(SECTION, text)
    if args.contention:
        rows = contention(model_dir, [list(w) for w in windows[: args.contention_patches]])
        lines = [f"Machine: {machine()}; torch {torch.__version__}. "
                 f"Run: `python bench/bench_embeddings_cpu.py {' '.join(argv or sys.argv[1:])}`.", "",
                 "Contention: engine `extract_embeddings` on dinov2-small (precision auto = bf16 here, batch 32, "
                 "2 reader threads, "
                 f"{args.contention_patches} patches), each setting in a fresh process, with N busy "
                 "`while True: pass` processes beside it.", "",
                 "| busy processes | thread setting | patches/s | load at start |", "|---|---|---|---|"]
        lines += [f"| {busy} | {name} | {rate:.2f} | {began} |" for busy, name, rate, began in rows]
        text = "\n".join(lines)
        print(text)
        if not args.no_doc:
            write_section(CONTENTION_SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
