"""The last steps every list shares: candidates + fallbacks -> visible items -> rules -> k.

A list is never empty while the shop has a visible item: after the list's own candidates
come same-category best sellers, then best sellers, then (a shop with no sales yet) the
newest visible items. Visibility is read in one query (see :func:`catalogue.fetch`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_noop

from ..adapters import get_adapter
from ..conf import app_settings
from . import request
from .catalogue import fetch
from .diversity import config as diversity_config
from .diversity import diversify
from .exploration import explore
from .feedback import hidden
from .popularity import popular_rows
from .rules import apply_rules, rules_enabled, rules_for
from .types import (
    MODEL_STRATEGIES,
    Candidate,
    Reason,
    Recommendation,
    RecommendationList,
    reason_text,
)

CATEGORY_POPULAR = Reason(gettext_noop("Popular in this category"))
POPULAR = Reason(gettext_noop("Popular right now"))
NEW_IN = reason_text(gettext_noop("New in"), "", "")


def finish(
    placement: str,
    version_id: int | None,
    candidates: Iterable[Candidate],
    k: int,
    *,
    exclude: set[Any] | None = None,
    fallback: bool = True,
    context_items: list[Any] | None = None,
    category_hint: Any = None,
    known: dict[Any, bool] | None = None,
) -> RecommendationList:
    """At most ``k`` visible recommendations from ``candidates`` (then fallbacks), rules
    applied. ``known``: visibility already read in this request (no query needed for it)."""
    exclude = (exclude or set()) | hidden()  # what the shopper served said "not interested" in
    size = max(4 * k, k + 40)  # candidates checked: enough for sold-out items and rules
    pool = _distinct(candidates, exclude, size)
    if fallback and len(pool) < size:
        pool += _fallbacks(pool, exclude, size - len(pool), category_hint, context_items)
    # Without rules in force the list is the first k visible entries; rules (exclusions,
    # boosts) may reach further down, so they see every visible candidate; so does the
    # placement's diversity re-ranking, when it has one (off by default).
    diversity = diversity_config(placement)
    limit = None if diversity or (rules_enabled() and rules_in_force(placement)) else k
    result = _visible_recommendations(pool, placement, version_id, limit, known)
    if fallback and len(result) < k:
        result += _newest(placement, k - len(result), {rec.item.pk for rec in result} | exclude)
    if diversity:
        result = diversify(placement, result, k, diversity)
    if fallback:  # a list that takes fill-ins may give some positions to exploration
        result = explore(placement, result, k, exclude)
    result = apply_rules(placement, result, exclude=exclude)
    return RecommendationList(placement, version_id, result[:k])


def rules_in_force(placement: str) -> tuple:
    """``rules.rules_for(placement)`` as a tuple, read once per request."""
    return request.remembered(("rules", placement), lambda: tuple(rules_for(placement)))


def _distinct(candidates: Iterable[Candidate], exclude: set[Any], size: int) -> list[Candidate]:
    out: list[Candidate] = []
    seen = set(exclude)
    for candidate in candidates:
        if candidate.item_id not in seen:
            seen.add(candidate.item_id)
            out.append(candidate)
            if len(out) >= size:
                break
    return out


def _fallbacks(
    pool: list[Candidate],
    exclude: set[Any],
    room: int,
    category_hint: Any,
    context_items: list[Any] | None,
) -> list[Candidate]:
    """Best sellers of the list's category (the item's, or the shopper's latest), then
    best sellers, not already in ``pool``."""
    rows = popular_rows(app_settings.POPULAR_WINDOW_DAYS)
    wanted = category_hint
    if wanted is None and context_items:
        categories = {row[0]: row[2][0] for row in rows if row[2]}
        wanted = next((categories[i] for i in context_items if i in categories), None)
    seen = set(exclude) | {c.item_id for c in pool}
    out: list[Candidate] = []
    passes = [("category_popular", CATEGORY_POPULAR, wanted)] if wanted is not None else []
    passes.append(("popular", POPULAR, None))
    for strategy, reason, category in passes:
        for item, n, item_categories in rows:
            if len(out) >= room:
                return out
            if item not in seen and (category is None or category in item_categories):
                seen.add(item)
                out.append(Candidate(item, float(n), strategy, reason))
    return out


def _visible_recommendations(
    pool: list[Candidate],
    placement: str,
    version_id: int | None,
    limit: int | None,
    known: dict[Any, bool] | None,
) -> list[Recommendation]:
    named = {c.reason.item_id for c in pool if c.reason.item_id is not None}
    items, visible = fetch([c.item_id for c in pool], named, known)
    result: list[Recommendation] = []
    for candidate in pool:
        if candidate.item_id not in visible or candidate.item_id not in items:
            continue
        result.append(
            Recommendation(
                item=items[candidate.item_id],
                score=candidate.score,
                strategy=candidate.strategy,
                placement=placement,
                version_id=version_id if candidate.strategy in MODEL_STRATEGIES else None,
                reason=candidate.reason.text(items),
            )
        )
        if limit is not None and len(result) >= limit:
            break
    return result


def _newest(placement: str, n: int, have: set[Any]) -> list[Recommendation]:
    """A shop with (almost) no sales yet: any visible items, newest first."""
    visible = get_adapter().visible_items().exclude(pk__in=have).order_by("-pk")[:n]
    return [Recommendation(obj, 0.0, "catalogue", placement, None, NEW_IN) for obj in visible]
