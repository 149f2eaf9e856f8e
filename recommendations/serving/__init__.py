"""The read side: the public lists, and the one :func:`serve` path that pages and the API use.

Rooms: :mod:`.lists` (the lists), :mod:`.assemble` (fallbacks, visibility, rules),
:mod:`.catalogue` (epoch, item cache, fresh visibility), :mod:`.pool` (loaded model
versions), :mod:`.personal` (fold-in for "for you"), :mod:`.history`, :mod:`.popularity`,
:mod:`.rules`, :mod:`.experiments`, :mod:`.impressions`, :mod:`.feedback` ("not
interested"), :mod:`.exploration`, :mod:`.performance` (online
metrics), :mod:`.request` (per-request memos), :mod:`.types`.
"""

from .catalogue import catalogue_changed, get_item, item_payload
from .lists import (
    bought_together,
    buy_again,
    for_visitor,
    popular,
    recently_viewed,
    related_to,
    trending,
)
from .serve import serve
from .types import Recommendation, RecommendationList

__all__ = [
    "Recommendation",
    "RecommendationList",
    "bought_together",
    "buy_again",
    "catalogue_changed",
    "for_visitor",
    "get_item",
    "item_payload",
    "popular",
    "recently_viewed",
    "related_to",
    "serve",
    "trending",
]
