""""For you": the shopper's latest events folded into the served model, in process.

No retraining: a new anonymous visitor's third click already changes their list.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..conf import app_settings
from ..learning.versions import LoadedVersion
from ..ml.foldin import closest_history, history_row, top_n
from ..models import Event
from .pool import active_model
from .types import Candidate, Reason


def fold_in(loaded: LoadedVersion, history: Sequence[tuple[int, str]], n: int) -> list[Candidate]:
    """The model's top ``n`` items for this history, each with the history item behind it."""
    index = active_model.index()
    weights = app_settings.EVENT_WEIGHTS
    row: dict[int, float] = {}
    for item, event in history:
        j = index.get(item)
        w = weights.get(event, 0.0)
        if j is not None and w > 0:
            row[j] = max(row.get(j, 0.0), w)
    if not row:
        return []
    cols = np.fromiter(row.keys(), dtype=np.int64)
    X = history_row(cols, np.ones(len(cols), np.float32), loaded.model.n_items)
    scores = np.asarray(loaded.model.score(X), dtype=np.float32).ravel()
    scores[cols] = -np.inf  # what they already interacted with is not a discovery
    top = top_n(scores, n)
    reasons = _because(top, cols, history, loaded)
    return [
        Candidate(int(loaded.item_ids[j]), float(scores[j]), "model", reason)
        for j, reason in zip(top, reasons, strict=True)
    ]


def _because(
    top: np.ndarray,
    history_cols: np.ndarray,
    history: Sequence[tuple[int, str]],
    loaded: LoadedVersion,
) -> list[Reason]:
    """For each recommendation, the history item closest to it in the model's item space."""
    vectors = active_model.vectors()
    if vectors is None or not len(top):
        return [Reason()] * len(top)
    events: dict[int, str] = {}
    for item, event in history:
        events.setdefault(item, event)
    out = []
    for j in closest_history(vectors, top, history_cols):
        item = int(loaded.item_ids[j])
        verb = "bought" if events.get(item) == Event.PURCHASE else "viewed"
        out.append(Reason.because(verb, item))
    return out
