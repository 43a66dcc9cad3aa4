"""DINOv2 embeddings in-process against a Dask LocalCluster on this machine, side by side in one run (issue 17).

Usage (from the repository root)::

    .venv/bin/python bench/bench_scaleout_embeddings.py              # rewrites its block of docs/scale-out.md
    .venv/bin/python bench/bench_scaleout_embeddings.py --tiles 2 --no-doc

A random-weight DINOv2 (``balanced_sampling_plugin/random_dinov2.py``, the real architecture) embeds the 64 px
windows of the synthetic dataset (resized to 224 px by its image processor) with no cache: once in this process
(torch on every core), once on a LocalCluster of ``--workers`` processes of 1 thread each (the model loaded once
per worker by the worker setup). The cluster's start-up and model loading are timed apart from the tasks. The
two runs must give identical vectors (fp32).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

from common import json_block, load1, machine, write_marked_block

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "scale-out.md"


def run(args) -> dict:
    import numpy as np

    from balanced_sampling_plugin import embedding_tasks
    from balanced_sampling_plugin.compute import DaskExecutor
    from balanced_sampling_plugin.embeddings import extract_embeddings, resolve_model_name
    from balanced_sampling_plugin.footprints import build_footprints
    from balanced_sampling_plugin.random_dinov2 import build_random_dinov2
    from balanced_sampling_plugin.synthetic import make_synthetic_dataset

    work = tempfile.mkdtemp(prefix="bs_bench_emb_")
    model = build_random_dinov2(os.path.join(work, f"dinov2-{args.model}"), args.model)
    data = make_synthetic_dataset(os.path.join(work, "data"), n_tiles=args.tiles, tile_size=512)
    records = build_footprints(list(zip(data.images, data.masks)), patch_size=64, stride=64).records
    n = len(records)
    options = dict(dino_model=model, precision=args.precision, batch_size=32)

    extract_embeddings(records.head(8), **options)  # warm: imports, first forward pass
    load_before = load1()
    start = time.perf_counter()
    here = extract_embeddings(records, **options).embeddings
    in_process = {"seconds": time.perf_counter() - start, "load": [load_before, load1()]}

    load_before = load1()
    start = time.perf_counter()
    executor = DaskExecutor(n_workers=args.workers, threads_per_worker=1)
    executor.client.wait_for_workers(args.workers, timeout=120)
    cluster_start = time.perf_counter() - start
    name, local = resolve_model_name(model)
    spec = embedding_tasks.ModelSpec(name, local, None, args.precision if args.precision != "auto" else "fp32",
                                     False, here.shape[1])
    try:
        start = time.perf_counter()
        executor.client.run(embedding_tasks.worker_model, spec)  # what the worker setup does: time it apart
        model_load = time.perf_counter() - start
        start = time.perf_counter()
        there = extract_embeddings(records, executor=executor, **options).embeddings
        dask = {"seconds": time.perf_counter() - start, "load": [load_before, load1()],
                "cluster_start_seconds": cluster_start, "model_load_seconds": model_load}
    finally:
        executor.close()
    tasks = embedding_tasks.plan_tasks([("/x/image.tif", 0, 0, 64)] * 512, [f"{i:016x}" for i in range(512)], spec,
                                       (1, 2, 3), None, 32, "identity")
    sent = len(pickle.dumps(tasks[0])) / 512
    return {
        "machine": machine(), "model": f"dinov2-{args.model} (random weights)", "precision": args.precision,
        "patches": n, "workers": args.workers, "dim": int(here.shape[1]),
        "per_task": embedding_tasks.patches_per_task(n, args.workers),
        "in_process": in_process, "dask": dask, "identical": bool(np.array_equal(here, there)),
        "max_abs_difference": float(np.abs(here - there).max()),
        "patches_per_second": {"in_process": n / in_process["seconds"], "dask": n / dask["seconds"]},
        "ratio_in_process_over_dask": in_process["seconds"] / dask["seconds"],
        "bytes_per_patch": {"sent": sent, "received": here.shape[1] * 4},
    }


def render(r: dict) -> str:
    ip, dk = r["in_process"], r["dask"]
    return "\n".join([
        f"Measured by `bench/bench_scaleout_embeddings.py` on {r['machine']} (shared; load averages below): "
        f"{r['model']}, {r['precision']}, {r['patches']} windows of 64 px resized to 224 px, batch 32, no cache; "
        f"{-(-r['patches'] // r['per_task'])} tasks of {r['per_task']} patches.",
        "",
        "| run | wall s | patches/s | 1-min load before -> after |",
        "|---|---|---|---|",
        f"| in-process, torch on every core | {ip['seconds']:.1f} | {r['patches_per_second']['in_process']:.2f} | "
        f"{ip['load'][0]} -> {ip['load'][1]} |",
        f"| LocalCluster, {r['workers']} worker processes x 1 thread (start-up {dk['cluster_start_seconds']:.1f} s "
        f"and model load {dk['model_load_seconds']:.1f} s not included) | {dk['seconds']:.1f} | "
        f"{r['patches_per_second']['dask']:.2f} | {dk['load'][0]} -> {dk['load'][1]} |",
        "",
        f"- Ratio in-process / LocalCluster: **{r['ratio_in_process_over_dask']:.2f}**; vectors identical: "
        f"{r['identical']} (largest difference {r['max_abs_difference']:.1e}).",
        f"- Bytes per patch: sent {r['bytes_per_patch']['sent']:.0f} (pickled task: window, key, model spec shared "
        f"by the task's patches), received {r['bytes_per_patch']['received']} (the {r['dim']}-d float32 vector).",
        "",
        *json_block(r),
    ])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="small", choices=["small", "base"])
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--tiles", type=int, default=6, help="512 px tiles of 64 windows each")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run(args)
    body = render(result)
    print(body)
    if not args.no_doc:
        write_marked_block(DOC, "bench_scaleout_embeddings", body)


if __name__ == "__main__":
    main()
