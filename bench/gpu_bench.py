"""GPU benchmark of the default ``vae``: what bench/gpu.sh runs (see its header).

Measured side by side in one run, on the card as found:

1. the card's own ceiling: a bf16 8192^3 matrix product through torch (random data, median of
   timed repeats after warm-ups), next to the datasheet's dense bf16 peak;
2. training throughput on full instacart (users/s, analytically counted TFLOP/s, and both as a
   fraction of the two ceilings), at the default batch (500) and at a large one;
3. the default model trained to its best validation NDCG@100 on full instacart;
4. the same code's quality on CUDA (bf16 autocast) against float32 on CPU: online-retail test
   NDCG@100 of the default hybrid next to EASE's, and the CUDA scores of one trained network
   against the same weights scored in float32 on the CPU.

Writes the JSON after every stage (``GPU_BENCH_JSON``, default bench/results/gpu.json), so a
run cut short still leaves what it measured. ``GPU_BENCH_SMOKE=1`` runs a tiny version on CPU:
it checks the script itself, not the GPU, and its numbers mean nothing.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ml_common import RESULTS, load_split, write_json

from recommendations.ml.metrics import evaluate_scores
from recommendations.ml.models import EASE, MultVAE
from recommendations.ml.vae import VAEConfig, score_users, train_vae

SMOKE = os.environ.get("GPU_BENCH_SMOKE") == "1"
OUT_PATH = Path(os.environ.get("GPU_BENCH_JSON", RESULTS / "gpu.json"))
PEAK_TFLOPS = float(os.environ.get("PEAK_TFLOPS", "989"))  # H200 SXM dense bf16, datasheet
DEVICE = torch.device("cpu" if SMOKE else "cuda")
T0 = time.perf_counter()
out: dict[str, Any] = {}


def stage(name: str, result: dict[str, Any]) -> None:
    out[name] = result
    out["wall_s"] = time.perf_counter() - T0
    write_json(OUT_PATH, out)
    print(f"[{out['wall_s']:6.1f}s] {name}: "
          f"{ {k: v for k, v in result.items() if not isinstance(v, (dict, list))} }",
          flush=True)


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def measured_matmul_tflops(n: int = 8192, warmup: int = 3, repeats: int = 10) -> float:
    """Median bf16 n^3 product rate on random data: the ceiling this card shows through torch."""
    a = torch.randn(n, n, device=DEVICE, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=DEVICE, dtype=torch.bfloat16)
    for _ in range(warmup):
        a @ b
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / float(np.median(times)) / 1e12


def flops_per_user(cfg: VAEConfig, nnz_per_user: float, n_items: int) -> float:
    """Multiply-adds x 2 of one training step for one user, forward and backward.

    The sparse first layer costs nnz * hidden forward and the same again for its weight
    gradient (no gradient flows into the input); every dense layer costs 3x its forward
    (forward, input gradient, weight gradient). Softmax, KL and Adam are not counted.
    """
    h, z = cfg.hidden, cfg.latent
    first = 2 * nnz_per_user * h
    encoder_rest = h * 2 * z if cfg.encoder == "mult" else 4 * h * h + 2 * h * z
    decoder = (z * h + h * n_items) if cfg.decoder_hidden else z * n_items
    return 2 * (first + 3 * (encoder_rest + decoder))


def throughput(train: sp.csr_matrix, batch_size: int, epochs: int, ceiling: float) -> dict:
    """Steady users/s of the default architecture without validation (epoch 1 is warm-up)."""
    n_users, n_items = train.shape
    cfg = VAEConfig.from_dict({**MultVAE().config.to_dict(), "epochs": epochs, "skip_l2": None,
                               "batch_size": batch_size}).resolve_width(n_items)
    sync()
    _, hist, dev, _ = train_vae(train, None, cfg, device=str(DEVICE))
    sync()
    epoch_s = float(np.mean([h["seconds"] for h in hist[1:]]))
    users_per_s = n_users / epoch_s
    per_user = flops_per_user(cfg, train.nnz / n_users, n_items)
    tflops = users_per_s * per_user / 1e12
    return {
        "batch_size": batch_size, "epochs": epochs, "epoch_seconds": [h["seconds"] for h in hist],
        "epoch_seconds_steady": epoch_s, "users_per_s": users_per_s,
        "flops_per_user_step": per_user, "achieved_tflops": tflops,
        "fraction_of_datasheet_peak": tflops / PEAK_TFLOPS,
        "fraction_of_measured_matmul": tflops / ceiling, "hidden": cfg.hidden,
        "latent": cfg.latent, "device": str(dev),
    }


def full_training(split) -> dict:
    """The default model as the nightly task trains it: early stopping on validation."""
    sync()
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    m = MultVAE(**({"epochs": 2} if SMOKE else {})).fit(split.train, split.validation,
                                                         device=str(DEVICE))
    sync()
    fit_s = time.perf_counter() - t
    test = evaluate_scores(m.score, *split.test)
    h = m.history_
    return {
        "fit_seconds": fit_s, "best_epoch": m.best_epoch_, "epochs_run": len(h),
        "time_to_best_s": h[m.best_epoch_ - 1]["elapsed"],
        "mean_epoch_s": float(np.mean([r["seconds"] for r in h])), "test": test,
        "hybrid_term": m.net_.skip_B is not None, "device": m.device_,
        "max_memory_allocated_mib": (torch.cuda.max_memory_allocated() / 2**20
                                     if DEVICE.type == "cuda" else None),
        "config": m.config.to_dict(), "history": h,
    }


def cuda_vs_cpu_quality() -> dict:
    """online-retail: the default hybrid trained on this device vs EASE, and bf16 vs float32
    scores of the same trained network (relative error, top-100 overlap)."""
    loaded = load_split("online-retail", seed=0)
    if loaded is None:
        return {"status": "skipped: online-retail not found"}
    split, info = loaded
    t = time.perf_counter()
    vae = MultVAE(**({"epochs": 2} if SMOKE else {})).fit(split.train, split.validation,
                                                           device=str(DEVICE))
    vae_fit = time.perf_counter() - t
    vae_test = evaluate_scores(vae.score, *split.test)
    ease = EASE().fit(split.train)
    ease_test = evaluate_scores(ease.score, *split.test)
    fold_in = sp.csr_matrix(split.test[0], dtype=np.float32)
    on_device = score_users(vae.net_, fold_in, DEVICE)
    cpu_net = vae.net_.to("cpu").float()
    on_cpu = score_users(cpu_net, fold_in, torch.device("cpu"))
    rel = float(np.linalg.norm(on_device - on_cpu) / np.linalg.norm(on_cpu))
    top_dev = np.argsort(-on_device, axis=1)[:, :100]
    top_cpu = np.argsort(-on_cpu, axis=1)[:, :100]
    overlap = float(np.mean([len(np.intersect1d(a, b)) / 100
                             for a, b in zip(top_dev, top_cpu, strict=True)]))
    cpu_test = evaluate_scores(lambda f: score_users(cpu_net, f, torch.device("cpu")),
                               *split.test)
    return {
        "info": info, "vae_fit_seconds": vae_fit, "vae_best_epoch": vae.best_epoch_,
        "vae_test": vae_test, "ease_test": ease_test,
        "vae_over_ease_ndcg@100": vae_test["ndcg@100"] / ease_test["ndcg@100"],
        "same_weights_scored_float32_cpu_test": cpu_test,
        "device_vs_cpu_scores_relative_error": rel, "device_vs_cpu_top100_overlap": overlap,
    }


def main() -> None:
    if not SMOKE and not torch.cuda.is_available():
        print("skipped: no CUDA device visible to torch (bench/gpu.sh needs an NVIDIA GPU)")
        return
    out["device"] = torch.cuda.get_device_name(0) if DEVICE.type == "cuda" else "cpu (smoke)"
    out["torch"] = torch.__version__
    out["python"] = platform.python_version()
    out["smoke"] = SMOKE
    out["note"] = ("FLOPs are counted analytically from layer sizes (flops_per_user in "
                   "bench/gpu_bench.py); softmax, KL, Adam and validation are in the time only.")
    ceiling = measured_matmul_tflops(1024 if SMOKE else 8192)
    stage("ceiling", {"measured_bf16_matmul_tflops": ceiling,
                      "datasheet_bf16_dense_tflops": PEAK_TFLOPS})
    loaded = load_split("instacart", seed=0, max_users=3000 if SMOKE else None)
    if loaded is None:
        sys.exit("instacart not found: set RECOMMENDATIONS_DATASETS_DIR")
    split, info = loaded
    out["instacart"] = info
    stage("throughput_default_batch", throughput(split.train, 500, 2 if SMOKE else 4, ceiling))
    stage("throughput_large_batch", throughput(split.train, 4096, 2 if SMOKE else 4, ceiling))
    stage("instacart_full_training", full_training(split))
    stage("online_retail_quality", cuda_vs_cpu_quality())


if __name__ == "__main__":
    main()
