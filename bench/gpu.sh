#!/usr/bin/env bash
# GPU benchmark of the default VAE on full instacart (131K users x 39K items):
#   training throughput (users/s), achieved TFLOP/s vs the card's bf16 dense peak, and the time to
#   train to the best validation NDCG@100. Writes bench/results/gpu.json.
# Usage: bench/gpu.sh [PEAK_TFLOPS]   (default 989 = H200 bf16 dense)
# Exits 0 with "skipped: no CUDA device" where torch sees no GPU (nothing is written then).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
PEAK="${1:-989}"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "skipped: no CUDA device visible to torch (bench/gpu.sh needs an NVIDIA GPU)"
  exit 0
fi

PEAK_TFLOPS="$PEAK" PYTHONPATH=. "$PY" - <<'EOF'
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, "bench")
from ml_common import RESULTS, load_split, write_json
from recommendations.ml.metrics import evaluate_scores
from recommendations.ml.models import MultVAE
from recommendations.ml.vae import VAEConfig, train_vae

peak = float(os.environ["PEAK_TFLOPS"])
loaded = load_split("instacart", seed=0)
if loaded is None:
    sys.exit("instacart not found: set RECOMMENDATIONS_DATASETS_DIR")
split, info = loaded
n_users, n_items = split.train.shape
nnz_per_user = split.train.nnz / n_users
cfg = MultVAE().config
print(f"device {torch.cuda.get_device_name(0)}; instacart {info}; config {cfg}", flush=True)


def flops_per_user(c: VAEConfig) -> float:
    """Multiply-adds x2 of one training step per user, forward + backward (~3x forward)."""
    h, z = c.hidden, c.latent
    enc = nnz_per_user * h + (h * 2 * z if c.encoder == "mult" else 4 * h * h + 2 * h * z)
    dec = (z * h + h * n_items) if c.decoder_hidden else z * n_items
    return 3 * 2 * (enc + dec)


# 1) throughput: epochs without validation; the first epoch includes CUDA warm-up
tcfg = VAEConfig.from_dict({**cfg.to_dict(), "epochs": 3, "skip_l2": None})
tcfg = tcfg.resolve_width(n_items)
torch.cuda.synchronize()
_, hist, dev, _ = train_vae(split.train, None, tcfg)
torch.cuda.synchronize()
steady = hist[1:]
epoch_s = float(np.mean([h["seconds"] for h in steady]))
users_per_s = n_users / epoch_s
tflops = users_per_s * flops_per_user(tcfg) / 1e12
# 2) full training with early stopping on validation, as the default model does it
t0 = time.perf_counter()
m = MultVAE().fit(split.train, split.validation)
torch.cuda.synchronize()
fit_s = time.perf_counter() - t0
test = evaluate_scores(m.score, *split.test)
out = {
    "device": torch.cuda.get_device_name(0), "dataset": "instacart", "info": info,
    "config": m.config.to_dict(), "epoch_seconds_steady": epoch_s, "users_per_s": users_per_s,
    "flops_per_user_step": flops_per_user(tcfg), "achieved_tflops": tflops,
    "peak_tflops_bf16_dense": peak, "fraction_of_peak": tflops / peak,
    "fit_seconds": fit_s, "best_epoch": m.best_epoch_,
    "time_to_best_s": m.history_[m.best_epoch_ - 1]["elapsed"], "epochs_run": len(m.history_),
    "test": test, "max_memory_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
    "note": "FLOPs are counted analytically from layer sizes (sparse first layer = nnz*hidden);"
            " softmax, Adam and the validation passes are not counted but are in the time.",
}
write_json(RESULTS / "gpu.json", out)
print(json.dumps({k: v for k, v in out.items() if k not in ("config", "info")}, indent=2))
EOF
