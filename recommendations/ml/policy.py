"""What a placement may show a shopper again: the exclusion policy, per placement.

Whether to hide what a shopper already has is not a model property but a merchandising choice
of each placement: "for you" in a gift shop should show the candles this customer reorders
every month (43 % of next-month purchases on online-retail are re-buys), "similar items" should
not offer the very thing they bought. Pure numpy; the Django side reads :data:`PLACEMENT_DEFAULTS`.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import scipy.sparse as sp


class Exclusion(StrEnum):
    """``none``: repeats allowed, ranked as the model ranks them; ``purchased``: hide items the
    shopper bought; ``seen``: hide everything in the shopper's history (views, carts, buys)."""

    NONE = "none"
    PURCHASED = "purchased"
    SEEN = "seen"


#: Per list (a placement of that list follows it unless ``RECOMMENDATIONS["EXCLUDE_BOUGHT"]``
#: names the placement or the list). Lists built for a shopper keep their re-buys ("for you",
#: "recently viewed"); lists that suggest something new to go with an item or a trend hide what
#: the shopper bought; "popular" is the shop's best sellers as they are. ``buy_again`` is the
#: opposite of an exclusion: it lists ONLY items the shopper bought (see
#: :func:`only_purchased`), so its value here is ``"only_purchased"``, not an
#: :class:`Exclusion`. docs/serving.md has this table.
PLACEMENT_DEFAULTS: dict[str, str] = {
    "for_you": Exclusion.NONE.value,
    "buy_again": "only_purchased",
    "similar": Exclusion.PURCHASED.value,
    "bought_together": Exclusion.PURCHASED.value,
    "trending": Exclusion.PURCHASED.value,
    "popular": Exclusion.NONE.value,
    "recently_viewed": Exclusion.NONE.value,
}


def _mask(scores: np.ndarray, M: sp.spmatrix | None) -> None:
    if M is None:
        return
    M = sp.csr_matrix(M)
    if M.shape != scores.shape:
        raise ValueError(f"scores {scores.shape} and mask {M.shape} differ in shape")
    M.eliminate_zeros()
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    scores[rows, M.indices] = -np.inf


def apply_exclusion(scores: np.ndarray, bought: sp.spmatrix | None, seen: sp.spmatrix | None,
                    policy: str | Exclusion) -> np.ndarray:
    """Set excluded items' scores to -inf, in place; returns ``scores``.

    ``bought``/``seen`` are shopper x item matrices (any stored non-zero = yes), aligned with
    ``scores``; the one the policy does not need may be None.
    """
    p = Exclusion(policy)
    if p is Exclusion.PURCHASED:
        if bought is None:
            raise ValueError("policy 'purchased' needs the bought matrix")
        _mask(scores, bought)
    elif p is Exclusion.SEEN:
        if seen is None:
            raise ValueError("policy 'seen' needs the seen (history) matrix")
        _mask(scores, seen)
    return scores


def only_purchased(scores: np.ndarray, bought: sp.spmatrix) -> np.ndarray:
    """``buy_again``: everything the shopper did NOT buy set to -inf, in place."""
    B = sp.csr_matrix(bought)
    if B.shape != scores.shape:
        raise ValueError(f"scores {scores.shape} and bought {B.shape} differ in shape")
    B.eliminate_zeros()
    keep = np.zeros(scores.shape, bool)
    keep[np.repeat(np.arange(B.shape[0]), np.diff(B.indptr)), B.indices] = True
    scores[~keep] = -np.inf
    return scores
