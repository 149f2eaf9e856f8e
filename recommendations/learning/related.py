"""Related-item lists of one model version, written as :class:`RelatedItem` rows.

- ``similar``: cosine neighbours of the model's item vectors (blocked matrix products);
  items the model has never seen (new arrivals) get neighbours from their content (name,
  description, category and price band), so they reach carousels on their first day.
- ``bought_together``: items bought in the same orders (:func:`extract.order_lines`),
  ranked by lift shrunk toward 1 so that a pair seen twice does not outrank a pair seen
  fifty times (:func:`recommendations.ml.baskets.association`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import transaction

from ..adapters import get_adapter
from ..conf import app_settings
from ..db import bulk_insert
from ..ml import content
from ..ml.baskets import Partners, association
from ..ml.similarity import topk_cosine_on_best_device
from ..models import ModelVersion, RelatedItem
from .extract import order_lines
from .versions import load_version

logger = logging.getLogger(__name__)

COLUMNS = ("version_id", "item_id", "related_id", "kind", "score", "rank")
_TOKEN = re.compile(r"[a-z0-9]{2,}")


@dataclass
class RelatedReport:
    similar: int = 0
    content_based_items: int = 0
    bought_together: int = 0


def compute_related(
    version: ModelVersion, progress: Callable[[str], None] | None = None
) -> RelatedReport:
    """Replace the version's related-item rows, in one transaction."""
    say = progress or (lambda message: logger.info("v%s: %s", version.pk, message))
    k = app_settings.RELATED_ITEMS_K
    adapter = get_adapter()
    catalogue = list(adapter.item_queryset().order_by("pk"))
    existing = np.array([item.pk for item in catalogue], dtype=np.int64)
    report = RelatedReport()
    rows: list[tuple] = []

    loaded = load_version(version, served=False)  # the trained model's own item vectors
    vectors = loaded.model.item_vectors()
    idx, scores = topk_cosine_on_best_device(vectors, k, app_settings.ANN["MIN_ITEMS"])
    rows += _rows(version.pk, RelatedItem.Kind.SIMILAR, loaded.item_ids, idx, scores, existing)
    report.similar = len(rows)
    say(f"{report.similar:,} similar-item pairs from the model")

    unseen = np.setdiff1d(existing, loaded.item_ids)
    if len(unseen):
        content_rows = _content_neighbours(version.pk, catalogue, unseen, k, adapter)
        rows += content_rows
        report.content_based_items = len(unseen)
        say(f"{len(unseen):,} items unknown to the model got content-based neighbours")

    together = _bought_together(version.pk, k, existing)
    rows += together
    report.bought_together = len(together)
    say(f"{report.bought_together:,} bought-together pairs")

    with transaction.atomic():
        RelatedItem.objects.filter(version=version).delete()
        bulk_insert(RelatedItem, COLUMNS, rows)
    return report


def _rows(
    version_id: int,
    kind: str,
    item_ids: np.ndarray,
    idx: np.ndarray,
    scores: np.ndarray,
    existing: np.ndarray,
    targets_of: np.ndarray | None = None,
) -> list[tuple]:
    """Neighbour tables -> rows, skipping padding (-1) and items deleted since training.
    Row ``i`` lists the neighbours of ``item_ids[i]``; ``idx`` points into ``targets_of``
    (default: ``item_ids`` itself)."""
    targets_of = item_ids if targets_of is None else targets_of
    valid = idx >= 0
    sources = np.broadcast_to(item_ids[:, None], idx.shape)
    targets = np.where(valid, targets_of[np.clip(idx, 0, None)], -1)
    keep = valid & np.isin(sources, existing) & np.isin(targets, existing)
    ranks = np.cumsum(keep, axis=1)  # 1-based rank among kept neighbours
    r, c = np.nonzero(keep)
    return [
        (
            version_id,
            int(sources[i, j]),
            int(targets[i, j]),
            kind,
            float(scores[i, j]),
            int(ranks[i, j]),
        )
        for i, j in zip(r, c, strict=True)
    ]


def _content_neighbours(
    version_id: int, catalogue: list, unseen: np.ndarray, k: int, adapter
) -> list[tuple]:
    """Similar items of the items the model has not seen, by their content (ml.content)."""
    docs = content.documents(
        [adapter.item_content(item) for item in catalogue],
        [adapter.item_category_id(item) for item in catalogue],
        [adapter.item_price(item) for item in catalogue],
    )
    ids = np.array([item.pk for item in catalogue], dtype=np.int64)
    positions = np.searchsorted(ids, unseen)
    idx, scores = content.neighbours(content.tfidf(docs), positions, k)
    return _rows(
        version_id, RelatedItem.Kind.SIMILAR, ids[positions], idx, scores, ids, targets_of=ids
    )


def bought_together_partners(
    lines: pd.DataFrame, k: int, only: np.ndarray | None = None
) -> Partners:
    """``ml.baskets.association`` of the order lines with the ``BOUGHT_TOGETHER`` settings
    (``only``: just these items' partners, as a refresh needs)."""
    cfg = app_settings.BOUGHT_TOGETHER
    return association(
        lines,
        k=k,
        method=cfg["METHOD"],
        min_support=cfg["MIN_SUPPORT"],
        prior=cfg["PRIOR"],
        half_life_days=cfg["HALF_LIFE_DAYS"],
        only=only,
    )


def _bought_together(version_id: int, k: int, existing: np.ndarray) -> list[tuple]:
    """Partners in the same orders, by lift shrunk toward 1 for small counts (ml.baskets)."""
    lines = order_lines()
    if lines.empty:
        return []
    partners = bought_together_partners(lines, k)
    return _rows(
        version_id,
        RelatedItem.Kind.BOUGHT_TOGETHER,
        np.asarray(partners.item_ids, np.int64),
        partners.indices,
        partners.scores,
        existing,
    )
