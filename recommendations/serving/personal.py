""" "For you" and "buy it again": the shopper's latest events folded into the served model,
in process.

No retraining: a new anonymous visitor's third click already changes their list. The row
is weighted as the version was trained (its recorded event weights and half-life), so a
purchase counts more than a view and last month's visit less than today's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..conf import app_settings
from ..learning.versions import LoadedVersion
from ..ml.foldin import closest_history, event_row, history_row, top_n
from ..ml.policy import Exclusion, apply_exclusion, only_purchased
from ..models import Event
from . import new_items
from .pool import active_model
from .types import Candidate, Reason

#: A history event: (item id, event type, epoch seconds).
HistoryEvent = tuple[int, str, float]


def fold_in(
    loaded: LoadedVersion,
    history: Sequence[HistoryEvent],
    n: int,
    policy: str = Exclusion.NONE,
    now: float | None = None,
) -> list[Candidate]:
    """The model's top ``n`` items for this history, each with the history item behind it.

    ``policy``: what the placement may show again (:mod:`recommendations.ml.policy`), or
    ``"only_purchased"`` for "buy it again".
    """
    index = active_model.index()
    known = [(index[item], event, stamp) for item, event, stamp in history if item in index]
    if not known:
        return []
    cols = np.array([c for c, _, _ in known], dtype=np.int64)
    events = [e for _, e, _ in known]
    ages = ((time.time() if now is None else now) - np.array([t for _, _, t in known])) / 86400
    weights, half_life = _training_weights(loaded)
    X = event_row(cols, events, ages, loaded.model.n_items, weights, half_life)
    if not X.nnz:
        return []
    bought_cols = cols[[e == Event.PURCHASE for e in events]]
    found = _candidate_scores(loaded, X, n)
    if found is not None:  # a big catalogue: the ANN index's candidates, scored exactly
        candidates, scores = found  # (items placed since training are not scored here)
        _exclude_columns(scores, candidates, bought_cols, X.indices, policy)
        top = top_n(scores, n)
        scores, top = scores[top], candidates[top]
        return _candidates(top, scores, X, history, loaded)
    placed = new_items.placed(loaded) if policy != "only_purchased" else None
    if placed is None:
        scores = np.asarray(loaded.model.score(X), dtype=np.float64)
    else:  # items added since training, scored on the model's scale (serving/new_items.py)
        scores, new_scores = placed.score(loaded, X)
        scores = np.asarray(scores, dtype=np.float64)
    if policy != Exclusion.NONE:  # "for you" by default: nothing to hide, nothing to build
        bought = _row(bought_cols, loaded.model.n_items)
        if policy == "only_purchased":
            only_purchased(scores, bought)
        else:
            apply_exclusion(scores, bought, X, policy)
    scores = scores.ravel()
    top = top_n(scores, n)
    out = _candidates(top, scores[top], X, history, loaded)
    if placed is not None:
        fresh = new_items.candidates(loaded, placed, new_scores, X, history, policy, n)
        out = new_items.merge(out, fresh, n)
    return out


def _candidates(top: np.ndarray, scores: np.ndarray, X: sp.csr_matrix,
                history: Sequence[HistoryEvent], loaded: LoadedVersion) -> list[Candidate]:
    reasons = _because(top, X.indices, history, loaded)
    return [
        Candidate(int(loaded.item_ids[j]), float(score), "model", reason)
        for j, score, reason in zip(top, scores, reasons, strict=True)
    ]


def _candidate_scores(loaded: LoadedVersion, X: sp.csr_matrix, n: int
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(columns, scores)`` from the version's ANN index (float64), or None: below
    ``ANN["MIN_ITEMS"]`` (no index) every item is scored by ``model.score``."""
    score_candidates = getattr(loaded.model, "score_candidates", None)
    if score_candidates is None:
        return None
    cfg = app_settings.ANN
    found = score_candidates(X, max(int(cfg["CANDIDATES"]), n), int(cfg["EF"]))
    if found is None:
        return None
    return found[0], np.asarray(found[1], dtype=np.float64)


def _exclude_columns(scores: np.ndarray, columns: np.ndarray, bought: np.ndarray,
                     seen: np.ndarray, policy: str) -> None:
    """:func:`apply_exclusion` / :func:`only_purchased` on candidate columns, in place."""
    if policy == "only_purchased":
        scores[~np.isin(columns, bought)] = -np.inf
    elif policy == Exclusion.PURCHASED:
        scores[np.isin(columns, bought)] = -np.inf
    elif policy == Exclusion.SEEN:
        scores[np.isin(columns, seen)] = -np.inf


def _training_weights(loaded: LoadedVersion) -> tuple[dict[str, float], float | None]:
    """The event weights and half-life the version was trained with (the settings' for a
    version that recorded none)."""
    if loaded.event_weights:
        return loaded.event_weights, loaded.half_life_days
    return app_settings.EVENT_WEIGHTS, app_settings.TRAINING["HALF_LIFE_DAYS"]


def _row(columns: np.ndarray, n_items: int) -> sp.csr_matrix:
    cols = np.unique(columns)
    return history_row(cols, np.ones(len(cols), np.float32), n_items)


def _because(
    top: np.ndarray,
    history_cols: np.ndarray,
    history: Sequence[HistoryEvent],
    loaded: LoadedVersion,
) -> list[Reason]:
    """For each recommendation, the history item closest to it in the model's item space
    (for a re-buy: the item itself, "because you bought it")."""
    vectors = active_model.vectors()
    if vectors is None or not len(top):
        return [Reason()] * len(top)
    events: dict[int, str] = {}
    for item, event, _ in history:
        if event == Event.PURCHASE or item not in events:
            events[item] = event
    out = []
    for j, closest in zip(top, closest_history(vectors, top, history_cols), strict=True):
        item = int(loaded.item_ids[j if j in history_cols else closest])
        verb = "bought" if events.get(item) == Event.PURCHASE else "viewed"
        out.append(Reason.because(verb, item))
    return out
