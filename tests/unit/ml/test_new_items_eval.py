"""``evaluate --protocol newitems``: held-out items compete with known ones in full lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommendations.ml import content
from recommendations.ml.new_items_eval import evaluate_new_items, new_item_stats
from recommendations.ml.temporal import split_temporal

from .test_temporal import T0, synthetic_log

WORDS = ["ceramic teapot", "garden spade", "wool scarf", "candle holder"]


def test_new_item_stats_count_lists_and_purchases_of_new_items() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 0.0],   # top 2: items 0 and 1 (1 is new)
                       [0.0, 1.0, 5.0, 4.0]])  # top 2: items 2 and 3 (3 is new)
    truth = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], np.float32))
    got = new_item_stats(scores, truth, np.array([1, 3]), k=2)
    assert got == {"new_share@2": 0.5, "shoppers_with_new@2": 1.0,
                   "truth_new_share": 2 / 3, "new_item_recall@2": 0.5}


def test_placed_new_items_reach_the_lists_the_model_alone_leaves_them_out_of() -> None:
    log = synthetic_log(n_users=240)
    split = split_temporal(log, cut=T0 + pd.Timedelta(days=70),
                           test_fraction=0.2)
    cluster = [int(i[1:]) // 10 for i in split.item_ids]
    features = content.tfidf(content.documents(
        [f"{WORDS[c]} {i}" for i, c in zip(split.item_ids, cluster, strict=True)],
        cluster, [float(1 + c) for c in cluster]))
    rows = evaluate_new_items(split, features, share=0.2, seed=1, algorithm="next_basket",
                              retrained=False, model_params={
                                  "epochs": 20, "hidden": 32, "latent": 8,
                                  "batch_size": 64, "seed": 3})
    by = {(r["method"], r["task"]): r for r in rows}
    assert {m for m, _ in by} == {"without", "columns", "placed"}
    assert by[("without", "all")]["new_share@20"] == 0.0
    assert by[("placed", "all")]["shoppers_with_new@20"] > 0.5
    assert by[("placed", "all")]["new_item_recall@20"] > 0.5
    assert by[("placed", "explore")]["recall@20"] > by[("without", "explore")]["recall@20"]
    # the decoder rows add to what the columns alone place
    assert by[("placed", "all")]["recall@20"] >= by[("columns", "all")]["recall@20"]
