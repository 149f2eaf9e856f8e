"""Repeat-explore next-basket model: what a shopper buys next = re-buys + trends + new finds.

In the spirit of TIFU-KNN (Hu et al. SIGIR 2020), ReCANet and the "Next Basket Recommendation
Reality Check" (Li et al. TOIS 2023), which found that a shopper's own time-decayed item
frequencies beat most neural models on re-buys, and that new items need a separate model.
Three distributions over the catalogue, per shopper row ``x`` (event weight x time decay):

* repeat ``R = x / sum(x)`` over the shopper's own items (the row itself: TIFU's user vector);
* trend ``P`` = column sums of the decayed training matrix, normalised: with a half-life the
  sums are "what sells now"; it ranks the shopper's own items by current demand as well;
* explore ``E`` over items new to the shopper = ``(1 - a) softmax(z / T) + a P_new``, ``z``
  = ``vae + s ease`` standardised per row: the hybrid's two parts (:class:`~.models.MultVAE`:
  VAE logits, EASE linear term on the decayed input) mixed with trend.

``score = w_r R + w_p P [own items] + w_x E``. On the validation shoppers ``fit`` chooses, for
each temperature ``T``, the EASE weight ``s`` and trend share ``a`` that maximise NDCG@20 over
new items with the history masked (the explore task itself, not the VAE's NDCG@100 choice of
``s``, which is overridden), then ``(T, w_r, w_p, w_x)`` maximising NDCG@20 of the ``all`` task
(nothing masked): the weights learn how much re-buys sell in this shop - ~0 where nobody buys
twice (MovieLens, a random split), dominant in a grocery-like shop. Nothing is tuned per shop
by hand: every choice is made on that shop's own validation shoppers.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .metrics import exclude_seen, ndcg_at_k
from .multvae import MultVAE
from .recommender import ProgressFn, Recommender, Validation, transform_values

#: Blend used when ``fit`` gets no validation shoppers (chosen on online-retail's validation).
FALLBACK_BLEND: dict[str, float] = {"temperature": 1.0, "trend_share": 0.0,
                                    "repeat": 0.1, "trend": 1.0, "explore": 0.1}

_OWN = ("temperatures", "trend_shares", "weight_grid", "max_validation_users", "ease_weights")

#: EASE weights ``s`` tried for the explore part (0 = pure VAE; 1000 ~ EASE alone).
EASE_WEIGHTS: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0)


#: Added, times the logits' rank position in [0, 1], to the explore distribution: where
#: softmax underflows (float32 below ~1e-38) the new items keep the logits' order.
TIE_BREAK = 1e-30


def _explore(logits: np.ndarray, seen: np.ndarray, trend: np.ndarray, temperature: float,
             share: float) -> np.ndarray:
    """(1 - share) softmax(z / T) + share trend, both over the items not in ``seen``.

    ``z`` = the logits standardised per row over those items, so ``T`` means the same
    whatever the logits' scale (the EASE weight ``s`` multiplies it by up to 1000: raw, the
    softmax was one-hot and every other item tied at 0, random-split NDCG@100 0.25 instead of
    0.38); :data:`TIE_BREAK` keeps the full order where it still underflows.
    """
    L = logits.astype(np.float64)
    new = ~seen
    n = np.maximum(new.sum(1, keepdims=True), 1)
    mean = np.where(new, L, 0.0).sum(1, keepdims=True) / n
    sd = np.sqrt(np.where(new, (L - mean) ** 2, 0.0).sum(1, keepdims=True) / n)
    Z = np.where(new, (L - mean) / np.maximum(sd, 1e-12), -np.inf)
    top = Z.max(1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    E = np.exp((Z - top) / temperature)
    E /= np.maximum(E.sum(1, keepdims=True), 1e-300)
    low = np.where(new, Z, np.inf).min(1, keepdims=True)
    low = np.where(np.isfinite(low), low, 0.0)
    rank = np.where(new, (Z - low) / np.maximum(top - low, 1e-12), 0.0)
    P = np.where(seen, 0.0, trend[None, :])
    P /= np.maximum(P.sum(1, keepdims=True), 1e-300)
    return (1.0 - share) * E + share * P + TIE_BREAK * rank


def _repeat(X: sp.csr_matrix) -> np.ndarray:
    D = X.toarray().astype(np.float64)
    return D / np.maximum(D.sum(1, keepdims=True), 1e-300)


def blend_components(X: sp.csr_matrix, logits_of: Callable[[sp.csr_matrix], np.ndarray],
                     trend: np.ndarray, blend: dict[str, float]) -> dict[str, np.ndarray]:
    """Repeat, trend on own items and explore for rows of ``X`` (float32 CSR over the model's
    columns); ``logits_of`` gives the hybrid VAE's logits. One function for the trained model
    and its torch-free served form (:mod:`.serving_model`), so both score alike."""
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    X.data[X.data < 0] = 0.0
    X.eliminate_zeros()
    seen = X.toarray() > 0
    return {"repeat": _repeat(X),
            "trend": np.where(seen, trend[None, :].astype(np.float64), 0.0),
            "explore": _explore(logits_of(X), seen, trend, blend["temperature"],
                                blend["trend_share"])}


def blended_score(parts: dict[str, np.ndarray], blend: dict[str, float]) -> np.ndarray:
    """``w_r R + w_p P + w_x E`` as float32."""
    s = (blend["repeat"] * parts["repeat"] + blend["trend"] * parts["trend"]
         + blend["explore"] * parts["explore"])
    return s.astype(np.float32)


@dataclass
class Candidates:
    """One shopper's candidate items (big catalogues, :mod:`.ann`) with their exact logits,
    and what the explore part needs of the items outside them: ``total`` and ``sumsq``, the
    sum and the sum of squares of the logits over all ``n_items`` items (exact), and the
    logits of a fixed sample of the other items (``sample`` columns, ``sample_logits``)."""

    cols: np.ndarray
    logits: np.ndarray
    total: float
    sumsq: float
    sample: np.ndarray
    sample_logits: np.ndarray
    n_items: int


def blend_candidates(X: sp.csr_matrix, c: Candidates, trend: np.ndarray,
                     blend: dict[str, float]) -> np.ndarray:
    """:func:`blend_components` + :func:`blended_score` of one row (non-negative float32
    CSR), on ``c.cols`` only: float32 scores of those columns.

    Exact but for the softmax's normaliser: the standardisation (mean and deviation of the
    logits over all new items) comes from the exact moments; the candidates' own terms are
    summed exactly, and the other new items' sum of ``exp`` is estimated from the fixed
    sample (unbiased: a sample mean times their count). That normaliser scales every new
    item's explore score alike, so the order among new items is exact; only how they
    interleave with the shopper's own items can move, by the estimate's error.
    """
    own = X.indices.astype(np.int64)
    L = c.logits.astype(np.float64)
    seen = np.isin(c.cols, own)
    n_new = max(c.n_items - int(seen.sum()), 1)
    total = c.total - float(L[seen].sum())
    sumsq = c.sumsq - float((L[seen] ** 2).sum())
    mean = total / n_new
    sd = max(np.sqrt(max(sumsq / n_new - mean * mean, 0.0)), 1e-12)
    Z = (L[~seen] - mean) / sd
    Zs = (c.sample_logits.astype(np.float64) - mean) / sd
    both = np.concatenate([Z, Zs])
    top = float(both.max()) if len(both) else 0.0
    low = float(both.min()) if len(both) else 0.0
    T = blend["temperature"]
    num = np.exp((Z - top) / T)
    n_tail = c.n_items - len(c.cols)
    tail = n_tail * float(np.exp((Zs - top) / T).mean()) if len(Zs) and n_tail > 0 else 0.0
    soft = num / max(float(num.sum()) + tail, 1e-300)
    new_trend = max(float(trend.astype(np.float64).sum() - trend[own].astype(np.float64).sum()),
                    1e-300)
    a = blend["trend_share"]
    rank = (Z - low) / max(top - low, 1e-12)
    explore = (1.0 - a) * soft + a * trend[c.cols[~seen]] / new_trend + TIE_BREAK * rank
    vals = X.data.astype(np.float64)
    repeat = vals / max(float(vals.sum()), 1e-300)
    out = np.empty(len(c.cols), np.float64)
    out[~seen] = blend["explore"] * explore
    order = np.argsort(own)
    at = order[np.searchsorted(own, c.cols[seen], sorter=order)]
    out[seen] = blend["repeat"] * repeat[at] + blend["trend"] * trend[c.cols[seen]]
    return out.astype(np.float32)


def _ndcg20(scores: np.ndarray, truth: sp.csr_matrix) -> float:
    """Mean NDCG@20; 0 when no row has truth (a JSON-safe number, never NaN)."""
    return float(np.nan_to_num(ndcg_at_k(scores, truth, 20).mean))


class NextBasket(Recommender):
    """The default model: Mult-VAE hybrid explore + own-item repeat + trend, blended on
    validation (see the module docstring). VAE hyper-parameters pass through to
    :class:`~.models.MultVAE`; its own: the search grids and ``max_validation_users``."""

    name = "next_basket"

    def __init__(self, device: str | None = None,
                 temperatures: tuple[float, ...] | list[float] = (0.25, 0.5, 1.0, 2.0),
                 trend_shares: tuple[float, ...] | list[float] = (0.0, 0.1, 0.3, 0.5),
                 weight_grid: tuple[float, ...] | list[float] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0),
                 max_validation_users: int = 2000,
                 ease_weights: tuple[float, ...] | list[float] = EASE_WEIGHTS, **vae_params: Any):
        self.vae = MultVAE(device=device, **vae_params)
        self.ease_weights = tuple(float(s) for s in ease_weights)
        self.temperatures = tuple(float(t) for t in temperatures)
        self.trend_shares = tuple(float(a) for a in trend_shares)
        self.weight_grid = tuple(float(w) for w in weight_grid)
        self.max_validation_users = int(max_validation_users)
        self.blend_: dict[str, float] = dict(FALLBACK_BLEND)
        self.blend_search_: dict[str, Any] = {}

    def hyperparameters(self) -> dict[str, Any]:
        return {**self.vae.hyperparameters(), "temperatures": list(self.temperatures),
                "trend_shares": list(self.trend_shares), "weight_grid": list(self.weight_grid),
                "max_validation_users": self.max_validation_users,
                "ease_weights": list(self.ease_weights)}

    @property
    def device_(self) -> str:
        return self.vae.device_

    def training_report(self) -> dict[str, Any]:
        return {**self.vae.training_report(), "blend": dict(self.blend_),
                "blend_search": dict(self.blend_search_)}

    # --- fit ---------------------------------------------------------------------------------
    def fit(self, X: sp.spmatrix, validation: Validation = None, *,
            progress: ProgressFn | None = None) -> NextBasket:
        X = sp.csr_matrix(X, dtype=np.float32)
        trend = np.asarray(X.sum(0), dtype=np.float64).ravel()
        self.trend_ = (trend / max(trend.sum(), 1e-300)).astype(np.float32)
        vae_val = None
        if validation is not None:
            n = self.max_validation_users
            hist = sp.csr_matrix(validation[0], dtype=np.float32)[:n]
            truth = sp.csr_matrix(validation[1], dtype=np.float32)[:n]
            truth.data[:] = 1.0
            new_truth = (truth - truth.multiply(hist > 0)).tocsr()
            new_truth.eliminate_zeros()
            if new_truth.nnz:  # the VAE is the explore part: stop early on new items
                vae_val = (hist, new_truth)
        self.vae.fit(X, vae_val, progress=progress)
        self.n_items = X.shape[1]
        if validation is not None and truth.nnz:
            self._choose_blend(hist, truth, new_truth)
        return self

    def _vae_parts(self, hist: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray | None]:
        """(VAE logits without the EASE term, EASE term or None) of ``hist``'s rows: scored
        once, so every EASE weight is a cheap sum."""
        net = self.vae.net_
        if net.skip_B is None:
            return self.vae.score(hist).astype(np.float64), None
        net.use_skip = False
        try:
            pure = self.vae.score(hist).astype(np.float64)
        finally:
            net.use_skip = True
        Xt = transform_values(hist, self.vae.config.input_transform)
        lin = np.asarray(Xt @ net.skip_B.detach().cpu().numpy(), dtype=np.float64)
        return pure, lin

    def _choose_blend(self, hist: sp.csr_matrix, truth: sp.csr_matrix,
                      new_truth: sp.csr_matrix) -> None:
        t0 = time.perf_counter()
        pure, lin = self._vae_parts(hist)
        ease_weights = self.ease_weights if lin is not None else (0.0,)
        seen = hist.toarray() > 0
        R = _repeat(hist)
        P_own = np.where(seen, self.trend_[None, :].astype(np.float64), 0.0)
        explore_ndcg: dict[str, float] = {}
        best: tuple[float, ...] | None = None
        for T in self.temperatures:
            by_mix = {}
            for s_w in ease_weights:
                logits = pure if lin is None else pure + s_w * lin
                for a in self.trend_shares:
                    E = exclude_seen(_explore(logits, seen, self.trend_, T, a), hist)
                    by_mix[s_w, a] = _ndcg20(E, new_truth)
                    explore_ndcg[f"T={T},s={s_w},a={a}"] = by_mix[s_w, a]
            s_w, a = max(by_mix, key=lambda k: (by_mix[k], -k[1], -k[0]))
            logits = pure if lin is None else pure + s_w * lin
            E = _explore(logits, seen, self.trend_, T, a)
            for wr, wp, wx in itertools.product(self.weight_grid, repeat=3):
                if max(wr, wp, wx) != max(self.weight_grid) or wx <= 0:
                    continue  # scale-free: one weight at the top of the grid; and new
                    # items always keep the explore order (w_x = 0 would tie them all at 0)
                v = _ndcg20(wr * R + wp * P_own + wx * E, truth)
                if best is None or v > best[0]:
                    best = (v, T, s_w, a, wr, wp, wx)
        assert best is not None
        v, T, s_w, a, wr, wp, wx = best
        if lin is not None:  # scoring reads the weight from the network (and its artifact)
            self.vae.net_.skip_weight.fill_(float(s_w))
        self.blend_ = {"temperature": T, "ease_weight": s_w, "trend_share": a, "repeat": wr,
                       "trend": wp, "explore": wx}
        self.blend_search_ = {"validation_ndcg@20_all": v,
                              "validation_ndcg@20_explore": explore_ndcg[
                                  f"T={T},s={s_w},a={a}"],
                              "explore_ndcg@20_by_T_s_a": explore_ndcg,
                              "validation_users": int(hist.shape[0]),
                              "seconds": time.perf_counter() - t0}

    # --- score -------------------------------------------------------------------------------
    def components(self, X: sp.spmatrix) -> dict[str, np.ndarray]:
        """The three parts for rows of ``X`` (repeat, trend on own items, explore): for
        reports and the shop's "buy again" / "new for you" rows."""
        return blend_components(self._check_columns(X), self.vae.score, self.trend_, self.blend_)

    def score(self, X: sp.spmatrix) -> np.ndarray:
        return blended_score(self.components(X), self.blend_)

    def item_vectors(self) -> np.ndarray:
        return self.vae.item_vectors()

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        return self.vae.similar_items(idx, k)

    # --- persistence -------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        return {"trend": self.trend_, **{f"vae/{k}": v for k, v in self.vae._arrays().items()}}

    def _extra(self) -> dict[str, Any]:
        return {"vae": self.vae._extra(), "blend": self.blend_,
                "blend_search": self.blend_search_}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.trend_ = arrays["trend"].astype(np.float32)
        if self.trend_.shape != (self.n_items,):
            raise ValueError("trend has the wrong shape")
        self.vae.n_items = self.n_items
        self.vae._restore({k[4:]: v for k, v in arrays.items() if k.startswith("vae/")},
                          extra.get("vae", {}))
        self.blend_ = {k: float(v) for k, v in extra["blend"].items()}
        self.blend_search_ = dict(extra.get("blend_search", {}))


