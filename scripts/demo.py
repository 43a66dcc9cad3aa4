"""`make demo`: generate a synthetic imbalanced dataset and run the plugin on it through qgis_process."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from balanced_sampling_plugin.synthetic import make_synthetic_dataset  # noqa: E402

QGIS_PROCESS = os.path.join(ROOT, "scripts", "qgis_process.sh")


def qgis_process(algorithm: str, **parameters) -> dict:
    """Run one algorithm headless and return its JSON answer; exit with its log on failure."""
    args = [QGIS_PROCESS, "run", algorithm, "--json", "--"]
    args += [f"{key}={value}" for key, value in parameters.items()]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{algorithm} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    answer = json.loads(proc.stdout)
    print(f"  {algorithm:<48} {time.perf_counter() - started:6.1f} s")
    for line in answer.get("log", {}).get("info", []) if isinstance(answer.get("log"), dict) else []:
        print(f"      {line}")
    return answer


def read_layer(path: str):
    """Attribute table of a GeoPackage layer as a pandas DataFrame."""
    import pandas as pd
    from osgeo import ogr

    ds = ogr.Open(path)
    layer = ds.GetLayer(0)
    rows = [feature.items() for feature in layer]
    return pd.DataFrame(rows)


def summarize(weights_path: str, csv_path: str) -> None:
    import numpy as np
    import pandas as pd

    from balanced_sampling_plugin.records import class_columns
    from balanced_sampling_plugin.weights import effective_sample_size, expected_class_shares, valid_pixel_counts
    from balanced_sampling_plugin.weights.targets import solve_target

    table = read_layer(weights_path)
    included = table[table["excluded"] == 0]
    print(f"\n{len(table)} patches, {len(table) - len(included)} excluded "
          f"({(table['exclusion_reason'] != '').sum()} with a reason: "
          f"{', '.join(sorted(set(','.join(table['exclusion_reason']).split(',')) - {''}))})")
    sizes = included.groupby("freq_cluster_id").size().sort_values(ascending=False)
    print(f"{len(sizes)} composition clusters, sizes {', '.join(map(str, sizes.tolist()))}")
    classes = class_columns(table.columns)
    proportions = included[classes].to_numpy(dtype=float)
    weights = included["sampler_weight"].to_numpy(dtype=float)
    valid = valid_pixel_counts(included)
    uniform = expected_class_shares(proportions, np.ones(len(included)), valid)
    sampled = expected_class_shares(proportions, weights, valid)
    print("Expected pixel share per epoch:      uniform    sampler    lift")
    for column, u, w in zip(classes, uniform, sampled):
        print(f"  {column:<32} {u:9.2%}  {w:9.2%}  {w / u:5.2f}x")
    ess = effective_sample_size(weights)
    print(f"Effective sample size {ess:.0f} of {len(included)} included patches ({ess / len(included):.0%}); "
          f"largest weight {weights.max():.2f} (mean 1)")
    best = solve_target(proportions, valid, min_ess=ess / len(included)).shares
    print(f"At this ESS the most balanced weighting (target_shares) gives the smallest class {best.min():.2%} "
          f"(this run: {sampled.min():.2%}); the report's frontier shows every method against that limit")
    csv = pd.read_csv(csv_path)
    print(f"Training CSV: {len(csv)} rows, columns {', '.join(csv.columns[:6])}, …")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", default=os.path.join(ROOT, "demo_data"))
    parser.add_argument("--tiles", type=int, default=6)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--method", default="class_balanced", help="sampling method of the final weights")
    parser.add_argument("--dino-model", default=os.environ.get("DINO_MODEL", ""),
                        help="DINOv2 short name, hub id or saved folder (default: a random dinov2-small, offline)")
    args = parser.parse_args(argv)
    folder = os.path.abspath(args.folder)
    os.makedirs(folder, exist_ok=True)

    print(f"1. Synthetic dataset -> {folder}")
    data = make_synthetic_dataset(folder, n_tiles=args.tiles, tile_size=args.tile_size)
    print(f"   {len(data.images)} image/mask GeoTIFF pairs, {data.crs}, 6 classes + nodata 0")

    model = args.dino_model
    if not model:
        from balanced_sampling_plugin.random_dinov2 import build_random_dinov2

        model = build_random_dinov2(os.path.join(folder, "random_dinov2_small"), "small")
        print("   No DINOv2 weights offline: using a randomly initialised dinov2-small architecture, so uniqueness")
        print("   reflects random image features. Set DINO_MODEL=<folder saved with save_pretrained> for real ones.")

    print("2. Plugin algorithms through qgis_process")
    from balanced_sampling_plugin.weights import SAMPLING_METHODS

    out = {name: os.path.join(folder, name) for name in (
        "footprints.gpkg", "composition_clusters.gpkg", "uniqueness.gpkg", "sampler_weights.gpkg",
        "balanced_train.csv", "balanced_report.html", "embeddings.parquet")}
    qgis_process("balanced_sampling:createpatchfootprints",
                 IMAGE_FOLDER=os.path.join(folder, "images"), MASK_FOLDER=os.path.join(folder, "masks"),
                 PATCH_SIZE=args.patch_size, OUTPUT=out["footprints.gpkg"])
    qgis_process("balanced_sampling:computecompositionclusters", INPUT=out["footprints.gpkg"],
                 OUTPUT=out["composition_clusters.gpkg"])
    qgis_process("balanced_sampling:computedinov2uniqueness", INPUT=out["composition_clusters.gpkg"],
                 DINO_MODEL=model, BATCH_SIZE=32, PARQUET_PATH=out["embeddings.parquet"],
                 OUTPUT=out["uniqueness.gpkg"])
    qgis_process("balanced_sampling:combinesamplerweights", INPUT=out["uniqueness.gpkg"],
                 SAMPLING_METHOD=SAMPLING_METHODS.index(args.method), OUTPUT=out["sampler_weights.gpkg"],
                 OUTPUT_CSV=out["balanced_train.csv"], OUTPUT_REPORT=out["balanced_report.html"])

    print(f"\nSampling method: {args.method}")
    summarize(out["sampler_weights.gpkg"], out["balanced_train.csv"])
    print("\nOutputs:")
    print(f"  weighted patches (style by sampler_weight in QGIS)  {out['sampler_weights.gpkg']}")
    print(f"  training CSV for WeightedRandomSampler             {out['balanced_train.csv']}")
    print(f"  report (every method side by side)                 {out['balanced_report.html']}")
    print(f"  embedding cache (re-runs skip extraction)          {out['embeddings.parquet']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
