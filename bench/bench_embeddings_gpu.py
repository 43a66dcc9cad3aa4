"""The GPU path of issue 16, measured where a CUDA GPU is at hand (bench/gpu_check.sh runs it, <= 5 min).

1. Model throughput per precision (fp32, fp16, bf16) and batch size (given sizes + the largest that fits,
   found by the engine's own :func:`~balanced_sampling_plugin.embeddings.gpu_batch_size`) for random-weight
   dinov2-small and dinov2-base at 224 px: pinned host batches copied non_blocking, as the engine does.
2. The engine end to end (``extract_embeddings(use_gpu=True, precision="auto")``) on 256 px windows of the
   synthetic dataset, and the window readers alone at the same thread count: do the readers keep up?
3. Exact kNN, k = 5, on a clustered 155 000 x 768 set: the ``torch`` backend (GPU) against faiss exact
   (CPU), recall@5 and time — only if ``balanced_sampling_plugin.uniqueness`` has a ``torch`` backend.

Appends the section "GPU check (issue 16): <GPU name>" to docs/benchmarks.md unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_embeddings_cpu import dataset_windows, dinov2_flops, load, reader_rates  # noqa: E402
from common import machine, write_section  # noqa: E402


def model_rates(model_dir, precisions, batches, seconds, lines, flops, device="cuda"):
    import torch
    from transformers import AutoModel

    from balanced_sampling_plugin.embeddings import cls_embeddings, gpu_batch_size

    model = AutoModel.from_pretrained(model_dir).to(device).eval()
    gpu = device == "cuda"
    shape = (3, 224, 224) if model.config.hidden_size > 64 else (3, 56, 56)
    for precision in precisions:
        if gpu and precision == "bf16" and not torch.cuda.is_bf16_supported():
            lines.append(f"| {Path(model_dir).name} | {precision} | - | not supported by this GPU | | |")
            continue
        sizes = [int(b) for b in batches if b != "auto"]
        if "auto" in batches:
            began = time.perf_counter()
            found = gpu_batch_size(model, shape, device, precision, 32, maximum=1024 if gpu else 64)
            print(f"  {precision}: largest batch {found} found in {time.perf_counter() - began:.1f} s", flush=True)
            sizes.append(found)
        for size in sizes:
            host = torch.randn(size, *shape)
            host = host.pin_memory() if gpu else host
            cls_embeddings(model, host, device, precision)  # warm up: kernels chosen, memory pooled
            done, began = 0, time.perf_counter()
            while time.perf_counter() - began < seconds:
                cls_embeddings(model, host, device, precision)  # .cpu() inside synchronises
                done += size
            rate = done / (time.perf_counter() - began)
            memory = torch.cuda.max_memory_allocated() / 2**30 if gpu else float("nan")
            if gpu:
                torch.cuda.reset_peak_memory_stats()
            lines.append(f"| {Path(model_dir).name} | {precision} | {size} | {rate:.0f} | "
                         f"{rate * flops / 1e12:.1f} | {memory:.1f} |")
            print(lines[-1], flush=True)
    del model
    if gpu:
        torch.cuda.empty_cache()


def engine_rate(model_dir, windows, workers):
    import pandas as pd

    from balanced_sampling_plugin.embeddings import extract_embeddings

    records = pd.DataFrame(windows, columns=["image_path", "row_off", "col_off", "patch_size"])
    extract_embeddings(records.iloc[:64], model_dir, batch_size=32, num_workers=workers, use_gpu=True)  # warm
    began = time.perf_counter()
    result = extract_embeddings(records, model_dir, batch_size=32, num_workers=workers, use_gpu=True)
    return len(records) / (time.perf_counter() - began), result.device


def clustered(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 50, dim)).astype(np.float32)
    x = centres[rng.integers(len(centres), size=n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x


def knn_lines(n, dim, k=5):
    from balanced_sampling_plugin import uniqueness

    if n <= 0:
        return ["kNN: skipped (--knn-n 0)."]
    if "torch" not in getattr(uniqueness, "BACKENDS", ()):
        return ["kNN: this checkout has no `torch` backend; skipped."]
    x = clustered(n, dim)
    times, results = {}, {}
    for backend in ("torch", "faiss"):
        uniqueness.knn_cosine(x[:2000], k, backend=backend)  # warm: CUDA context, faiss threads
        began = time.perf_counter()
        results[backend] = uniqueness.knn_cosine(x, k, backend=backend)
        times[backend] = time.perf_counter() - began
    recall = uniqueness.recall_at_k(results["torch"][0], results["faiss"][0])
    return [f"Exact kNN, k = {k}, clustered {n} x {dim} float32: `torch` backend (GPU) {times['torch']:.1f} s, "
            f"faiss exact (CPU, {os.cpu_count()} cores) {times['faiss']:.1f} s, recall@{k} of torch vs faiss "
            f"{recall:.4f}; {load()}."]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="small,base")
    parser.add_argument("--precisions", default="fp32,fp16,bf16")
    parser.add_argument("--batches", default="32,128,auto")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per (model, precision, batch)")
    parser.add_argument("--engine-patches", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=0, help="reader threads (0 = all cores)")
    parser.add_argument("--knn-n", type=int, default=155_000)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--dry-run-cpu", action="store_true", help="tiny model on the CPU: checks the script only")
    args = parser.parse_args(argv)
    import torch

    device = "cpu" if args.dry_run_cpu else "cuda"
    if args.dry_run_cpu:
        args.models, args.precisions, args.batches, args.seconds = "tiny", "fp32,bf16", "4,auto", 0.5
        args.engine_patches, args.knn_n, args.no_doc = 64, min(args.knn_n, 5000), True
    elif not torch.cuda.is_available():
        print("No CUDA GPU is visible to PyTorch; nothing to check.", file=sys.stderr)
        return 2
    from balanced_sampling_plugin.random_dinov2 import ARCHITECTURES, build_random_dinov2

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "CPU dry run"
    workers = args.workers or os.cpu_count()
    work = tempfile.mkdtemp(prefix="gpu-check-")
    lines = [f"Machine: {machine()}, {gpu}; torch {torch.__version__}, CUDA {torch.version.cuda}; random-weight "
             f"DINOv2 at 224 px. Run: `bash bench/gpu_check.sh` ({time.strftime('%Y-%m-%d %H:%M')}); {load()}.", "",
             "| model | precision | batch | patches/s | TFLOP/s | peak GiB |", "|---|---|---|---|---|---|"]
    folders = {}
    for name in args.models.split(","):
        hidden, layers, _, _ = ARCHITECTURES[name]
        folders[name] = build_random_dinov2(os.path.join(work, f"dinov2-{name}"), name)
        model_rates(folders[name], args.precisions.split(","), args.batches.split(","), args.seconds, lines,
                    dinov2_flops(hidden, layers), device)
    lines.append("")
    windows = dataset_windows(os.path.join(work, "data"), args.engine_patches)
    readers = reader_rates(folders[next(iter(folders))], windows[: min(len(windows), 2000)], threads=(2, workers))
    lines.append("Window readers alone (256 px, read + preprocess): " + ", ".join(
        f"{n} threads {rate:.0f} patches/s" for n, rate in readers.items()) + f"; {load()}.")
    for name, folder in folders.items():
        rate, device = engine_rate(folder, windows, workers)
        lines.append(f"Engine end to end, dinov2-{name}, precision auto, {len(windows)} windows of 256 px, "
                     f"{workers} reader threads, device {device}: {rate:.0f} patches/s; {load()}.")
        print(lines[-1], flush=True)
    lines.append("")
    if not args.no_doc:  # written now too, so a kNN cut short by the time limit keeps the extraction figures
        write_section(f"GPU check (issue 16): {gpu}", "\n".join(lines + ["kNN: not finished."]))
    lines += knn_lines(args.knn_n, 768)
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        write_section(f"GPU check (issue 16): {gpu}", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
