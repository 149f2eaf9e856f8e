"""The public lists: what a carousel or an API response shows.

Every list is built the same way: candidates from the model (or the precomputed related
lists), then the fallbacks, fetched with their visibility in one query, de-duplicated, the
current item (and, per placement, already-bought items) excluded, merchandising rules
applied last (:func:`assemble.finish`). A list is never empty while the shop has a visible
item. Template tags and API views reach these through :func:`serve.serve`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db.models import Model
from django.utils.translation import gettext_noop

from .. import cache_keys
from ..adapters import get_adapter
from ..conf import app_settings
from ..db import compiled_rows
from ..ml.policy import PLACEMENT_DEFAULTS, Exclusion
from ..models import Event, RelatedItem
from . import new_items, request, shopper
from .assemble import POPULAR, finish, rules_in_force
from .catalogue import item_cache, visible
from .diversity import config as diversity_config
from .exploration import share
from .feedback import dismissed
from .feedback import hidden as dismissed_here
from .history import history, history_visible, signed_in_id
from .personal import fold_in
from .pool import active_model, active_version_id
from .popularity import popular_rows, trending_rows
from .rules import manual_related, rules_enabled
from .types import NO_REASON, Candidate, Reason, RecommendationList

TRENDING = Reason(gettext_noop("Trending this week"))
VIEWED = Reason(gettext_noop("You viewed this"))
MANUAL = Reason(gettext_noop("Recommended"))
BOUGHT = Reason(gettext_noop("You bought this"))
RELATED_REASONS = {
    RelatedItem.Kind.SIMILAR: Reason(gettext_noop("Similar")),
    RelatedItem.Kind.BOUGHT_TOGETHER: Reason(gettext_noop("Often bought together")),
}


def for_visitor(
    user: Any = None,
    visitor_id: str | None = None,
    k: int | None = None,
    placement: str = "for_you",
    exclude: Iterable[int] = (),
) -> RecommendationList:
    """Personal recommendations for a signed-in ``user`` or an anonymous ``visitor_id``.

    Re-buys stay when the placement's policy allows them (``EXCLUDE_BOUGHT``; "for you"
    does by default): the model ranks them where the shop's own data says they sell."""
    return _personal(user, visitor_id, k, placement, exclude, "for_you")


def buy_again(
    user: Any = None,
    visitor_id: str | None = None,
    k: int | None = None,
    placement: str = "buy_again",
    exclude: Iterable[int] = (),
) -> RecommendationList:
    """What the shopper bought, the likeliest to be bought again first (the model's own
    ranking; without a model, by number of purchases, then the latest). No fallback: a
    shopper who bought nothing gets an empty list."""
    return _personal(user, visitor_id, k, placement, exclude, "buy_again")


def exclusion_policy(placement: str, kind: str) -> str:
    """What ``placement`` (a list of ``kind``) may show the shopper again: ``EXCLUDE_BOUGHT``
    names it by placement, else by kind; a kind it does not name follows
    :data:`recommendations.ml.policy.PLACEMENT_DEFAULTS`. "Buy it again" lists only what was
    bought. The table, with the defaults, is in docs/serving.md."""
    if kind == "buy_again":
        return "only_purchased"
    policies = app_settings.EXCLUDE_BOUGHT
    if placement in policies:
        return policies[placement]
    return policies.get(kind, PLACEMENT_DEFAULTS.get(kind, Exclusion.NONE.value))


def hidden_for(
    placement: str, kind: str, user: Any = None, visitor_id: str | None = None
) -> frozenset[int]:
    """The items ``placement`` hides from this shopper (by default the one :func:`serve.serve`
    is building for): what they bought ("purchased") or everything in their history ("seen"),
    among their latest ``FOLD_IN_EVENTS`` events. Empty for nobody and for "none".

    Read once per request and kept with the shopper's cached lists, which a new event of
    theirs drops: an item is hidden from the page that follows its purchase."""
    policy = exclusion_policy(placement, kind)
    if policy not in (Exclusion.PURCHASED, Exclusion.SEEN):
        return frozenset()
    if user is None and not visitor_id:
        user, visitor_id = shopper.current()
    user_id = signed_in_id(user)
    if user_id is None and not visitor_id:
        return frozenset()

    def read() -> frozenset[int]:
        key = cache_keys.visitor(user_id, visitor_id)
        cached = cache.get(key) or {}
        entry = f"hidden:{policy}"
        if entry not in cached:
            cached[entry] = frozenset(_hidden(history(user_id, visitor_id), policy))
            cache.set(key, cached, app_settings.VISITOR_CACHE_SECONDS)
        return cached[entry]

    return request.remembered(("hidden", user_id, visitor_id, str(policy)), read)


def _personal(
    user: Any,
    visitor_id: str | None,
    k: int | None,
    placement: str,
    exclude: Iterable[int],
    kind: str,
) -> RecommendationList:
    k = k or app_settings.CAROUSEL_SIZE
    exclude = set(exclude)
    fallback = kind != "buy_again"
    user_id = signed_in_id(user)
    if user_id is None and not visitor_id:
        return finish(placement, None, [], k, exclude=exclude, fallback=fallback)
    policy = exclusion_policy(placement, kind)
    loaded = active_model.get()
    version_id = loaded.version_id if loaded else None
    key = cache_keys.visitor(user_id, visitor_id)
    entry_key = f"{placement}:{kind}:{k}:{version_id}:{policy}:{sorted(exclude)}"
    entry_key += f":{new_items.token(version_id)}"  # new items placed since: a new list
    cached = cache.get(key) or {}
    if entry_key in cached:
        candidates, recent_items, hidden = cached[entry_key]
    else:
        events = history(user_id, visitor_id)
        candidates = []
        if loaded is not None and events:
            candidates = fold_in(loaded, events, k * 3 + len(exclude), policy)
        if not candidates and kind == "buy_again":
            candidates = _by_purchases(events)
        recent_items = [item for item, event, _ in events[:5] if event != Event.NOT_INTERESTED]
        hidden = _hidden(events, policy)  # the policy without a model (fallbacks) too
        cached[entry_key] = (candidates, recent_items, hidden)
        cache.set(key, cached, app_settings.VISITOR_CACHE_SECONDS)
    return finish(
        placement,
        version_id,
        candidates,
        k,
        exclude=exclude | hidden | dismissed(user, visitor_id),
        fallback=fallback,
        context_items=recent_items,
    )


def _own(result: RecommendationList) -> RecommendationList:
    """A list built for one shopper (it hides what they bought): the response showing it
    must not be shared. A shopper whose list is everyone's keeps a cacheable response."""
    shopper.mark_personal()
    return result


def _hidden(events: list, policy: str) -> set[int]:
    if policy == Exclusion.PURCHASED:
        return {item for item, event, _ in events if event == Event.PURCHASE}
    if policy == Exclusion.SEEN:
        return {item for item, _, _ in events}
    return set()


def _by_purchases(events: list) -> list[Candidate]:
    """Bought items by number of purchases, then the latest (newest-first ``events``)."""
    counts: dict[int, int] = {}
    for item, event, _ in events:
        if event == Event.PURCHASE:
            counts[item] = counts.get(item, 0) + 1
    order = sorted(counts, key=lambda item: -counts[item])  # stable: newest first among ties
    return [Candidate(item, float(counts[item]), "history", BOUGHT) for item in order]


def related_to(
    item: Model | int,
    k: int | None = None,
    placement: str = "related",
    *,
    user: Any = None,
    visitor_id: str | None = None,
) -> RecommendationList:
    """Items like this one (the active version's ``similar`` list), without what the shopper
    bought (the placement's policy: :func:`hidden_for`)."""
    return _related(item, RelatedItem.Kind.SIMILAR, k, placement, user, visitor_id)


def bought_together(
    item: Model | int,
    k: int | None = None,
    placement: str = "bought_together",
    *,
    user: Any = None,
    visitor_id: str | None = None,
) -> RecommendationList:
    """Items bought in the same orders as this one, by lift; then similar ones; without
    what the shopper bought (the placement's policy)."""
    return _related(item, RelatedItem.Kind.BOUGHT_TOGETHER, k, placement, user, visitor_id)


def popular(
    category: Any = None,
    k: int | None = None,
    window_days: int | None = None,
    placement: str = "popular",
) -> RecommendationList:
    """Most bought items over the window (ending at the newest event), optionally by category."""
    k = k or app_settings.CAROUSEL_SIZE
    window = window_days or app_settings.POPULAR_WINDOW_DAYS
    rows = popular_rows(window)
    if category is not None:
        category_id = getattr(category, "pk", category)
        rows = [row for row in rows if category_id in row[2]]
    candidates = [Candidate(item, float(count), "popular", POPULAR) for item, count, _ in rows]
    hidden = set(hidden_for(placement, "popular"))
    result = finish(placement, None, candidates, k, exclude=hidden, fallback=category is None)
    return _own(result) if hidden else result


def trending(
    k: int | None = None, window_days: int | None = None, placement: str = "trending"
) -> RecommendationList:
    """Items whose recent sales and views grew most against the four windows before."""
    k = k or app_settings.CAROUSEL_SIZE
    window = window_days or app_settings.TRENDING_WINDOW_DAYS
    rows = cache.get(cache_keys.trending(window))
    if rows is None:
        rows = trending_rows(window)
        cache.set(cache_keys.trending(window), rows, app_settings.LIST_CACHE_SECONDS)
    candidates = [Candidate(item, score, "trending", TRENDING) for item, score in rows]
    hidden = set(hidden_for(placement, "trending"))
    result = finish(placement, None, candidates, k, exclude=hidden)
    return _own(result) if hidden else result


def recently_viewed(
    user: Any = None,
    visitor_id: str | None = None,
    k: int | None = None,
    placement: str = "recently_viewed",
    exclude: Iterable[int] = (),
) -> RecommendationList:
    """The shopper's own latest distinct views (no fallback: an empty history is empty)."""
    k = k or app_settings.CAROUSEL_SIZE
    user_id = signed_in_id(user)
    if user_id is None and not visitor_id:
        return RecommendationList(placement, None)
    seen: dict[int, bool] = {}  # item -> visible now (read by the history query itself)
    for item, event, is_visible in history_visible(user_id, visitor_id):
        if event == Event.VIEW and item not in seen:
            seen[item] = is_visible
    candidates = [Candidate(item, float(-i), "history", VIEWED) for i, item in enumerate(seen)]
    exclude = set(exclude) | dismissed(user, visitor_id)
    return finish(placement, None, candidates, k, exclude=exclude, fallback=False, known=seen)


def _related(
    item: Model | int,
    kind: str,
    k: int | None,
    placement: str,
    user: Any = None,
    visitor_id: str | None = None,
) -> RecommendationList:
    k = k or app_settings.CAROUSEL_SIZE
    item_id = getattr(item, "pk", item)
    hidden = hidden_for(placement, kind, user, visitor_id) - {item_id}
    version_id = active_version_id()
    category_hint = get_adapter().item_category_id(item) if isinstance(item, Model) else None
    manual = manual_related(item_id) if kind == RelatedItem.Kind.SIMILAR else []
    # The list every shopper is shown (before their own exclusions) is kept in this process
    # for the catalogue epoch (at most LIST_CACHE_SECONDS) under everything it was built
    # from; serving it again costs one query, whether its items are still visible. If one
    # is not, the list is rebuilt.
    enabled = rules_enabled()
    in_force = rules_in_force(placement) if enabled else ()
    key = (
        placement,
        kind,
        item_id,
        isinstance(item, Model),
        category_hint,
        k,
        version_id,
        tuple(manual),
        enabled,
        in_force,
        tuple(sorted((diversity_config(placement) or {}).items())),
    )
    # One shopper's list (dismissed items left out, exploration drawn per request) is
    # neither served from nor kept in the shared list cache.
    own = bool(dismissed_here()) or share(placement) > 0
    generation = item_cache.current()
    # Rules may reach below the first k items, so a shopper with hidden items and rules in
    # force always gets their own list; without rules, the shared one is theirs too when
    # none of its items is hidden.
    if not own and not (hidden and in_force):
        hit = generation.lists.get(key)
        if hit is not None and hit[0] > time.monotonic():
            ids = [rec.item.pk for rec in hit[1].items]
            if hidden.isdisjoint(ids) and visible(
                ids, also=generation.sibling_ids(item_id, key)
            ) == set(ids):
                return RecommendationList(placement, version_id, list(hit[1].items), hit[1].memo)
    result = _build_related(
        item, item_id, kind, k, placement, hidden, version_id, category_hint, manual
    )
    if hidden or own:  # this shopper's own list: never cached for others
        return _own(result)
    if not result.items:  # rebuilt each time: it fills as soon as anything can be shown
        return result
    cached = RecommendationList(placement, version_id, result.items, memo={})
    generation.store_list(key, item_id, cached)
    return RecommendationList(placement, version_id, list(result.items), cached.memo)


def _build_related(
    item: Model | int,
    item_id: Any,
    kind: str,
    k: int,
    placement: str,
    hidden: frozenset[int],
    version_id: int | None,
    category_hint: Any,
    manual: list,
) -> RecommendationList:
    """The related list of ``item``, built now, without ``hidden``."""
    candidates: list[Candidate] = []
    if version_id is not None:
        key_rows = cache_keys.related(version_id, kind, item_id)
        rows = cache.get(key_rows)
        if rows is None:
            kinds = [kind] if kind == RelatedItem.Kind.SIMILAR else [kind, RelatedItem.Kind.SIMILAR]

            def query(version: Any, item: Any) -> Any:
                return (
                    RelatedItem.objects.filter(version_id=version, item_id=item, kind__in=kinds)
                    .order_by(
                        "kind" if kind == RelatedItem.Kind.BOUGHT_TOGETHER else "rank", "rank"
                    )
                    .values_list("related_id", "score", "kind")
                )

            rows = compiled_rows(("related", kind), query, version_id, item_id)
            if rows is None:
                rows = list(query(version_id, item_id))
            cache.set(key_rows, rows, app_settings.LIST_CACHE_SECONDS)
        candidates = [
            Candidate(rid, score, str(kind_), RELATED_REASONS.get(kind_, NO_REASON))
            for rid, score, kind_ in rows
        ]
    if manual:  # the shop's hand-made list wins over the model's
        candidates = [Candidate(rid, 1.0, "manual", MANUAL) for rid in manual] + candidates
    return finish(
        placement,
        version_id,
        candidates,
        k,
        exclude={item_id, *hidden},
        context_items=[item_id] if not isinstance(item, Model) else None,
        category_hint=category_hint,
    )
