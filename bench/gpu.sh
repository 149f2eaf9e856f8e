#!/usr/bin/env bash
# GPU benchmark of the default VAE (bench/gpu_bench.py says what it measures):
#   the card's measured bf16 matmul rate next to its datasheet peak; training throughput on full
#   instacart (users/s, TFLOP/s, fraction of both ceilings) at batch 500 and 4096; the time to
#   train the default model to its best validation NDCG@100 on full instacart; and online-retail
#   quality trained on CUDA (bf16) against EASE and against float32 CPU scores of the same net.
# Writes bench/results/gpu.json (GPU_BENCH_JSON overrides) after every stage.
# Usage: bench/gpu.sh [PEAK_TFLOPS]   (default 989 = H200/H100 SXM bf16 dense, datasheet)
# Exits 0 with "skipped: no CUDA device" where torch sees no GPU (nothing is written then).
# GPU_BENCH_SMOKE=1 runs a tiny CPU version that checks the script, not the hardware.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
PEAK_TFLOPS="${1:-989}" PYTHONPATH=. PYTHONUNBUFFERED=1 exec "$PY" bench/gpu_bench.py
