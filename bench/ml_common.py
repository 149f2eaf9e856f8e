"""Shared pieces of the ML benchmarks: dataset loading, the faithful dense Mult-VAE reference.

The reference is deliberately written here, independently of recommendations.ml.vae, as the
paper's configuration (Liang et al. 2018, 600-200-600 tanh, dropout 0.5 on the L2-normalised
input, Adam 1e-3, batch 500, KL annealed linearly to 0.2, 200 epochs, best validation NDCG@100)
on a DENSE users x items tensor held in memory for the whole run, like the authors' code.
The KL weight reaches 0.2 at the last of the 200 epochs (the authors' 200,000-update schedule
would, on these small datasets, keep it near 0).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recommendations.ml.data import StrongSplit, split_strong  # noqa: E402
from recommendations.ml.datasets import DatasetNotFound, load_dataset  # noqa: E402
from recommendations.ml.metrics import evaluate_scores  # noqa: E402

RESULTS = ROOT / "bench/results"


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_split(name: str, seed: int = 0, max_users: int | None = None
               ) -> tuple[StrongSplit, dict[str, Any]] | None:
    """The dataset's strong split (same seed = same split in every bench), or None if absent.

    ``max_users`` keeps a seeded random subset of users first (for instacart on 2 cores).
    """
    try:
        im = load_dataset(name)
    except DatasetNotFound as exc:
        print(str(exc), flush=True)
        return None
    X = im.X
    info: dict[str, Any] = {"users": X.shape[0], "items": X.shape[1], "interactions": X.nnz}
    if max_users is not None and X.shape[0] > max_users:
        keep = np.sort(np.random.default_rng(seed).choice(X.shape[0], max_users, replace=False))
        X = X[keep]
        info["subsampled_users"] = max_users
    split = split_strong(X, seed=seed)
    info.update({"n_items_kept": split.train.shape[1], "train_users": split.train.shape[0],
                 "validation_users": split.validation[0].shape[0],
                 "test_users": split.test[0].shape[0]})
    return split, info


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=lambda o: o.item()))


def reference_vae(split: StrongSplit, epochs: int = 200, seed: int = 0,
                  max_dense_bytes: int = 8 * 2**30, patience: int | None = None
                  ) -> dict[str, Any]:
    """Train the faithful dense Mult-VAE; return test metrics, curve, timings, memory.

    ``patience`` (None = the paper's fixed 200 epochs) only shortens the quality bench: it stops
    after that many epochs without a validation improvement (the KL schedule is unchanged).

    Refuses (status "refused") when the dense users x items float32 tensor would exceed
    ``max_dense_bytes`` - that tensor is what the reference design needs.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    n_users, n_items = split.train.shape
    dense_bytes = n_users * n_items * 4
    if dense_bytes > max_dense_bytes:
        return {"status": "refused", "reason": f"dense X needs {dense_bytes / 2**30:.1f} GiB"}
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    rss0 = maxrss_mib()
    Xd = torch.from_numpy(split.train.toarray())  # the dense full X of the reference design

    class Ref(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.e1, self.e2 = nn.Linear(n_items, 600), nn.Linear(600, 400)
            self.d1, self.d2 = nn.Linear(200, 600), nn.Linear(600, n_items)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_normal_(m.weight)
                    nn.init.normal_(m.bias, std=0.001)

        def forward(self, x, train: bool):
            h = F.dropout(F.normalize(x, dim=1), 0.5, training=train)
            h = self.e2(torch.tanh(self.e1(h)))
            mu, logvar = h[:, :200], h[:, 200:]
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if train else mu
            return self.d2(torch.tanh(self.d1(z))), mu, logvar

    net = Ref()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n_batches = -(-n_users // 500)
    total_anneal = epochs * n_batches
    step, best, best_epoch, best_state, history = 0, -1.0, 0, None, []

    @torch.no_grad()
    def score(f: sp.csr_matrix) -> np.ndarray:
        net.eval()
        return net(torch.from_numpy(f.toarray()), False)[0].numpy()

    t_start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        net.train()
        perm = torch.from_numpy(rng.permutation(n_users))
        for lo in range(0, n_users, 500):
            xb = Xd[perm[lo:lo + 500]]
            logits, mu, logvar = net(xb, True)
            nll = -(F.log_softmax(logits, 1) * xb).sum(1).mean()
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
            beta = min(0.2, 0.2 * step / total_anneal)
            loss = nll + beta * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        train_s = time.perf_counter() - t0
        val = evaluate_scores(score, *split.validation, ks_recall=(), ks_ndcg=(100,),
                              k_coverage=None)["ndcg@100"]
        history.append({"epoch": epoch, "loss": float(loss.detach()), "val_ndcg@100": val,
                        "train_seconds": train_s, "seconds": time.perf_counter() - t0,
                        "elapsed": time.perf_counter() - t_start,
                        "cpu_elapsed": time.process_time() - cpu_start})
        if val > best:
            best, best_epoch = val, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        elif patience is not None and epoch - best_epoch >= patience:
            break
    net.load_state_dict(best_state)
    test = evaluate_scores(score, *split.test)
    return {
        "status": "ok", **test, "best_epoch": best_epoch, "best_val_ndcg@100": best,
        "time_to_best_s": history[best_epoch - 1]["elapsed"],
        "cpu_to_best_s": history[best_epoch - 1]["cpu_elapsed"],
        "total_s": history[-1]["elapsed"], "epochs": epochs, "epochs_run": len(history),
        "patience": patience,
        "mean_epoch_s": float(np.mean([h["seconds"] for h in history])),
        "dense_x_mib": dense_bytes / 2**20,
        "rss_peak_delta_mib": max(0.0, maxrss_mib() - rss0),
        "history": history,
    }


def ours_vae(split: StrongSplit, **params: Any) -> dict[str, Any]:
    """Our default ``vae`` (optionally with overridden hyper-parameters), same reporting."""
    from recommendations.ml.models import MultVAE

    rss0 = maxrss_mib()
    t0 = time.perf_counter()
    m = MultVAE(**params).fit(split.train, split.validation)
    fit_s = time.perf_counter() - t0
    test = evaluate_scores(m.score, *split.test)
    h = m.history_
    return {
        "status": "ok", **test, "best_epoch": m.best_epoch_,
        "best_val_ndcg@100": max(r["val_ndcg@100"] for r in h) if h and "val_ndcg@100" in h[0]
        else None,
        "time_to_best_s": h[m.best_epoch_ - 1]["elapsed"], "fit_s": fit_s,
        "cpu_to_best_s": h[m.best_epoch_ - 1]["cpu_elapsed"],
        "epochs_run": len(h), "mean_epoch_s": float(np.mean([r["seconds"] for r in h])),
        "skip_search": getattr(m, "skip_search_", {}), "device": m.device_,
        "rss_peak_delta_mib": max(0.0, maxrss_mib() - rss0),
        "params": m.hyperparameters(), "history": h,
    }
