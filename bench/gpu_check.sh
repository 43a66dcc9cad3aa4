#!/usr/bin/env bash
# The GPU check of issue 16, in at most 5 minutes on a machine with a CUDA GPU:
#   DINOv2-small/base extraction throughput per precision (fp32, fp16, bf16) and batch size (32, 128, the
#   largest that fits), the engine end to end with its window readers, and the exact kNN `torch` backend
#   against faiss exact at 155 000 x 768 (only when the engine has that backend).
# Results are appended to docs/benchmarks.md ("GPU check (issue 16): <GPU>"). Usage: bash bench/gpu_check.sh
# PYTHON picks the interpreter (default: .venv/bin/python if it has torch, else python3); BUDGET_S the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONWARNINGS=ignore
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null && PYTHON=.venv/bin/python
fi
"$PYTHON" - <<'PY' || exit 2
import importlib, sys
missing = [m for m in ("torch", "transformers", "rasterio", "pandas", "pyarrow", "faiss", "scipy")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: {sys.executable} lacks {', '.join(missing)}")
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU (CPU build, or no driver)")
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
if "$PYTHON" -c "import sys; sys.path.insert(0, '.'); from balanced_sampling_plugin.uniqueness import BACKENDS; \
sys.exit(0 if 'torch' in BACKENDS else 1)" 2>/dev/null; then knn=155000; else
  echo "gpu_check: no kNN backend 'torch' in this checkout; the kNN line is skipped"; knn=0; fi
started=$(date +%s)
timeout "${BUDGET_S:-290}" "$PYTHON" bench/bench_embeddings_gpu.py --knn-n "$knn" "$@"
echo "gpu_check: done in $(( $(date +%s) - started )) s; see docs/benchmarks.md"
