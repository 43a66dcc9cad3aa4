"""Per-stage benchmark of the engine: time and peak memory of each step at N patches.

Usage (from the repository root)::

    .venv/bin/python bench/bench_stages.py                    # N = 10k, 50k, 155k; writes docs
    .venv/bin/python bench/bench_stages.py --quick            # N = 10k only
    .venv/bin/python bench/bench_stages.py --sizes 10000 50000 --no-doc

Synthetic data is written ONCE per N (kept under ``--data``, default /tmp/bs_bench_stages):
one mask mosaic (uint8, nodata 0, classes 1-6) and one 3-band uint8 image mosaic of
``ceil(sqrt(N)) x ceil(sqrt(N))`` windows of 64 px, GeoTIFF deflate, tiled 256. The patches
are 64 px, not 256 px: 155k x 256^2 px would be ~10 Gpx; the per-patch overhead (open,
window read, counting, bookkeeping) depends on the number of windows, and the counting
cost on the pixels, which is 16x lower here than with 256 px patches (say so when
comparing with real data). The embedding stage uses its own small 3-band image with
224 px windows.

Each stage runs in a fresh subprocess (``--stage``), so ``ru_maxrss`` is the peak RSS of
that stage alone (it includes the interpreter and imported libraries). The 1-min load
average (``os.getloadavg``) is recorded before and after every timing: the machine may be
shared with other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import Timer, load1, machine, peak_rss_mb, save_log_log_plot, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLOT = ROOT / "docs" / "benchmark_stages.png"
PATCH = 64
EMBED_PATCH = 224
NODATA = 0
DEFAULT_SIZES = (10_000, 50_000, 155_000)
# Class colours (RGB) like balanced_sampling_plugin.synthetic; 0 = nodata = black.
COLOURS = np.array([(0, 0, 0), (120, 140, 90), (40, 70, 140), (30, 100, 40), (150, 150, 150),
                    (170, 130, 80), (200, 60, 50)], dtype=np.uint8)


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- synthetic data


def _class_strip(rng, rows: int, width: int, block_probs: np.ndarray, cell: int = 7) -> np.ndarray:
    """(rows, width) uint8 mask strip: cells of ``cell`` px drawn from per-256-px-block class mixes,
    plus 2% salt pixels of a random class so that compositions are (nearly) all distinct."""
    crow, ccol = math.ceil(rows / cell), math.ceil(width / cell)
    # Block of each cell (blocks are 256 px, the class mix changes between blocks).
    block_col = np.minimum((np.arange(ccol) * cell) // 256, block_probs.shape[1] - 1)
    probs = block_probs[:, block_col]  # (rows_of_blocks=1 here, ccol, C)
    cum = np.cumsum(probs[0], axis=-1)  # (ccol, C)
    u = rng.random((crow, ccol, 1))
    cells = (u > cum[None]).sum(axis=-1).astype(np.uint8) + 1  # classes 1..C
    strip = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)[:rows, :width]
    salt = rng.random((rows, width)) < 0.02
    strip[salt] = rng.integers(1, 7, size=int(salt.sum()), dtype=np.uint8)
    return strip


def make_mosaic(folder: Path, n: int, seed: int = 0) -> dict:
    """Write mask.tif and image.tif holding at least ``n`` windows of 64 px; return a description."""
    import rasterio
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    side = math.ceil(math.sqrt(n)) * PATCH
    info_path = folder / "info.json"
    if info_path.exists():
        return {**json.loads(info_path.read_text()), "cached": True}
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(side / 256)
    # Class mixes per 256 px block: background-dominated, a few blocks rich in one rarer class.
    base = np.array([0.80, 0.05, 0.05, 0.04, 0.04, 0.02])
    profile = dict(driver="GTiff", width=side, height=side, crs="EPSG:32633",
                   transform=from_origin(500_000, 5_000_000, 0.5, 0.5),
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    timer = Timer()
    with timer, rasterio.open(folder / "mask.tif", "w", count=1, dtype="uint8", nodata=NODATA, **profile) as m, \
            rasterio.open(folder / "image.tif", "w", count=3, dtype="uint8", **profile) as im:
        yy = None
        for top in range(0, side, 256):
            rows = min(256, side - top)
            mix = np.tile(base, (1, n_blocks, 1))
            rich = rng.random(n_blocks) < 0.2
            mix[0, rich, rng.integers(1, 6, size=int(rich.sum()))] += rng.uniform(0.2, 0.8, size=int(rich.sum()))
            mix /= mix.sum(axis=-1, keepdims=True)
            strip = _class_strip(rng, rows, side, mix)
            # Nodata: an 8 px strip along the mosaic's left edge and random 256 px blocks' top rows.
            strip[:, :8] = NODATA
            for b in np.flatnonzero(rng.random(n_blocks) < 0.03):
                strip[:12, b * 256:(b + 1) * 256] = NODATA
            image = COLOURS[strip].transpose(2, 0, 1).copy()  # (3, rows, side)
            if yy is None or yy.shape[0] != rows:
                yy = (np.add.outer(np.arange(rows), np.arange(side)) % 16).astype(np.uint8)
            image[:, strip != NODATA] += yy[strip != NODATA]  # mild texture, still compressible
            window = rasterio.windows.Window(0, top, side, rows)
            m.write(strip, 1, window=window)
            im.write(image, window=window)
    info = {"side_px": side, "windows": (side // PATCH) ** 2, "write_seconds": timer.seconds,
            "load_before": timer.load_before, "load_after": timer.load_after,
            "mask_mb": (folder / "mask.tif").stat().st_size / 2**20,
            "image_mb": (folder / "image.tif").stat().st_size / 2**20}
    info_path.write_text(json.dumps(info))
    return info


def make_embed_image(path: Path, n_patches: int, seed: int = 1) -> None:
    """3-band uint8 image of ``n_patches`` 224 px windows (8 per row) with texture and noise."""
    import rasterio
    from rasterio.transform import from_origin

    if path.exists():
        return
    cols = 8
    rows = math.ceil(n_patches / cols)
    rng = np.random.default_rng(seed)
    cells = rng.integers(1, 7, size=(rows * EMBED_PATCH // 16, cols * EMBED_PATCH // 16))
    mask = np.repeat(np.repeat(cells, 16, axis=0), 16, axis=1)
    image = COLOURS[mask].transpose(2, 0, 1).astype(np.float32) + rng.normal(0, 12, (3,) + mask.shape)
    image = np.clip(image, 1, 255).astype(np.uint8)
    profile = dict(driver="GTiff", width=mask.shape[1], height=mask.shape[0], crs="EPSG:32633",
                   transform=from_origin(500_000, 5_000_000, 0.5, 0.5), tiled=True, blockxsize=256,
                   blockysize=256, compress="deflate")
    with rasterio.open(path, "w", count=3, dtype="uint8", **profile) as dst:
        dst.write(image)


# --------------------------------------------------------------------------- stages (run in a subprocess)


def _records(data: Path, n: int):
    """The first ``n`` windows (row-major) of the mosaic, as built by build_footprints."""
    import pandas as pd

    return pd.read_pickle(data / "records.pkl").iloc[:n]


def stage_footprints(data: Path, n: int) -> dict:
    from balanced_sampling_plugin.footprints import build_footprints

    pairs = [(str(data / "image.tif"), str(data / "mask.tif"))]
    with Timer() as t:
        result = build_footprints(pairs, PATCH)
    result.records.iloc[:n].to_pickle(data / "records.pkl")
    return {**t.as_dict(), "windows": len(result.records), "note": f"all {len(result.records)} windows of the mosaic"}


def stage_mask_stats(data: Path, n: int) -> dict:
    from balanced_sampling_plugin.mask_stats import compute_mask_stats

    records = _records(data, n)
    with Timer() as t:
        stats = compute_mask_stats(records, nodata_class=NODATA, check_black_border=True)
    stats.to_pickle(data / f"stats_{n}.pkl")
    return {**t.as_dict(), "rows": len(stats)}


def naive_mask_stats(records, nodata: int = NODATA):
    """Baseline like pytorch-smt-tools' per-patch loop (what this bench compares against).

    For every patch, in Python:
    1. ``rasterio.open`` the mask, read band 1 of the window, close it;
    2. ``np.unique(window, return_counts=True)`` -> class counts; proportions over the
       non-nodata pixels, Shannon entropy and nodata ratio from them;
    3. border nodata: loop over the window's rows, testing the first and last row in full
       and the first and last pixel of every other row;
    4. ``rasterio.open`` the image, read all 3 bands of the window, close it, and test the
       border for black pixels (all bands 0) with the same per-row loop.
    Returns a DataFrame with the engine's columns (cls_<c>, class_entropy, nodata_ratio,
    border_nodata, black_border).
    """
    import pandas as pd
    import rasterio
    from rasterio.windows import Window

    rows_out = []
    for image_path, mask_path, row, col, size in zip(records["image_path"], records["mask_path"],
                                                     records["row_off"], records["col_off"], records["patch_size"]):
        window = Window(int(col), int(row), int(size), int(size))
        with rasterio.open(mask_path) as src:
            mask = src.read(1, window=window)
        values, counts = np.unique(mask, return_counts=True)
        out = {}
        valid = counts[values != nodata].sum()
        nodata_pixels = counts[values == nodata].sum()
        entropy = 0.0
        for v, c in zip(values.tolist(), counts.tolist()):
            if v == nodata:
                continue
            share = c / valid
            out[f"cls_{v}"] = share
            entropy -= share * math.log(share)
        out["class_entropy"] = max(entropy, 0.0)
        out["nodata_ratio"] = nodata_pixels / mask.size
        border = False
        for r, line in enumerate(mask):
            if r in (0, size - 1):
                border = border or bool((line == nodata).any())
            else:
                border = border or line[0] == nodata or line[-1] == nodata
        out["border_nodata"] = bool(border)
        with rasterio.open(image_path) as src:
            image = src.read(window=window)
        black = (image == 0).all(axis=0)
        flag = False
        for r, line in enumerate(black):
            if r in (0, size - 1):
                flag = flag or bool(line.any())
            else:
                flag = flag or bool(line[0]) or bool(line[-1])
        out["black_border"] = flag
        rows_out.append(out)
    table = pd.DataFrame(rows_out, index=records.index)
    classes = sorted((c for c in table.columns if c.startswith("cls_")), key=lambda c: int(c[4:]))
    table[classes] = table[classes].fillna(0.0)
    return table[classes + ["class_entropy", "nodata_ratio", "border_nodata", "black_border"]]


def stage_mask_stats_naive(data: Path, n: int, max_patches: int) -> dict:
    import pandas as pd

    records = _records(data, n)
    subset = records if max_patches <= 0 or n <= max_patches else records.iloc[:max_patches]
    with Timer() as t:
        table = naive_mask_stats(subset)
    result = {**t.as_dict(), "rows": len(table), "extrapolated": len(subset) < n}
    if len(subset) < n:
        result["measured_seconds"] = t.seconds
        result["seconds"] = t.seconds * n / len(subset)
    engine = pd.read_pickle(data / f"stats_{n}.pkl").loc[table.index]
    cols = [c for c in table.columns if c.startswith("cls_")]
    result["max_abs_diff_proportions"] = float(np.abs(engine[cols].to_numpy() - table[cols].to_numpy()).max())
    result["flags_equal"] = bool((engine[["border_nodata", "black_border"]].to_numpy()
                                  == table[["border_nodata", "black_border"]].to_numpy()).all())
    return result


def stage_composition(data: Path, n: int, repeats: int = 3) -> dict:
    import pandas as pd

    from balanced_sampling_plugin.composition import KMEANS_N_INIT, clr, cluster_compositions
    from balanced_sampling_plugin.records import class_columns

    stats = pd.read_pickle(data / f"stats_{n}.pkl")
    included = ~(stats["border_nodata"].to_numpy() | stats["black_border"].to_numpy())
    props = stats.loc[included, class_columns(stats.columns)].to_numpy()
    runs = []
    for _ in range(max(1, repeats)):  # KMeans (OpenMP) is very sensitive to other load: keep the fastest
        with Timer() as t:
            features = clr(props)
            result = cluster_compositions(features, "elbow", 4, 16)
        runs.append(t)
    t = min(runs, key=lambda r: r.seconds)
    labels = np.full(len(stats), -1, np.int64)
    labels[included] = result.labels
    np.save(data / f"labels_{n}.npy", labels)
    distinct = len(np.unique(features, axis=0))
    return {**t.as_dict(), "rows": int(included.sum()), "distinct": distinct, "k": result.k,
            "n_init": KMEANS_N_INIT, "all_seconds": [r.seconds for r in runs],
            "all_loads": [[r.load_before, r.load_after] for r in runs]}


def _weight_table(data: Path, n: int):
    import pandas as pd

    from balanced_sampling_plugin.composition import cluster_weights

    records = _records(data, n)
    stats = pd.read_pickle(data / f"stats_{n}.pkl")
    labels = np.load(data / f"labels_{n}.npy")
    table = pd.concat([records, stats], axis=1)
    table["excluded"] = labels < 0
    table["freq_cluster_id"] = labels
    weights = np.zeros(len(table))
    weights[labels >= 0] = cluster_weights(labels[labels >= 0])[1]
    table["freq_cluster_weight"] = weights
    # Stand-in for the kNN uniqueness score (its cost is benchmarked in the kNN sections).
    table["uniqueness_score"] = np.random.default_rng(0).uniform(0.05, 0.4, len(table))
    return table


def stage_combine_csv(data: Path, n: int) -> dict:
    from balanced_sampling_plugin.export import write_training_csv
    from balanced_sampling_plugin.weights import combine_weights

    table = _weight_table(data, n)
    with Timer() as t_weights:
        result = combine_weights(table, "rank_max")
    table["sampler_weight"] = result.weights
    path = data / f"train_{n}.csv"
    with Timer() as t_csv:
        write_training_csv(table, path)
    total = t_weights.seconds + t_csv.seconds
    return {"seconds": total, "load_before": t_weights.load_before, "load_after": t_csv.load_after,
            "weights_seconds": t_weights.seconds, "csv_seconds": t_csv.seconds,
            "csv_mb": path.stat().st_size / 2**20}


def stage_chain(data: Path, n: int) -> dict:
    """Footprints -> mask stats -> CLR + KMeans elbow -> rank_max weights -> CSV in one process."""
    import pandas as pd

    from balanced_sampling_plugin.composition import clr, cluster_compositions, cluster_weights
    from balanced_sampling_plugin.export import write_training_csv
    from balanced_sampling_plugin.footprints import build_footprints
    from balanced_sampling_plugin.mask_stats import compute_mask_stats
    from balanced_sampling_plugin.records import class_columns
    from balanced_sampling_plugin.weights import combine_weights

    with Timer() as t:
        fp = build_footprints([(str(data / "image.tif"), str(data / "mask.tif"))], PATCH)
        records = fp.records.iloc[:n]
        stats = compute_mask_stats(records, nodata_class=NODATA)
        table = pd.concat([records, stats], axis=1)
        included = ~(stats["border_nodata"].to_numpy() | stats["black_border"].to_numpy())
        clusters = cluster_compositions(clr(stats.loc[included, class_columns(stats.columns)].to_numpy()))
        weights = np.zeros(len(table))
        weights[included] = cluster_weights(clusters.labels)[1]
        table["excluded"] = ~included
        table["freq_cluster_weight"] = weights
        table["uniqueness_score"] = np.random.default_rng(0).uniform(0.05, 0.4, len(table))
        table["sampler_weight"] = combine_weights(table, "rank_max").weights
        write_training_csv(table, data / f"chain_{n}.csv")
    return t.as_dict()


def stage_embeddings(data: Path, n_patches: int, arch: str, models: Path) -> dict:
    import pandas as pd
    import torch
    from scipy.stats import spearmanr

    from balanced_sampling_plugin.embeddings import extract_embeddings, load_model
    from balanced_sampling_plugin.patch_images import PatchReader
    from balanced_sampling_plugin.random_dinov2 import build_random_dinov2
    from balanced_sampling_plugin.uniqueness import uniqueness_scores

    folder = build_random_dinov2(models / f"dinov2-{arch}", arch)
    image = data / "embed_image.tif"
    make_embed_image(image, n_patches)
    records = pd.DataFrame({
        "image_path": str(image), "mask_path": str(image),
        "row_off": [(i // 8) * EMBED_PATCH for i in range(n_patches)],
        "col_off": [(i % 8) * EMBED_PATCH for i in range(n_patches)],
        "patch_size": EMBED_PATCH,
    })
    out = {"arch": arch, "patches": n_patches, "threads": torch.get_num_threads()}
    # Warm-up (page cache, weights file, oneDNN kernels) so the timed runs compare fairly.
    extract_embeddings(records.iloc[:8], folder, batch_size=8)
    with Timer() as t:
        engine = extract_embeddings(records, folder, batch_size=32, num_workers=2).embeddings
    out.update(t.as_dict("engine_"))
    out["engine_pps"] = n_patches / t.seconds

    # Plain loop: same model and inputs, pixels already in memory, fp32 / bf16 autocast.
    model, spec = load_model(folder, True, "cpu")
    with PatchReader((1, 2, 3)) as reader:
        inputs = torch.stack([spec(reader.read(str(image), r, c, EMBED_PATCH))
                              for r, c in zip(records["row_off"], records["col_off"])])

    def run(bf16: bool):
        vectors = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, n_patches, 32):
                hidden = model(pixel_values=inputs[start:start + 32]).last_hidden_state
                vectors.append(hidden[:, 0].float().numpy())
        return np.concatenate(vectors)

    run(True)  # warm-up of the bf16 kernels
    with Timer() as t:
        plain = run(False)
    out.update(t.as_dict("plain_"))
    out["plain_pps"] = n_patches / t.seconds
    with Timer() as t:
        bf16 = run(True)
    out.update(t.as_dict("bf16_"))
    out["bf16_pps"] = n_patches / t.seconds
    k = 5
    u_fp32 = uniqueness_scores(plain, k, backend="sklearn")
    out["spearman_bf16"] = float(spearmanr(u_fp32, uniqueness_scores(bf16, k, backend="sklearn")).statistic)
    out["spearman_engine_vs_plain"] = float(spearmanr(u_fp32, uniqueness_scores(engine, k, backend="sklearn")).statistic)
    out["max_abs_engine_vs_plain"] = float(np.abs(engine - plain).max())
    return out


def run_stage(args) -> None:
    data = Path(args.data) / f"n{args.n}" if args.stage not in ("embeddings",) else Path(args.data)
    if args.stage == "mosaic":
        result = make_mosaic(data, args.n)
        result = {"seconds": result["write_seconds"], **result}
    elif args.stage == "footprints":
        result = stage_footprints(data, args.n)
    elif args.stage == "mask_stats":
        result = stage_mask_stats(data, args.n)
    elif args.stage == "mask_stats_naive":
        result = stage_mask_stats_naive(data, args.n, args.naive_max)
    elif args.stage == "composition":
        result = stage_composition(data, args.n, args.repeats)
    elif args.stage == "combine_csv":
        result = stage_combine_csv(data, args.n)
    elif args.stage == "chain":
        result = stage_chain(data, args.n)
    elif args.stage == "embeddings":
        result = stage_embeddings(data, args.embed_patches, args.arch, Path(args.data) / "models")
    else:
        raise SystemExit(f"unknown stage {args.stage}")
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver


def spawn(stage: str, args, n: int = 0, **extra) -> dict:
    """Run one stage in a fresh interpreter; return its RESULT dict (or an error entry)."""
    command = [sys.executable, __file__, "--stage", stage, "--n", str(n), "--data", args.data,
               "--naive-max", str(args.naive_max), "--embed-patches", str(args.embed_patches),
               "--repeats", str(args.repeats)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    label = f"{stage} N={n}" + "".join(f" {v}" for v in extra.values())
    print(f"[{time.strftime('%H:%M:%S')}] {label} (load {load1()}) ...", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            print(f"    {json.dumps(result)}", flush=True)
            return result
    print(proc.stdout[-2000:], proc.stderr[-4000:], flush=True)
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1],
            "seconds": time.perf_counter() - start}


def fmt(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render(results: dict, args) -> str:
    lines = [
        f"Machine: {machine()}; 24 GB RAM; shared with other benchmark jobs, so the 1-min load average "
        "(`os.getloadavg`, before -> after) is given next to each timing. Generated by "
        "`bench/bench_stages.py` (`--sizes " + " ".join(str(n) for n in results["sizes"]) + "`).",
        "",
        "Data: one mask mosaic (uint8, nodata 0, classes 1-6, 7 px class cells + 2% salt pixels, so "
        "compositions are nearly all distinct) and one 3-band uint8 image mosaic of "
        "ceil(sqrt(N))^2 windows of **64 px** (GeoTIFF, deflate, tiled 256), written once per N. "
        "64 px instead of 256 px keeps 155k patches at 0.6 Gpx instead of 10 Gpx: the per-patch "
        "overhead (open, window read, bookkeeping) scales with the number of windows, which is what "
        "these rows measure; pixel counting on 256 px patches costs ~16x more pixels. Each stage runs "
        "in a fresh process; peak RSS = `ru_maxrss` of that process (includes the interpreter, "
        "numpy/pandas/rasterio, ~100-150 MB).",
        "",
        "| N | stage | time (s) | peak RSS (MB) | load 1-min | notes |",
        "|---:|---|---:|---:|---|---|",
    ]
    for n in results["sizes"]:
        per = results["stages"].get(str(n), {})
        for name, label in (("mosaic", "write synthetic mosaics (not an engine stage)"),
                            ("footprints", "1. footprints (`build_footprints`)"),
                            ("mask_stats", "2. mask statistics (`compute_mask_stats`, 2 threads)"),
                            ("mask_stats_naive", "2. naive baseline (per-patch open + np.unique)"),
                            ("composition", "3. CLR + KMeans elbow k=4..16"),
                            ("combine_csv", "5. `combine_weights(rank_max)` + `write_training_csv`"),
                            ("chain", "6. whole chain without embeddings (1 process)")):
            r = per.get(name)
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {n} | {label} | failed | | | {r['error']} |")
                continue
            notes = ""
            if name == "mosaic":
                notes = f"{r['side_px']}² px, mask {r['mask_mb']:.0f} MB, image {r['image_mb']:.0f} MB (cached runs: reused)"
            elif name == "footprints":
                notes = r.get("note", "")
            elif name == "mask_stats":
                naive = per.get("mask_stats_naive")
                if naive and "error" not in naive:
                    notes = f"**{naive['seconds'] / r['seconds']:.1f}x** faster than the naive baseline"
            elif name == "mask_stats_naive":
                notes = (f"same proportions (max abs diff {r['max_abs_diff_proportions']:.1e}), "
                         f"flags equal: {r['flags_equal']}")
                if r.get("extrapolated"):
                    notes += f"; measured {r['measured_seconds']:.1f} s on the first {r['rows']} patches, scaled to N"
            elif name == "composition":
                notes = f"{r['rows']} included rows, {r['distinct']} distinct, k={r['k']}, n_init={r['n_init']}"
                if len(r.get("all_seconds", [])) > 1:
                    notes += (f"; fastest of {len(r['all_seconds'])} runs, all: "
                              + ", ".join(f"{v:.1f}" for v in r["all_seconds"]) + " s")
            elif name == "combine_csv":
                notes = (f"weights {r['weights_seconds']:.2f} s + CSV {r['csv_seconds']:.2f} s "
                         f"({r['csv_mb']:.0f} MB); QGIS field write measured separately")
            load = f"{r['load_before']:.2f} -> {r['load_after']:.2f}"
            lines.append(f"| {n} | {label} | {fmt(r['seconds'], 2)} | {fmt(r.get('peak_rss_mb'), 0)} | {load} | {notes} |")
    emb = results.get("embeddings", {})
    if emb:
        lines += [
            "",
            f"Embedding throughput (patches/s) on {args.embed_patches} patches of 224 px, batch 32, CPU, "
            "random-weight DINOv2 with the real architecture (`random_dinov2.build_random_dinov2`; same "
            "FLOPs as the released weights, not semantic features). *engine* = the whole "
            "`extract_embeddings` call (windowed reads on 2 threads, preprocessing, model; after a "
            "warm-up call; includes the model load). *plain fp32* / *bf16* = a bare loop over the "
            "same model on inputs already in memory (`torch.inference_mode`, bf16 = "
            "`torch.autocast('cpu', dtype=torch.bfloat16)` around the model call; the engine has no "
            "bf16 option). Spearman = rank agreement of the kNN uniqueness scores (k=5, exact) of "
            "these embeddings with the plain fp32 ones.",
            "",
            "| model | engine (p/s) | plain fp32 (p/s) | bf16 autocast (p/s) | Spearman bf16 vs fp32 | "
            "Spearman engine vs plain | peak RSS (MB) | load 1-min |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for arch, r in emb.items():
            if "error" in r:
                lines.append(f"| dinov2-{arch} | failed: {r['error']} | | | | | | |")
                continue
            lines.append(
                f"| dinov2-{arch} | {r['engine_pps']:.2f} | {r['plain_pps']:.2f} | {r['bf16_pps']:.2f} | "
                f"{r['spearman_bf16']:.4f} | {r['spearman_engine_vs_plain']:.4f} | {r['peak_rss_mb']:.0f} | "
                f"{r['engine_load_before']:.2f} -> {r['bf16_load_after']:.2f} |"
            )
    if PLOT.exists():
        lines += ["", "![Time per stage vs N](benchmark_stages.png)"]
    return "\n".join(lines)


def plot(results: dict) -> None:
    names = {"footprints": "footprints", "mask_stats": "mask stats (engine)",
             "mask_stats_naive": "mask stats (naive baseline)", "composition": "CLR + KMeans elbow",
             "combine_csv": "weights + CSV", "chain": "whole chain (no embeddings)"}
    series = []
    for key, label in names.items():
        points = [(n, results["stages"][str(n)][key]["seconds"]) for n in results["sizes"]
                  if key in results["stages"].get(str(n), {}) and "error" not in results["stages"][str(n)][key]]
        if points:
            series.append((label, *zip(*points), "--" if "naive" in key else "-"))
    save_log_log_plot(PLOT, series, "patches N (64 px windows)", "wall time (s)",
                      f"Balanced Sampling stages, {os.cpu_count()} cores (shared machine)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--quick", action="store_true", help="N = 10k only")
    parser.add_argument("--data", default="/tmp/bs_bench_stages", help="synthetic data folder (reused)")
    parser.add_argument("--naive-max", type=int, default=0,
                        help="run the naive baseline on at most this many patches and scale to N (0 = all)")
    parser.add_argument("--embed-patches", type=int, default=64)
    parser.add_argument("--archs", nargs="*", default=["small", "base"], help="embedding models; none to skip")
    parser.add_argument("--no-chain", action="store_true", help="skip the whole-chain run")
    parser.add_argument("--repeats", type=int, default=3, help="KMeans elbow runs per N (the fastest is reported)")
    parser.add_argument("--only", nargs="+", metavar="STAGE", help="run only these stages (mosaic is reused)")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--results", default=None, help="JSON file of results to merge into / write")
    # internal: run one stage
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--arch", default="small", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage:
        run_stage(args)
        return
    sizes = [10_000] if args.quick else sorted(args.sizes)
    results_path = Path(args.results or Path(args.data) / "results.json")
    Path(args.data).mkdir(parents=True, exist_ok=True)
    results = json.loads(results_path.read_text()) if results_path.exists() else {"stages": {}, "embeddings": {}}
    for n in sizes:
        per = results["stages"].setdefault(str(n), {})
        mosaic = spawn("mosaic", args, n)
        if not (mosaic.get("cached") and "mosaic" in per):  # keep the timing of the run that wrote it
            per["mosaic"] = mosaic
        stages = ("footprints", "mask_stats", "mask_stats_naive", "composition", "combine_csv") + (
            () if args.no_chain else ("chain",))
        for stage in [s for s in stages if not args.only or s in args.only]:
            per[stage] = spawn(stage, args, n)
            results_path.write_text(json.dumps(results, indent=1))
    for arch in args.archs:
        results["embeddings"][arch] = spawn("embeddings", args, 0, arch=arch)
        results_path.write_text(json.dumps(results, indent=1))
    results["sizes"] = sorted({int(n) for n in results["stages"]})
    results_path.write_text(json.dumps(results, indent=1))
    if not args.no_doc:
        plot(results)
    body = render(results, args)
    print(body)
    if not args.no_doc:
        write_section("Stages", body)


if __name__ == "__main__":
    main()
