"""New items in "for you": the version's placements (``learning.new_items``) scored with the
shopper's history on the model's own scale (:func:`recommendations.ml.new_items.score_with_new`).

The placements of a version are read from the database once per process and kept until
:func:`recommendations.learning.new_items.place_new_items` replaces them: it replaces a
token in Django's cache, which each request reads once (without a token in the cache, a
fingerprint of the rows is read and kept for :data:`RECHECK_SECONDS`). A version without
placements costs that one cache read.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from django.core.cache import cache
from django.db.models import Count, Max

from .. import cache_keys
from ..learning.versions import LoadedVersion
from ..ml.foldin import top_n
from ..ml.new_items import closest_history, placeable, score_with_new, term_input
from ..ml.policy import Exclusion
from ..ml.serving_model import ServedModel
from ..models import Event, NewItemColumn
from . import request
from .pool import active_model
from .types import Candidate, Reason

#: How long a process trusts a fingerprint read from the database (no token in the cache).
RECHECK_SECONDS = 60
#: The label of a new item no history item explains.
NEW_IN = "New in"


@dataclass(frozen=True)
class Placed:
    """A version's new items: ``item_ids[i]``'s predicted column is ``columns[:, i]``, its
    predicted decoder row ``decoder[i]`` (None: the model has no VAE, or some item was placed
    without one)."""

    item_ids: np.ndarray
    columns: sp.csr_matrix  # (the model's items, new items)
    decoder: np.ndarray | None = None  # (new items, width + 1)

    def score(self, loaded: LoadedVersion, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        return score_with_new(loaded.model, X, self.columns, self.decoder)


_lock = threading.Lock()
_placed: dict[int, tuple[str, Placed | None]] = {}


def token(version_id: int | None) -> str:
    """Changes whenever the version's placements do (part of the key of cached lists);
    begins with their number and a colon."""
    if version_id is None:
        return ""
    return request.remembered(("new-items", version_id), lambda: _token(version_id))


def placed(loaded: LoadedVersion) -> Placed | None:
    """The version's placements (None when it has none), current to this request."""
    version_id = loaded.version_id
    token_now = token(version_id)
    held = _placed.get(version_id)
    if held is not None and held[0] == token_now:
        return held[1]
    value = _load(loaded) if not token_now.startswith("0:") else None  # none: no query
    with _lock:
        in_use = {version_id, *active_model.loaded_version_ids()}  # the pool drops the rest
        for old in set(_placed) - in_use:
            del _placed[old]
        _placed[version_id] = (token_now, value)
    return value


def _token(version_id: int) -> str:
    key = cache_keys.new_items(version_id)
    token = cache.get(key)
    if token is None:
        rows = NewItemColumn.objects.filter(version_id=version_id).aggregate(
            n=Count("id"), last=Max("id"))
        token = f"{rows['n']}:db:{rows['last']}"
        cache.add(key, token, RECHECK_SECONDS)
    return token


def _load(loaded: LoadedVersion) -> Placed | None:
    if not isinstance(loaded.model, ServedModel) or not placeable(loaded.model):
        return None  # nothing scores them (placing keeps no rows for such a model either)
    index = loaded.item_index()
    ids, rows, cols, vals, decoder = [], [], [], [], []
    placements = NewItemColumn.objects.filter(version_id=loaded.version_id).order_by("item_id")
    for item_id, indices, weights, row in placements.values_list(
            "item_id", "indices", "weights", "decoder"):
        if item_id in index:  # the version knows it after all: its own column serves
            continue
        decoder.append(np.frombuffer(bytes(row), dtype="<f4"))
        r = np.frombuffer(bytes(indices), dtype="<i4").astype(np.int64)
        w = np.frombuffer(bytes(weights), dtype="<f4")
        keep = r < loaded.model.n_items
        rows.append(r[keep])
        vals.append(w[keep])
        cols.append(np.full(int(keep.sum()), len(ids), np.int64))
        ids.append(item_id)
    if not ids:
        return None
    widths = {len(row) for row in decoder}  # one width, the model's (+ the bias), or none
    vectors = loaded.model.item_vectors()
    expected = vectors.shape[1] + 1 if isinstance(vectors, np.ndarray) else None
    rows_or_none = np.vstack(decoder) if widths == {expected} else None
    columns = sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(loaded.model.n_items, len(ids)),
    )
    return Placed(np.array(ids), columns, rows_or_none)


def candidates(
    loaded: LoadedVersion,
    placed_items: Placed,
    new_scores: np.ndarray,
    X: sp.csr_matrix,
    history: Sequence[tuple[int, str, float]],
    policy: str,
    n: int,
) -> list[Candidate]:
    """The ``n`` best new items for this history (row ``X``), each with its reason: "New,
    like <the history item that raises it most>", or "New in". What the placement's policy
    hides of the shopper's own history is left out."""
    scores = np.asarray(new_scores, dtype=np.float64).ravel().copy()
    hidden = {item for item, event, _ in history
              if policy == Exclusion.SEEN or (policy == Exclusion.PURCHASED
                                              and event == Event.PURCHASE)}
    if hidden:
        scores[np.isin(placed_items.item_ids, list(hidden))] = -np.inf
    top = [j for j in top_n(scores, n) if np.isfinite(scores[j])]
    if not top:
        return []
    closest = closest_history(term_input(loaded.model, X), placed_items.columns,
                              np.asarray(top))
    out = []
    for j, col in zip(top, closest, strict=True):
        reason = Reason.because("like", int(loaded.item_ids[col])) if col >= 0 \
            else Reason(label=NEW_IN)
        out.append(Candidate(int(placed_items.item_ids[j]), float(scores[j]), "model", reason))
    return out


def merge(known: list[Candidate], new: list[Candidate], n: int) -> list[Candidate]:
    """Known and new candidates, best score first (the same scale), the first ``n``."""
    return sorted([*known, *new], key=lambda c: -c.score)[:n]
