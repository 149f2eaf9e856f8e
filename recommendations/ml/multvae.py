"""The Mult-VAE recommender (Liang et al. 2018), a hybrid with an EASE term by default.

The network and its training loop are in :mod:`.vae` (torch, imported lazily here, so that
importing the model catalogue does not import torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .recommender import ProgressFn, Recommender, Validation, transform_values

# Tuned defaults of our VAE (bench/results/ml_experiments.md has what each change gave).
VAE_DEFAULTS: dict[str, Any] = {
    "decoder_hidden": False,  # latent -> items directly (RecVAE style): better and cheaper
    "hidden": None,  # 1200/400 up to 20K items, the paper's 600/200 above (vae.resolve_width)
    "latent": None,
    "dropout": 0.5,
    "beta_cap": 0.2,
    "lr": 3e-3,  # converges in ~25 epochs instead of ~80-110 at 1e-3
    "batch_size": 500,
    "epochs": 100,
    "patience": 10,
    "skip_l2": 200.0,  # the EASE linear term (hybrid), see the class docstring
    "input_transform": "log",  # counts reach the multinomial likelihood (ml_experiments_temporal)
}

# Keys older artifacts carry for the RecVAE branch now in bench/research/recvae.py, with the
# values that meant "plain Mult-VAE": accepted (and dropped) so those artifacts still load.
_LEGACY_VAE_KEYS = {"encoder": "mult", "gamma": 0.0, "composite_prior": False,
                    "encoder_passes": 1}


class MultVAE(Recommender):
    """Variational autoencoder recommender (torch, imported lazily) - a hybrid by default.

    Hyper-parameters are those of :class:`recommendations.ml.vae.VAEConfig`; the no-argument
    defaults are the tuned ones in :data:`VAE_DEFAULTS`:

    * a Mult-VAE with a sparse-input encoder, a linear decoder, width chosen from the
      catalogue size, lr 3e-3 and early stopping (pure-VAE changes, test NDCG@100 on
      online-retail 0.28 -> 0.31);
    * **plus a fixed linear item-item term**: the closed-form EASE matrix (l2=200) computed on
      the same training data, added to the VAE's logits with a weight chosen on the validation
      users after the VAE is trained (weight 0 = pure VAE). So the default ``vae`` is honestly
      an ensemble of a VAE and EASE inside one model class and one artifact, not a pure VAE:
      on online-retail the pure VAE reaches ~0.83 x EASE and the hybrid matches/exceeds EASE.
      Where EASE's n x n inverse would exceed ``skip_max_memory_bytes`` (e.g. instacart's 39K
      items) the term is dropped and the model is a pure VAE. ``skip_l2=None`` disables it.

    The input is ``transform_values(X, input_transform)``: with ``"log"`` the multinomial
    likelihood and the EASE term weigh items by (log) event strength x recency.
    ``device`` (not a hyper-parameter: the artifact always loads on the CPU) forces where
    training runs; None = CUDA when available. ``fit`` keeps the weights with the best
    validation NDCG@100 when a validation pair is given; :meth:`training_report` has the curve.
    """

    name = "vae"

    def __init__(self, device: str | None = None, **params: Any):
        from .vae import VAEConfig

        for key, neutral in _LEGACY_VAE_KEYS.items():
            if key in params and params[key] == neutral:
                del params[key]
        self.config = VAEConfig.from_dict({**VAE_DEFAULTS, **params})
        unknown = set(params) - set(self.config.to_dict())
        if unknown:
            raise TypeError(f"unknown VAE hyper-parameters {sorted(unknown)}")
        transform_values(sp.csr_matrix((1, 1)), self.config.input_transform)
        self.device = device
        self.history_: list[dict] = []
        self.best_epoch_ = 0
        self.skip_search_: dict[str, float] = {}
        self._device_name = "unfitted"

    def hyperparameters(self) -> dict[str, Any]:
        return self.config.to_dict()

    @classmethod
    def _upgrade_hyperparameters(cls, hp: dict[str, Any]) -> dict[str, Any]:
        return {"input_transform": "binary", **hp}  # artifacts before the transform: binary

    @property
    def device_(self) -> str:
        return self._device_name

    def training_report(self) -> dict[str, Any]:
        return {"device": self.device_, "best_epoch": int(self.best_epoch_),
                "epochs_run": len(self.history_), "history": list(self.history_),
                "skip_search": dict(self.skip_search_)}

    def _net_class(self):
        """The network class train_vae builds (research subclasses in bench/ override)."""
        return None

    def fit(self, X: sp.spmatrix, validation: Validation = None, *,
            progress: ProgressFn | None = None) -> MultVAE:
        from .vae import train_vae

        kind = self.config.input_transform
        B = transform_values(X, kind)
        val = None if validation is None else (transform_values(validation[0], kind),
                                               transform_values(validation[1], "binary"))
        self.net_, self.history_, dev, self.best_epoch_ = train_vae(
            B, val, self.config, progress=progress, device=self.device,
            net_class=self._net_class())
        self.config = self.net_.cfg  # widths resolved from the catalogue size
        self._device = dev
        self._device_name = str(dev)
        self.skip_search_ = getattr(self.net_, "skip_search", {})
        self.n_items = B.shape[1]
        return self

    def score(self, X: sp.spmatrix) -> np.ndarray:
        from .vae import SMALL_BATCH, score_users, score_users_small

        X = transform_values(self._check_columns(X), self.config.input_transform)
        if X.shape[0] <= SMALL_BATCH:  # serving one visitor: numpy, no torch threads
            scores = score_users_small(self.net_, X)
            if scores is not None:
                return scores
        return score_users(self.net_, X, self._device)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.net_.item_vectors()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"state/{k}": v.detach().float().cpu().numpy()
                for k, v in self.net_.state_dict().items()}

    def _extra(self) -> dict[str, Any]:
        return {"history": self.history_, "device": self.device_,
                "skip_search": self.skip_search_, "best_epoch": int(self.best_epoch_)}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        import torch

        from .vae import VAENet

        state = {k[len("state/"):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        net = VAENet(self.n_items, self.config, skip=state.get("skip_B"))
        net.load_state_dict(state, strict=True)
        # Always the CPU, also on a GPU machine: a loaded model serves, one visitor at a time,
        # through score_users_small's numpy path; a web worker should not open a CUDA context
        # (hundreds of MiB each) to score one row in bf16. Training picks its own device.
        self._device = torch.device("cpu")
        self.net_ = net.to(self._device).eval()
        self.history_ = list(extra.get("history", []))
        self._device_name = str(extra.get("device", "unknown"))
        self.skip_search_ = dict(extra.get("skip_search", {}))
        self.best_epoch_ = int(extra.get("best_epoch", 0))
