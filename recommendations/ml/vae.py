"""Mult-VAE for collaborative filtering (torch; imported lazily by models.py).

Mult-VAE (Liang et al. 2018): L2-normalised, dropped-out input -> tanh MLP -> Gaussian latent ->
(tanh MLP) -> multinomial logits over items, KL annealed to ``beta_cap``. The input values are
what the caller passes (models.MultVAE: a transform of event weight x time decay), so the
multinomial likelihood weighs an item by how strongly and how recently the shopper wanted it.

Research variants (RecVAE's encoder, composite prior and alternating updates) live in
``bench/research/recvae.py``; they plug in through :class:`VAENet`'s overridable ``kl``,
``kl_weight``, ``optimizers`` and ``after_epoch`` hooks.

Training densifies one sparse batch at a time on the device (memory O(batch * items), not
O(users * items)), keeps the weights with the best validation NDCG@100 and records the curve.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import evaluate_scores

ProgressFn = Callable[[int, int, dict], None]


@dataclass
class VAEConfig:
    """Hyper-parameters. Defaults here are the paper's Mult-VAE; models.MultVAE sets tuned ones."""

    hidden: int | None = 600  # None: chosen from the catalogue size (see resolve_width)
    latent: int | None = 200
    decoder_hidden: bool = True  # Mult-VAE 600-200-600 has a hidden decoder layer
    dropout: float = 0.5
    beta_cap: float = 0.2
    anneal_epochs: int | None = None  # epochs to reach beta_cap (None: all epochs)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 500
    epochs: int = 200
    patience: int | None = None  # epochs without validation improvement before stopping
    max_val_users: int = 5000  # validation users used for early stopping (speed on big data)
    skip_l2: float | None = None  # set: add a fixed EASE(l2) linear term to the logits (hybrid)
    skip_max_memory_bytes: int = 4 * 1024**3  # above: no skip (pure VAE), see ease.py
    skip_weights: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0)
    seed: int = 0
    input_transform: str = "binary"  # applied by models.MultVAE before the net sees X

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)

    def resolve_width(self, n_items: int) -> VAEConfig:
        """Fill ``hidden``/``latent`` left as None from the catalogue size.

        Wider layers (1200/400) gained on online-retail (3.6K items); the output layer costs
        latent x items per user, so above 20K items we keep the paper's 600/200 to stay
        trainable on a CPU.
        """
        wide = n_items <= 20_000
        return VAEConfig.from_dict({
            **self.to_dict(),
            "hidden": self.hidden or (1200 if wide else 600),
            "latent": self.latent or (400 if wide else 200),
        })


@dataclass
class Batch:
    """One batch of users: CSR pieces on the device plus the dense binary matrix for the loss.

    The first layer reads the sparse form (``embedding_bag``), so its cost is O(nnz * hidden)
    instead of O(batch * items * hidden) - the item dimension is the big one.
    """

    indices: torch.Tensor
    offsets: torch.Tensor
    norm_values: torch.Tensor  # x_ui / ||x_u||_2: the L2-normalised input
    values: torch.Tensor  # x_ui as given: what the linear (EASE) term multiplies
    dense: torch.Tensor

    def dropped(self, p: float) -> torch.Tensor:
        """Input values after dropout with rate ``p`` (inverted scaling, as F.dropout)."""
        if p <= 0:
            return self.norm_values
        keep = (torch.rand_like(self.norm_values) >= p).to(self.norm_values.dtype)
        return self.norm_values * keep / (1.0 - p)


def scatter_dense(shape: tuple[int, int], rows: torch.Tensor, cols: torch.Tensor,
                  values: torch.Tensor) -> torch.Tensor:
    """A dense float32 matrix built on the values' device; duplicates add, as scipy's."""
    dense = torch.zeros(shape, dtype=torch.float32, device=values.device)
    return dense.index_put_((rows, cols), values.float(), accumulate=True)


def make_batch(X: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> Batch:
    """The users ``rows`` of ``X`` as a :class:`Batch` on ``device``.

    On a GPU only the CSR pieces cross to the device and the dense matrix is scattered there:
    O(nnz) bytes per batch instead of O(batch * items) (73 MB for 500 instacart users). On the
    CPU scipy's ``toarray`` is faster than torch's scatter (1.4 s vs 3.2 s an instacart epoch).
    """
    sub = X[rows]
    counts = np.diff(sub.indptr)
    row_of = np.repeat(np.arange(len(rows)), counts)
    norms = np.sqrt(np.maximum(np.bincount(row_of, weights=sub.data.astype(np.float64) ** 2,
                                           minlength=len(rows)), 1e-12))
    vals = (sub.data / np.repeat(norms, counts)).astype(np.float32)
    indices = torch.from_numpy(sub.indices.astype(np.int64)).to(device)
    if device.type == "cpu":
        dense = torch.from_numpy(sub.toarray().astype(np.float32, copy=False))
    else:
        dense = scatter_dense(sub.shape, torch.from_numpy(row_of).to(device), indices,
                              torch.from_numpy(sub.data.astype(np.float32)).to(device))
    return Batch(
        indices=indices,
        offsets=torch.from_numpy(sub.indptr[:-1].astype(np.int64)).to(device),
        norm_values=torch.from_numpy(vals).to(device),
        values=torch.from_numpy(sub.data.astype(np.float32)).to(device),
        dense=dense,
    )


class SparseLinear(nn.Module):
    """``x @ W + b`` for a sparse ``x`` given as embedding_bag pieces; W is (n_in, n_out)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_out))
        nn.init.xavier_normal_(self.weight)
        nn.init.normal_(self.bias, std=0.001)

    def forward(self, b: Batch, values: torch.Tensor) -> torch.Tensor:
        return F.embedding_bag(b.indices, self.weight, b.offsets, mode="sum",
                               per_sample_weights=values) + self.bias


class MLPEncoder(nn.Module):
    """Liang et al.: one tanh hidden layer, outputs (mu, logvar)."""

    def __init__(self, n_items: int, hidden: int, latent: int):
        super().__init__()
        self.fc1 = SparseLinear(n_items, hidden)
        self.fc2 = nn.Linear(hidden, 2 * latent)
        self.latent = latent

    def forward(self, b: Batch, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc2(torch.tanh(self.fc1(b, values)))
        return h[:, : self.latent], h[:, self.latent:]


class VAENet(nn.Module):
    """Encoder + decoder; ``forward`` returns multinomial logits, mu, logvar, z."""

    def __init__(self, n_items: int, cfg: VAEConfig, skip: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder: nn.Module = self.make_encoder(n_items, cfg)
        if cfg.decoder_hidden:
            self.decoder = nn.Sequential(
                nn.Linear(cfg.latent, cfg.hidden), nn.Tanh(), nn.Linear(cfg.hidden, n_items))
        else:
            self.decoder = nn.Sequential(nn.Linear(cfg.latent, n_items))
        self._init_weights()
        if skip is not None:
            # Fixed linear item-item term (EASE closed form), added to the logits with a weight
            # chosen on validation after training (see train_vae). Buffers, never trained.
            self.register_buffer("skip_B", skip)
            self.register_buffer("skip_weight", torch.tensor(0.0))
        else:
            self.skip_B = None
        self.use_skip = True

    def make_encoder(self, n_items: int, cfg: VAEConfig) -> nn.Module:
        """Liang et al.'s encoder (research subclasses swap it)."""
        return MLPEncoder(n_items, cfg.hidden, cfg.latent)

    def _init_weights(self) -> None:
        # Liang et al.: Xavier-normal weights, N(0, 0.001) biases.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.normal_(m.bias, std=0.001)

    # --- training hooks (overridden by research variants in bench/research) ----------------
    def kl(self, b: Batch, z: torch.Tensor, mu: torch.Tensor,
           logvar: torch.Tensor) -> torch.Tensor:
        """Per-user KL(q(z|x) || N(0, I))."""
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)

    def kl_weight(self, b: Batch, beta: float) -> float | torch.Tensor:
        """The annealed beta of Liang et al."""
        return beta

    def optimizers(self, cfg: VAEConfig) -> list[tuple[torch.optim.Optimizer, float]]:
        """(optimizer, dropout) passes run each epoch, in order: one Adam pass here."""
        return [(torch.optim.Adam(self.parameters(), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay), cfg.dropout)]

    def after_epoch(self) -> None:
        """Called after each epoch's passes (no-op here)."""

    def forward(self, b: Batch, dropout: float = 0.0, sample: bool = False):
        mu, logvar = self.encoder(b, b.dropped(dropout))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        logits = self.decoder(z)
        if self.skip_B is not None and self.use_skip:
            # the linear term sees the full (not dropped-out) history, like EASE at test time
            lin = F.embedding_bag(b.indices, self.skip_B, b.offsets, mode="sum",
                                  per_sample_weights=b.values)
            logits = logits + self.skip_weight * lin
        return logits, mu, logvar, z

    def item_vectors(self) -> np.ndarray:
        """Output-layer weight rows: items that the decoder places close get similar logits."""
        return self.decoder[-1].weight.detach().float().cpu().numpy().astype(np.float32)


def pick_device(device: str | None = None) -> torch.device:
    """``cuda`` when available (bf16 autocast there), else CPU with every core."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(os.cpu_count() or 1)
    return torch.device("cpu")


def uses_bf16(device: torch.device) -> bool:
    """Whether training and scoring on ``device`` run under bf16 autocast (on CUDA)."""
    return device.type == "cuda"


@torch.no_grad()
def score_users(
    net: VAENet, X: sp.spmatrix, device: torch.device, batch_size: int = 2000
) -> np.ndarray:
    """Dense float32 scores (logits of the posterior mean) for each row of ``X``."""
    X = sp.csr_matrix(X, dtype=np.float32)
    net.eval()
    out = np.empty(X.shape, np.float32)
    amp = uses_bf16(device)
    for lo in range(0, X.shape[0], batch_size):
        rows = np.arange(lo, min(lo + batch_size, X.shape[0]))
        b = make_batch(X, rows, device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            logits = net(b)[0]
        out[lo:lo + len(rows)] = logits.float().cpu().numpy()
    return out


#: Batches of at most this many users may take :func:`score_users_small` (serving's fold-in).
SMALL_BATCH = 8


def score_users_small(net: VAENet, X: sp.csr_matrix) -> np.ndarray | None:
    """:func:`score_users` for a few users on CPU, in numpy: the same scores (float32, within
    rounding), for serving one visitor's fold-in in well under a millisecond.

    The first layer sums the weight rows of each user's few items (what ``embedding_bag``
    does, without densifying the row or building a batch); the dense layers are row-wise dot
    products (``einsum``, which calls no BLAS: a multi-threaded BLAS or torch's intra-op pool
    costs more in thread wake-ups than a 1 x 1200 product, and far more on a busy machine).
    It reads the weights as views of the CPU tensors, so it always sees the current ones.
    Returns None where it does not apply (a research encoder, a model on another device or
    dtype, more than :data:`SMALL_BATCH` rows): use :func:`score_users` then.
    """
    X = sp.csr_matrix(X)
    encoder = net.encoder
    if X.shape[0] > SMALL_BATCH or not isinstance(encoder, MLPEncoder):
        return None
    if any(not isinstance(m, (nn.Linear, nn.Tanh)) for m in net.decoder):
        return None
    skip = net.skip_B if net.skip_B is not None and net.use_skip else None
    tensors = [encoder.fc1.weight, encoder.fc1.bias, encoder.fc2.weight, encoder.fc2.bias,
               *(t for m in net.decoder if isinstance(m, nn.Linear) for t in (m.weight, m.bias)),
               *([skip] if skip is not None else [])]
    # checked before any .numpy(): a network trained on CUDA (or kept in bf16) is scored by
    # score_users on its own device instead (seen on an H200: .numpy() of a CUDA tensor raised)
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return None
    layers: list[tuple[np.ndarray, np.ndarray] | None] = [
        (m.weight.detach().numpy(), m.bias.detach().numpy()) if isinstance(m, nn.Linear)
        else None for m in net.decoder]
    W1 = encoder.fc1.weight.detach().numpy()
    b1 = encoder.fc1.bias.detach().numpy()
    latent = encoder.latent
    W2 = encoder.fc2.weight.detach().numpy()[:latent]  # the mu half: logvar is not needed
    b2 = encoder.fc2.bias.detach().numpy()[:latent]
    S = skip.detach().numpy() if skip is not None else None
    skip_weight = np.float32(float(net.skip_weight)) if skip is not None else None
    out = np.empty(X.shape, np.float32)
    for r in range(X.shape[0]):
        cols = X.indices[X.indptr[r]:X.indptr[r + 1]].astype(np.int64)
        vals = X.data[X.indptr[r]:X.indptr[r + 1]].astype(np.float64)
        if len(cols):  # the L2-normalised row, as make_batch
            scaled = (vals / np.sqrt(max(float((vals**2).sum()), 1e-12))).astype(np.float32)
            x = (W1[cols] * scaled[:, None]).sum(0) + b1
        else:
            x = b1.copy()
        z = np.einsum("ji,i->j", W2, np.tanh(x)) + b2
        for layer in layers:
            z = np.tanh(z) if layer is None else np.einsum("ji,i->j", layer[0], z) + layer[1]
        if S is not None and len(cols):
            z = z + skip_weight * (S[cols] * vals.astype(np.float32)[:, None]).sum(0)
        out[r] = z
    return out


def _loss(net: VAENet, b: Batch, cfg: VAEConfig, beta: float, dropout: float):
    logits, mu, logvar, z = net(b, dropout=dropout, sample=True)
    xb = b.dense
    nll = -(F.log_softmax(logits.float(), dim=1) * xb).sum(1)
    kl = net.kl(b, z, mu, logvar)
    return (nll + net.kl_weight(b, beta) * kl.float()).mean()


def _skip_matrix(X: sp.csr_matrix, cfg: VAEConfig) -> torch.Tensor | None:
    """EASE weights for the linear skip, or None (not configured, or catalogue over the cap)."""
    if cfg.skip_l2 is None:
        return None
    from .ease import CatalogueTooLargeError, ease_weights

    try:
        return torch.from_numpy(ease_weights(X, cfg.skip_l2, cfg.skip_max_memory_bytes))
    except CatalogueTooLargeError:
        return None


@torch.no_grad()
def _choose_skip_weight(net: VAENet, val, cfg: VAEConfig, dev: torch.device) -> None:
    """Pick the linear term's weight by validation NDCG@100 (20 when there is no validation,
    the value chosen on online-retail's validation users in a first run).

    VAE logits are used as log-softmax (per-user shifts do not change a ranking), so the weight
    trades the VAE's log-probabilities against EASE's linear scores.
    """
    net.use_skip = True
    if val is None:
        net.skip_weight.fill_(20.0)
        return
    results = {}
    for w in cfg.skip_weights:
        net.skip_weight.fill_(float(w))
        results[w] = evaluate_scores(lambda f: score_users(net, f, dev), val[0], val[1],
                                     ks_recall=(), ks_ndcg=(100,), k_coverage=None)["ndcg@100"]
    best_w = max(results, key=lambda w: (results[w], -w))
    net.skip_weight.fill_(float(best_w))
    net.skip_search = {str(k): v for k, v in results.items()}


def train_vae(
    X: sp.spmatrix,
    validation: tuple[sp.spmatrix, sp.spmatrix] | None,
    cfg: VAEConfig,
    progress: ProgressFn | None = None,
    device: str | None = None,
    net_class: type[VAENet] | None = None,
) -> tuple[VAENet, list[dict], torch.device, int]:
    """Train; returns ``(net with best weights, history, device, best_epoch)``.

    ``net_class`` (default :class:`VAENet`) lets research variants reuse this loop.

    ``net.cfg`` is the resolved configuration (widths filled in).

    Reproducible on CPU: seeded torch and numpy generators and deterministic algorithms
    (restored afterwards so the caller's global setting is not changed).
    """
    t_start = time.perf_counter()  # time to best includes the setup (e.g. the EASE term)
    cpu_start = time.process_time()  # CPU seconds: robust to other processes on the machine
    dev = pick_device(device)
    X = sp.csr_matrix(X, dtype=np.float32)
    n_users, n_items = X.shape
    cfg = cfg.resolve_width(n_items)
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        net = (net_class or VAENet)(n_items, cfg, skip=_skip_matrix(X, cfg)).to(dev)
        net.use_skip = False  # the VAE part trains alone; the linear term is blended afterwards
        passes = net.optimizers(cfg)
        amp = uses_bf16(dev)
        n_batches = max(1, math.ceil(n_users / cfg.batch_size))
        anneal_updates = (cfg.anneal_epochs or cfg.epochs) * n_batches
        step = 0
        val = None
        if validation is not None:
            fi, tr = (sp.csr_matrix(m, dtype=np.float32) for m in validation)
            val = (fi[: cfg.max_val_users], tr[: cfg.max_val_users])
        history: list[dict] = []
        best, best_epoch, best_state = -1.0, 0, None

        def run_pass(optimizer, dropout: float) -> float:
            nonlocal step
            net.train()
            total = torch.zeros((), device=dev)  # summed on the device: no sync per batch
            perm = rng.permutation(n_users)
            for lo in range(0, n_users, cfg.batch_size):
                xb = make_batch(X, perm[lo:lo + cfg.batch_size], dev)
                beta = min(cfg.beta_cap, cfg.beta_cap * step / max(anneal_updates, 1))
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                    loss = _loss(net, xb, cfg, beta, dropout)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach().float() * xb.dense.shape[0]
                step += 1
            return float(total) / n_users

        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            losses = [run_pass(optimizer, dropout) for optimizer, dropout in passes]
            net.after_epoch()
            rec = {"epoch": epoch, "loss": losses[0]}
            if val is not None:
                rec["val_ndcg@100"] = evaluate_scores(
                    lambda f: score_users(net, f, dev), val[0], val[1],
                    ks_recall=(), ks_ndcg=(100,), k_coverage=None)["ndcg@100"]
            rec["seconds"] = time.perf_counter() - t0
            rec["elapsed"] = time.perf_counter() - t_start
            rec["cpu_elapsed"] = time.process_time() - cpu_start
            history.append(rec)
            if progress is not None:
                progress(epoch, cfg.epochs, rec)
            if val is not None:
                if rec["val_ndcg@100"] > best:
                    best, best_epoch = rec["val_ndcg@100"], epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()
                                  if k != "skip_B"}  # fixed, possibly large: not copied
                elif cfg.patience is not None and epoch - best_epoch >= cfg.patience:
                    break
        if best_state is not None:
            missing, _ = net.load_state_dict(best_state, strict=False)
            assert set(missing) <= {"skip_B"}, missing
        else:
            best_epoch = len(history)
        net.eval()
        if net.skip_B is not None:
            _choose_skip_weight(net, val, cfg, dev)
        return net, history, dev, best_epoch
    finally:
        torch.use_deterministic_algorithms(prev_det)
