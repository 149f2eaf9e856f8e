"""RecVAE (Shenbin et al. 2020) on top of the production Mult-VAE loop - research only.

Moved out of ``recommendations/ml/vae.py``: it never beat the tuned Mult-VAE on our data
(``bench/results/ml_experiments.md``: test NDCG@100 0.3089 vs 0.3134) and cost 4x the time.
Densely connected LayerNorm/swish encoder, a composite prior (standard normal + the previous
epoch's encoder posterior + a wide normal), alternating updates (``encoder_passes`` encoder
passes, then a decoder pass without dropout), KL weight ``gamma`` x each user's history size.
One difference from the old in-package version: the prior's "old encoder" is refreshed after
the decoder pass (the production loop's ``after_epoch`` hook), not between the passes.

    from research.recvae import RecVAE
    RecVAE(gamma=0.005, encoder_passes=3, lr=5e-4).fit(X, validation)
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recommendations.ml.models import MultVAE
from recommendations.ml.vae import Batch, SparseLinear, VAEConfig, VAENet


def _log_norm_pdf(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (logvar + math.log(2 * math.pi) + (x - mu).pow(2) / logvar.exp())


class DenseEncoder(nn.Module):
    """RecVAE encoder: 5 densely connected swish layers with LayerNorm."""

    def __init__(self, n_items: int, hidden: int, latent: int, eps: float = 1e-1):
        super().__init__()
        self.first = SparseLinear(n_items, hidden)
        self.fcs = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(4)])
        self.lns = nn.ModuleList([nn.LayerNorm(hidden, eps=eps) for _ in range(5)])
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, b: Batch, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.lns[0](F.silu(self.first(b, values)))
        acc = h
        for fc, ln in zip(self.fcs, self.lns[1:], strict=True):
            h = ln(F.silu(fc(h) + acc))
            acc = acc + h
        return self.mu(h), self.logvar(h)


class CompositePrior(nn.Module):
    """Mixture of N(0, I), the old encoder's posterior and a wide N(0, e^10 I)."""

    def __init__(self, encoder: nn.Module, weights=(3 / 20, 3 / 4, 1 / 10)):
        super().__init__()
        self.old = copy.deepcopy(encoder)
        self.old.requires_grad_(False)
        self.register_buffer("log_w", torch.log(torch.tensor(weights)))

    def update(self, encoder: nn.Module) -> None:
        self.old.load_state_dict(encoder.state_dict())

    def forward(self, b: Batch, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            post_mu, post_logvar = self.old(b, b.norm_values)
        zeros = torch.zeros_like(z)
        parts = torch.stack([
            _log_norm_pdf(z, zeros, zeros) + self.log_w[0],
            _log_norm_pdf(z, post_mu, post_logvar) + self.log_w[1],
            _log_norm_pdf(z, zeros, zeros + 10.0) + self.log_w[2],
        ], dim=-1)
        return torch.logsumexp(parts, dim=-1)


def recvae_net(gamma: float, encoder_passes: int, composite_prior: bool) -> type[VAENet]:
    """A :class:`VAENet` subclass with RecVAE's encoder, prior, KL weight and updates."""

    class RecVAENet(VAENet):
        def make_encoder(self, n_items: int, cfg: VAEConfig) -> nn.Module:
            return DenseEncoder(n_items, cfg.hidden, cfg.latent)

        def _init_weights(self) -> None:
            super()._init_weights()
            self.prior = CompositePrior(self.encoder) if composite_prior else None

        def kl(self, b, z, mu, logvar):
            if self.prior is None:
                return super().kl(b, z, mu, logvar)
            return (_log_norm_pdf(z, mu, logvar) - self.prior(b, z)).sum(1)

        def kl_weight(self, b, beta):
            return gamma * b.dense.sum(1) if gamma > 0 else beta

        def optimizers(self, cfg):
            if encoder_passes <= 1:
                return super().optimizers(cfg)
            enc = torch.optim.Adam(self.encoder.parameters(), lr=cfg.lr,
                                   weight_decay=cfg.weight_decay)
            dec = torch.optim.Adam(self.decoder.parameters(), lr=cfg.lr,
                                   weight_decay=cfg.weight_decay)
            return [(enc, cfg.dropout)] * encoder_passes + [(dec, 0.0)]

        def after_epoch(self) -> None:
            if self.prior is not None:
                self.prior.update(self.encoder)

    return RecVAENet


class RecVAE(MultVAE):
    """MultVAE trained with RecVAE's network (not registered; not saveable as ``vae``)."""

    name = "recvae"

    def __init__(self, gamma: float = 0.005, encoder_passes: int = 3,
                 composite_prior: bool = True, **params: Any):
        super().__init__(**params)
        self.research = {"gamma": gamma, "encoder_passes": encoder_passes,
                         "composite_prior": composite_prior}

    def _net_class(self) -> type[VAENet]:
        return recvae_net(**self.research)
