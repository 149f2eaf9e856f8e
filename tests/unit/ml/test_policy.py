"""Per-placement exclusion policy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.ml.policy import (
    PLACEMENT_DEFAULTS,
    Exclusion,
    apply_exclusion,
    only_purchased,
)

BOUGHT = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32))
SEEN = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0]], np.float32))


def scores() -> np.ndarray:
    return np.arange(8, dtype=np.float32).reshape(2, 4)


def test_none_keeps_repeats() -> None:
    assert (apply_exclusion(scores(), BOUGHT, SEEN, "none") == scores()).all()


def test_purchased_hides_only_bought() -> None:
    s = apply_exclusion(scores(), BOUGHT, SEEN, Exclusion.PURCHASED)
    assert np.isneginf(s).sum() == 1 and np.isneginf(s[0, 0])


def test_seen_hides_history() -> None:
    s = apply_exclusion(scores(), None, SEEN, "seen")
    assert np.isneginf(s).tolist() == [[True, True, False, False], [False, False, True, False]]


def test_bad_policy_and_missing_matrix() -> None:
    with pytest.raises(ValueError):
        apply_exclusion(scores(), BOUGHT, SEEN, "everything")
    with pytest.raises(ValueError, match="bought"):
        apply_exclusion(scores(), None, SEEN, "purchased")


def test_defaults_and_buy_again() -> None:
    assert PLACEMENT_DEFAULTS["for_you"] == "none"
    assert PLACEMENT_DEFAULTS["similar"] == PLACEMENT_DEFAULTS["bought_together"] == "purchased"
    s = only_purchased(scores(), BOUGHT)
    assert np.isfinite(s).tolist() == [[True, False, False, False], [False] * 4]
