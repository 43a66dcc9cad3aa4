"""Profile one uniqueness kNN run with pyinstrument and write the call tree to docs/profiles/.

Usage (from the repository root; ``make profile`` installs pyinstrument and runs the set
quoted in docs/benchmarks.md)::

    .venv/bin/python bench/profile_knn.py --backend nndescent --data scenes --n 155000
    # the same call through another checkout of the engine (e.g. an older commit):
    git worktree add /tmp/before <commit>
    .venv/bin/python bench/profile_knn.py --backend hnsw --root /tmp/before --name knn_hnsw_before

The embeddings are the synthetic sets of ``bench_knn.py``; only the ``knn_cosine`` call is
profiled (not the data generation).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROFILES = ROOT / "docs" / "profiles"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="nndescent")
    parser.add_argument("--data", default="scenes", choices=["scenes", "blobs"])
    parser.add_argument("--n", type=int, default=155_000)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose engine is profiled")
    parser.add_argument("--name", help="output file stem (default: knn_<backend>_<data>_<n>)")
    args = parser.parse_args(argv)

    try:
        from pyinstrument import Profiler
    except ImportError:
        sys.exit("pyinstrument is not installed: .venv/bin/pip install pyinstrument (or run `make profile`).")
    sys.path.insert(0, str(HERE))
    from bench_knn import DATASETS  # noqa: E402  (generator only; independent of --root)

    x = DATASETS[args.data](args.n)
    # bench_knn imported this checkout's engine: drop it so that --root's is the one profiled.
    for module in [m for m in sys.modules if m.split(".")[0] == "balanced_sampling_plugin"]:
        del sys.modules[module]
    sys.path.insert(0, str(args.root.resolve()))
    from balanced_sampling_plugin import uniqueness  # noqa: E402

    knn_cosine = uniqueness.knn_cosine

    profiler = Profiler(interval=0.005)
    start = time.perf_counter()
    with profiler:
        knn_cosine(x, 5, backend=args.backend)
    seconds = time.perf_counter() - start
    name = args.name or f"knn_{args.backend}_{args.data}_{args.n}"
    PROFILES.mkdir(parents=True, exist_ok=True)
    out = PROFILES / f"{name}.txt"
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    out.write_text(f"knn_cosine(backend={args.backend!r}) on {args.data} N={args.n}, engine from "
                   f"{Path(uniqueness.__file__).parent}: {seconds:.1f} s wall\n\n{text}")
    print(f"{seconds:.1f} s; profile written to {out}")


if __name__ == "__main__":
    main()
