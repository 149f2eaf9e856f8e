"""association(only=...): a refresh's partial lists equal the full computation's rows."""

import numpy as np
import pandas as pd

from recommendations.ml.baskets import association


def test_only_computes_the_named_items_exactly_as_the_full_run():
    rng = np.random.default_rng(3)
    rows = [(f"o{o}", int(i)) for o in range(400) for i in rng.choice(30, 5, replace=False)]
    lines = pd.DataFrame(rows, columns=["basket", "item"])
    full = association(lines, k=5, min_support=2, block_size=7)
    part = association(lines, k=5, min_support=2, only=np.array([3, 17, 99]), block_size=2)
    assert (part.item_ids == full.item_ids).all()
    for item in full.item_ids:
        pos = int(np.flatnonzero(full.item_ids == item)[0])
        if item in (3, 17):
            assert (part.indices[pos] == full.indices[pos]).all()
            assert np.allclose(part.scores[pos], full.scores[pos])
            assert (part.indices[pos] >= 0).any()
        else:
            assert (part.indices[pos] == -1).all()
