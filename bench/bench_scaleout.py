"""Scale-out benchmark: mask statistics in-process (threads) vs a Dask LocalCluster, in the same run.

Usage (from the repository root)::

    .venv/bin/python bench/bench_scaleout.py                      # 1 M patches, LocalCluster(2); writes docs
    .venv/bin/python bench/bench_scaleout.py --patches 200000 --no-doc

Data (written once, kept under ``--data``, default /tmp/bs_bench_scaleout): one uint8 mask mosaic (classes 1-6,
nodata 0, 7 px class cells from per-256-px-block mixes plus 2 % salt pixels, GeoTIFF deflate tiled 256) of
``ceil(sqrt(patches / copies))^2`` windows of 64 px, hard-linked ``copies`` times under distinct names, so the
engine sees ``copies`` rasters (one task never spans two) while the page cache holds one file. Patches are
64 px (as in bench_stages.py: 1 M x 256^2 px would be 65 Gpx here); the per-task costs (open, window reads,
counting, bookkeeping, transfer) are per window. Mask statistics only (``check_black_border=False``): the
black-border test reads the image, a cost in-process and on workers alike.

Measured, in one process, one after the other: (1) in-process, 2 threads (the default on 2 cores); (2) a
LocalCluster of ``--workers`` worker processes x 1 thread, started and closed by the executor (start-up timed
apart); the results must be identical. Then the scheduler's own throughput: ``--tiny`` no-op tasks through the
same executor (tasks/s), the bytes a task sends and receives per patch (pickled), and the workers' peak RSS.
The 1-min load average is recorded before and after each timing: the machine is shared.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from common import Timer, json_block, machine, peak_rss_mb, write_marked_block

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "scale-out.md"
PATCH = 64
NODATA = 0


def make_mask(path: Path, side: int, seed: int = 0) -> float:
    """Write the mask mosaic; return the seconds it took (0 when it was already there)."""
    import rasterio
    from rasterio.transform import from_origin

    if path.exists():
        return 0.0
    rng = np.random.default_rng(seed)
    base = np.array([0.80, 0.05, 0.05, 0.04, 0.04, 0.02])
    n_blocks, cell = math.ceil(side / 256), 7
    profile = dict(driver="GTiff", width=side, height=side, count=1, dtype="uint8", nodata=NODATA,
                   crs="EPSG:32633", transform=from_origin(500_000, 5_000_000, 0.5, 0.5), tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate")
    start = time.perf_counter()
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for top in range(0, side, 256):
            rows = min(256, side - top)
            mix = np.tile(base, (n_blocks, 1))
            rich = rng.random(n_blocks) < 0.2
            mix[rich, rng.integers(1, 6, size=int(rich.sum()))] += rng.uniform(0.2, 0.8, size=int(rich.sum()))
            cum = np.cumsum(mix / mix.sum(axis=1, keepdims=True), axis=1)
            ccol = math.ceil(side / cell)
            block_of_cell = np.minimum(np.arange(ccol) * cell // 256, n_blocks - 1)
            u = rng.random((math.ceil(rows / cell), ccol, 1))
            cells = (u > cum[block_of_cell][None]).sum(axis=-1).astype(np.uint8) + 1
            strip = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)[:rows, :side]
            salt = rng.random((rows, side)) < 0.02
            strip[salt] = rng.integers(1, 7, size=int(salt.sum()), dtype=np.uint8)
            strip[:, :8] = NODATA
            for b in np.flatnonzero(rng.random(n_blocks) < 0.03):
                strip[:12, b * 256:(b + 1) * 256] = NODATA
            dst.write(strip, 1, window=rasterio.windows.Window(0, top, side, rows))
    os.replace(tmp, path)
    return time.perf_counter() - start


def make_records(data: Path, patches: int, copies: int):
    import pandas as pd

    per_copy = math.ceil(patches / copies)
    grid = math.ceil(math.sqrt(per_copy))
    side = grid * PATCH
    data.mkdir(parents=True, exist_ok=True)
    master = data / f"mask_{side}.tif"
    write_seconds = make_mask(master, side)
    paths = []
    for i in range(copies):
        link = data / f"mask_{side}_copy{i}.tif"
        if not link.exists():
            os.link(master, link)
        paths.append(str(link))
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    frames = [pd.DataFrame({"image_path": path, "mask_path": path, "row_off": rows * PATCH, "col_off": cols * PATCH,
                            "patch_size": PATCH}) for path in paths]
    records = pd.concat(frames, ignore_index=True).iloc[:patches]
    return records, {"side_px": side, "mask_mb": master.stat().st_size / 2**20, "write_seconds": write_seconds,
                     "copies": copies}


def warm(paths) -> None:
    """Read the rasters once so that neither run pays the disk (the first would otherwise)."""
    for path in sorted(set(paths)):
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass


def _noop(chunk, stop):
    return chunk


def peak_and_now() -> tuple:
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def worker_rss_mb(client) -> dict:
    def rss():
        # VmRSS / VmHWM of this process (ru_maxrss would carry the forking parent's peak into the child).
        status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024

    return {address: [round(v) for v in values] for address, values in client.run(rss).items()}


def run(args) -> dict:
    import pandas as pd

    from balanced_sampling_plugin.compute import DaskExecutor, InProcessExecutor
    from balanced_sampling_plugin.mask_stats import _plan_chunks, _read_chunk, compute_mask_stats

    records, data_info = make_records(Path(args.data), args.patches, args.copies)
    warm(records["mask_path"])
    out = {"machine": machine(),
           "patches": len(records), "chunk_size": args.chunk_size, "workers": args.workers, "data": data_info,
           "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(native)")}
    chunks = _plan_chunks(records, args.chunk_size, NODATA, False, 0)
    out["tasks"] = len(chunks)

    with Timer() as t_in:
        reference = compute_mask_stats(records, nodata_class=NODATA, check_black_border=False,
                                       chunk_size=args.chunk_size, executor=InProcessExecutor(args.threads))
    out["in_process"] = {"threads": args.threads, "seconds": t_in.seconds, "load": [t_in.load_before, t_in.load_after],
                         "client_peak_rss_mb": round(peak_rss_mb()),
                         "client_rss_mb": round(peak_and_now()[0])}

    executor = DaskExecutor(n_workers=args.workers, threads_per_worker=1)
    try:
        with Timer() as t_start:
            executor.client.wait_for_workers(args.workers, timeout=120)
        out["cluster_start"] = {"seconds": t_start.seconds, "memory_limit_mb": executor.memory_limit / 2**20,
                                "worker_rss_mb [now, peak]": worker_rss_mb(executor.client)}
        with Timer() as t_dask:
            result = compute_mask_stats(records, nodata_class=NODATA, check_black_border=False,
                                        chunk_size=args.chunk_size, executor=executor)
        pd.testing.assert_frame_equal(result, reference)  # identical, or the benchmark fails
        out["dask"] = {"seconds": t_dask.seconds, "load": [t_dask.load_before, t_dask.load_after],
                       "identical": True, "worker_rss_mb [now, peak]": worker_rss_mb(executor.client)}
        with Timer() as t_tiny:
            executor.map_chunks(_noop, list(range(args.tiny)))
        out["scheduler"] = {"tiny_tasks": args.tiny, "seconds": t_tiny.seconds,
                            "tasks_per_second": args.tiny / t_tiny.seconds, "load": [t_tiny.load_before,
                                                                                     t_tiny.load_after]}
    finally:
        executor.close()

    sample = chunks[len(chunks) // 2]
    sent = len(pickle.dumps(sample, protocol=5))
    received = len(pickle.dumps(_read_chunk(sample, lambda: False), protocol=5))
    out["bytes_per_patch"] = {"sent": sent / len(sample.positions), "received": received / len(sample.positions)}
    out["ratio_in_process_over_dask"] = t_in.seconds / t_dask.seconds
    out["per_patch_ms"] = {"in_process": 1000 * t_in.seconds / len(records),
                           "dask": 1000 * t_dask.seconds / len(records)}
    out["task_seconds_mean"] = t_dask.seconds * args.workers / len(chunks)
    return out


def render(r: dict) -> str:
    d, ip, dk, sc, b = r["data"], r["in_process"], r["dask"], r["scheduler"], r["bytes_per_patch"]
    rss = ", ".join(f"{v[0]} / {v[1]}" for v in dk["worker_rss_mb [now, peak]"].values())
    rss0 = ", ".join(f"{v[0]}" for v in r["cluster_start"]["worker_rss_mb [now, peak]"].values())
    return "\n".join([
        f"Measured by `bench/bench_scaleout.py` on {r['machine']} (shared with other agents; load averages below), "
        f"OPENBLAS_CORETYPE={r['openblas_coretype']}. {r['patches']:,} patches of {PATCH} px over {d['copies']} "
        f"hard-linked copies of one {d['side_px']} px mask mosaic ({d['mask_mb']:.0f} MB deflate), mask statistics "
        f"only, page cache warm; {r['tasks']} tasks of at most {r['chunk_size']} windows.",
        "",
        "| run | wall s | ms / patch | 1-min load before -> after |",
        "|---|---|---|---|",
        f"| in-process, {ip['threads']} threads | {ip['seconds']:.1f} | {r['per_patch_ms']['in_process']:.3f} | "
        f"{ip['load'][0]} -> {ip['load'][1]} |",
        f"| LocalCluster, {r['workers']} worker processes x 1 thread (start-up {r['cluster_start']['seconds']:.1f} s "
        f"not included) | {dk['seconds']:.1f} | {r['per_patch_ms']['dask']:.3f} | {dk['load'][0]} -> {dk['load'][1]} |",
        "",
        f"- Ratio in-process / LocalCluster: **{r['ratio_in_process_over_dask']:.2f}** (results identical: "
        f"{dk['identical']}).",
        f"- Mean task: {r['task_seconds_mean']:.2f} s of worker time for {r['chunk_size']} windows.",
        f"- Scheduler throughput, no-op tasks through the same executor: {sc['tasks_per_second']:.0f} tasks/s "
        f"({sc['tiny_tasks']} tasks in {sc['seconds']:.1f} s, load {sc['load'][0]} -> {sc['load'][1]}).",
        f"- Bytes per patch (pickled): sent {b['sent']:.0f} (the task: window, patch id, paths), received "
        f"{b['received']:.0f} (the value counts as a frame and the two flags).",
        f"- Worker RSS (MB) after start-up: {rss0}; after the run (now / peak): {rss}; memory limit "
        f"{r['cluster_start']['memory_limit_mb']:.0f} MB each. This process (the client) peaked at "
        f"{ip['client_peak_rss_mb']} MB after the in-process run.",
        "",
        *json_block(r),
    ])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=1_000_000)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--tiny", type=int, default=2000)
    parser.add_argument("--data", default="/tmp/bs_bench_scaleout")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    body = render(result)
    print(body)
    if not args.no_doc:
        write_marked_block(DOC, "bench_scaleout", body)


if __name__ == "__main__":
    main()
