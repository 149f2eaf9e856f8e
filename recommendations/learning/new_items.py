"""Items a version does not know, placed in it by their content: :func:`place_new_items`.

A product added after a version's training has no column in its model. This module predicts
one from the item's content (the adapter's text, category and price: the TF-IDF of
:mod:`..ml.content`, as content neighbours in :mod:`.related` use) with the map of
:mod:`..ml.new_items` learnt on the items the version knows - its column of the item-item
term and, for a model with a Mult-VAE, its decoder row - and stores them as a
:class:`~..models.NewItemColumn` row; "for you" (``serving.new_items``) then scores the item
for any shopper on the model's own scale, as it scores the items it knows. Runs after the
version's related items (``tasks.score_similarity``) and between retrains
(``manage.py recommendations_refresh``): torch is not imported (the served form is used).
"""

from __future__ import annotations

import logging
import secrets

import numpy as np
import scipy.sparse as sp
from django.core.cache import cache
from django.db import transaction

from .. import cache_keys
from ..adapters import get_adapter
from ..ml import content
from ..ml.new_items import decoder_rows, item_item_term, predict_columns, predict_rows
from ..models import ModelVersion, NewItemColumn
from .versions import load_version

logger = logging.getLogger(__name__)


def place_new_items(version: ModelVersion | int) -> int:
    """Place the catalogue's visible items that ``version`` does not know; returns how many.

    Replaces all of the version's placements in one transaction (an item since deleted,
    hidden or known leaves; one added since the last call arrives), then tells serving
    processes to reload them. Idempotent; safe to call as often as the catalogue changes
    (cost: ``docs/serving.md``). A version whose model has neither an item-item term nor a
    VAE (popularity, item-kNN) places nothing and keeps no rows: its new items reach lists by
    content neighbours and the "New in" filler only.
    """
    if not isinstance(version, ModelVersion):
        version = ModelVersion.objects.get(pk=version)
    loaded = load_version(version)  # the served form: numpy, no torch
    term = item_item_term(loaded.model)
    decoder = decoder_rows(loaded.model)
    adapter = get_adapter()
    known_ids = np.asarray(loaded.item_ids, dtype=np.int64)
    visible = np.array(sorted(adapter.visible_items().values_list("pk", flat=True)), np.int64)
    new_ids = np.setdiff1d(visible, known_ids)
    rows: list[NewItemColumn] = []
    if (term is not None or decoder is not None) and len(new_ids):
        catalogue = list(
            adapter.item_queryset().filter(pk__in=[*known_ids.tolist(), *new_ids.tolist()])
            .order_by("pk")
        )
        ids = np.array([item.pk for item in catalogue], dtype=np.int64)
        features = content.tfidf(content.documents(
            [adapter.item_content(item) for item in catalogue],
            [adapter.item_category_id(item) for item in catalogue],
            [adapter.item_price(item) for item in catalogue],
        ))
        known = np.isin(ids, known_ids)
        new = np.isin(ids, new_ids)
        index = loaded.item_index()
        columns = np.array([index[int(pk)] for pk in ids[known]], np.int64)
        n_new = int(new.sum())
        placed = (predict_columns(term[0], columns, features[known], features[new])
                  if term is not None
                  else sp.csr_matrix((n_new, loaded.model.n_items), dtype=np.float32))
        vectors = (predict_rows(decoder, columns, features[known], features[new])
                   if decoder is not None else None)
        for r, item_id in enumerate(ids[new]):
            lo, hi = placed.indptr[r], placed.indptr[r + 1]
            rows.append(NewItemColumn(
                version=version, item_id=int(item_id),
                indices=placed.indices[lo:hi].astype("<i4").tobytes(),
                weights=placed.data[lo:hi].astype("<f4").tobytes(),
                decoder=b"" if vectors is None else vectors[r].astype("<f4").tobytes(),
            ))
    with transaction.atomic():
        NewItemColumn.objects.filter(version=version).delete()
        NewItemColumn.objects.bulk_create(rows, batch_size=500)
        transaction.on_commit(lambda: changed(version.pk, len(rows)))
    logger.info("v%s: %d new items placed by content", version.pk, len(rows))
    return len(rows)


def changed(version_id: int, placed: int) -> None:
    """Serving processes reload the version's placements on their next request (the token
    starts with their number: a version without any costs serving no query)."""
    cache.set(cache_keys.new_items(version_id), f"{placed}:{secrets.token_hex(8)}", None)
