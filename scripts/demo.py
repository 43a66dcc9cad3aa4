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


def summarize(clusters_path: str) -> None:
    from balanced_sampling_plugin.records import class_columns

    table = read_layer(clusters_path)
    included = table[table["excluded"] == 0]
    print(f"\n{len(table)} patches, {len(table) - len(included)} excluded "
          f"({(table['exclusion_reason'] != '').sum()} with a reason: "
          f"{', '.join(sorted(set(','.join(table['exclusion_reason']).split(',')) - {''}))})")
    sizes = included.groupby("freq_cluster_id").size().sort_values(ascending=False)
    print(f"{len(sizes)} composition clusters, sizes {', '.join(map(str, sizes.tolist()))}")
    print("Class share of valid pixels (mean over included patches) and cluster weight range:")
    for column in class_columns(table.columns):
        print(f"  {column:<8} {included[column].mean():7.2%}")
    print(f"  freq_cluster_weight from {included['freq_cluster_weight'].min():.4f} "
          f"to {included['freq_cluster_weight'].max():.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", default=os.path.join(ROOT, "demo_data"))
    parser.add_argument("--tiles", type=int, default=6)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--patch-size", type=int, default=64)
    args = parser.parse_args(argv)
    folder = os.path.abspath(args.folder)
    os.makedirs(folder, exist_ok=True)

    print(f"1. Synthetic dataset -> {folder}")
    data = make_synthetic_dataset(folder, n_tiles=args.tiles, tile_size=args.tile_size)
    print(f"   {len(data.images)} image/mask GeoTIFF pairs, {data.crs}, 6 classes + nodata 0")

    print("2. Plugin algorithms through qgis_process")
    footprints = os.path.join(folder, "footprints.gpkg")
    clusters = os.path.join(folder, "composition_clusters.gpkg")
    qgis_process("balanced_sampling:createpatchfootprints",
                 IMAGE_FOLDER=os.path.join(folder, "images"), MASK_FOLDER=os.path.join(folder, "masks"),
                 PATCH_SIZE=args.patch_size, OUTPUT=footprints)
    qgis_process("balanced_sampling:computecompositionclusters", INPUT=footprints, OUTPUT=clusters)

    summarize(clusters)
    print("\nOutputs (open them in QGIS):")
    print(f"  patch footprints      {footprints}")
    print(f"  composition clusters  {clusters}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
