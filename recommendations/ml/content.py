"""Content similarity: items described by their words, category and price band.

What places an item the model has never seen (a new arrival) next to the items it resembles.
Pure numpy/scipy: the caller gives each item's text, category key and price.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

TOKEN = re.compile(r"[a-z0-9]{2,}")
#: A category is worth this many words of the description.
CATEGORY_WEIGHT = 2


def documents(
    texts: Sequence[str], categories: Sequence[Any], prices: Sequence[float | None]
) -> list[list[str]]:
    """Each item as tokens: its words, its category (twice) and its price quintile."""
    values = np.array([np.nan if p is None else float(p) for p in prices], dtype=float)
    finite = values[np.isfinite(values)]
    edges = np.quantile(finite, [0.2, 0.4, 0.6, 0.8]) if len(finite) else np.array([])
    docs = []
    for text, category, price in zip(texts, categories, values, strict=True):
        tokens = TOKEN.findall(text.lower())
        if category is not None:
            tokens += [f"__category_{category}"] * CATEGORY_WEIGHT
        if np.isfinite(price):
            tokens.append(f"__price_band_{int(np.searchsorted(edges, price))}")
        docs.append(tokens)
    return docs


def tfidf(docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
    """Row-normalised TF-IDF (sublinear term frequency, smoothed IDF) of ``docs``."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for r, tokens in enumerate(docs):
        for token in tokens:
            rows.append(r)
            cols.append(vocab.setdefault(token, len(vocab)))
    tf = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(docs), len(vocab))
    )
    tf.sum_duplicates()
    tf.data = 1.0 + np.log(tf.data)
    df = np.bincount(tf.indices, minlength=len(vocab))
    weighted = tf @ sp.diags(np.log((1 + len(docs)) / (1 + df)).astype(np.float32) + 1.0)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(1)).ravel())
    return (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted).tocsr()


def neighbours(
    vectors: sp.csr_matrix, rows: np.ndarray, k: int, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows``, its ``k`` most similar other rows (cosine) and the scores,
    best first; -1 and 0 pad rows with fewer than ``k`` positive neighbours."""
    k = min(k, vectors.shape[0] - 1)
    rows = np.asarray(rows, dtype=np.int64)
    if k <= 0 or not len(rows):
        return np.full((len(rows), 0), -1, np.int64), np.zeros((len(rows), 0), np.float32)
    out_idx = np.full((len(rows), k), -1, np.int64)
    out_val = np.zeros((len(rows), k), np.float32)
    for lo in range(0, len(rows), block):
        chunk = rows[lo : lo + block]
        sims = (vectors[chunk] @ vectors.T).toarray()
        sims[np.arange(len(chunk)), chunk] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        positive = scores > 0
        out_idx[lo : lo + len(chunk)] = np.where(positive, top, -1)
        out_val[lo : lo + len(chunk)] = np.where(positive, scores, 0.0)
    return out_idx, out_val
