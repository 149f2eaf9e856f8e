"""Merchandising rules and hand-made related lists: the shop's word over the model's.

:func:`apply_rules` is the last step of every list that :mod:`recommendations.services`
builds (``_finish``); :func:`manual_related` feeds ``services.related_to``. Both read the
rules from the cache (one key each, a few hundred bytes): serving a carousel costs no
query for them, except one to fetch a pinned item that the list did not already hold.

Rules are cached with their dates, so one that starts or ends takes effect on the minute
without any invalidation; saving or deleting a rule drops the cache at once. In a preview
:func:`disabled` shows what the model alone would serve.

Kinds (see :class:`~recommendations.models.MerchandisingRule`):

- ``exclude`` an item or a category (on one placement, or everywhere);
- ``boost`` a category: an item at rank ``r`` moves to where rank ``r / multiplier`` would
  be (scale-free, so it works the same on model scores, sales counts and fallbacks);
- ``pin`` an item to a position. Pinned entries are re-labelled ``strategy="pinned"``, so
  their clicks are attributed to the pin (``placement:pinned``), not to the model.

Exclusions win over pins, and the list's own exclusions (the current item) win over both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from ..adapters import get_adapter
from ..conf import app_settings
from ..models import ManualRelatedItem, MerchandisingRule
from .types import Recommendation

RULES_KEY = "recommendations:rules"
MANUAL_KEY = "recommendations:manual-related"
#: Seconds the rules stay cached; saves and deletes drop them at once (this bounds how
#: long another process with a per-process cache may serve an edited rule).

_disabled: ContextVar[bool] = ContextVar("recommendations_rules_disabled", default=False)


def cache_seconds() -> int:
    return int(app_settings.RULES_CACHE_SECONDS)


@contextmanager
def disabled() -> Iterator[None]:
    """Serve without rules or manual related lists in this block (the admin's preview)."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def rules_enabled() -> bool:
    return not _disabled.get()


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule as cached: plain values, no model instance."""

    pk: int
    kind: str
    placement: str
    item_id: int | None
    category: str
    position: int
    multiplier: float
    starts_at: datetime | None
    ends_at: datetime | None

    def applies(self, placement: str, now: datetime) -> bool:
        return (
            (not self.placement or self.placement == placement)
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


def active_rules() -> list[Rule]:
    """Every switched-on rule that has not ended yet (cached; dates are checked on use)."""
    rules = cache.get(RULES_KEY)
    if rules is None:
        now = timezone.now()
        rules = [
            Rule(
                pk=r.pk,
                kind=r.kind,
                placement=r.placement,
                item_id=r.item_id,
                category=r.category,
                position=max(1, r.position),
                multiplier=float(r.multiplier),
                starts_at=r.starts_at,
                ends_at=r.ends_at,
            )
            for r in MerchandisingRule.objects.filter(is_active=True)
            .exclude(ends_at__lte=now)
            .order_by("position", "pk")
        ]
        cache.set(RULES_KEY, rules, cache_seconds())
    return rules


def rules_for(placement: str, now: datetime | None = None) -> list[Rule]:
    """The rules in force on ``placement`` now."""
    now = now or timezone.now()
    return [rule for rule in active_rules() if rule.applies(placement, now)]


def apply_rules(
    placement: str,
    items: list[Recommendation],
    *,
    exclude: Iterable[int] = (),
    now: datetime | None = None,
) -> list[Recommendation]:
    """``items`` with the rules in force on ``placement``: exclusions, boosts, then pins."""
    if _disabled.get():
        return items
    rules = rules_for(placement, now)
    if not rules:
        return items
    adapter = get_adapter()

    def categories(rec: Recommendation) -> set[str]:
        """Every category of the item, as rules store them (an item may have several)."""
        return {str(value) for value in adapter.item_category_ids(rec.item) if value is not None}

    banned_items = set(exclude)
    banned_items |= {r.item_id for r in rules if r.kind == "exclude" and r.item_id}
    banned_categories = {r.category for r in rules if r.kind == "exclude" and r.category}
    out = [
        rec
        for rec in items
        if rec.item.pk not in banned_items and not (categories(rec) & banned_categories)
    ]

    boosts: dict[str, float] = {}
    for rule in rules:
        if rule.kind == "boost" and rule.category and rule.multiplier > 0:
            boosts[rule.category] = boosts.get(rule.category, 1.0) * rule.multiplier
    if boosts:

        def boost(rec: Recommendation) -> float:
            """The strongest boost among the item's categories (not their product: an item
            in two boosted categories is not pushed twice)."""
            return max((boosts[c] for c in categories(rec) if c in boosts), default=1.0)

        ranked = sorted(enumerate(out), key=lambda pair: (pair[0] + 1) / boost(pair[1]))
        out = [rec for _, rec in ranked]

    pins = [r for r in rules if r.kind == "pin" and r.item_id and r.item_id not in banned_items]
    if pins:
        out = _pin(placement, out, pins, banned_categories, categories)
    return out


def _pin(
    placement: str,
    out: list[Recommendation],
    pins: list[Rule],
    banned_categories: set[str],
    categories: Any,
) -> list[Recommendation]:
    present = {rec.item.pk: rec for rec in out}
    missing = {rule.item_id for rule in pins} - set(present)
    if missing:  # one query, and only for visible items: a sold-out pin shows nothing
        for obj in get_adapter().visible_items().filter(pk__in=missing):
            present[obj.pk] = Recommendation(obj, 0.0, "pinned", placement, None, "")
    seen: set[int] = set()
    pinned: list[tuple[int, Recommendation]] = []
    for rule in sorted(pins, key=lambda r: (r.position, r.pk)):
        rec = present.get(rule.item_id)
        if rec is None or rule.item_id in seen or categories(rec) & banned_categories:
            continue
        seen.add(rule.item_id)
        pinned.append((rule.position, dataclasses.replace(rec, strategy="pinned", version_id=None)))
    rest = [rec for rec in out if rec.item.pk not in seen]
    for position, rec in pinned:  # ascending positions: earlier pins keep their slots
        rest.insert(min(position - 1, len(rest)), rec)
    return rest


def manual_related(item_id: int) -> list[int]:
    """The hand-made related items of ``item_id`` in rank order ([] when rules are off)."""
    if _disabled.get():
        return []
    table = cache.get(MANUAL_KEY)
    if table is None:
        table = {}
        for item, related in ManualRelatedItem.objects.order_by("item", "rank", "pk").values_list(
            "item_id", "related_id"
        ):
            table.setdefault(item, []).append(related)
        cache.set(MANUAL_KEY, table, cache_seconds())
    return table.get(item_id, [])


def invalidate() -> None:
    cache.delete_many([RULES_KEY, MANUAL_KEY])


@receiver(post_save, sender=MerchandisingRule, dispatch_uid="recommendations.rules.saved")
@receiver(post_delete, sender=MerchandisingRule, dispatch_uid="recommendations.rules.deleted")
@receiver(post_save, sender=ManualRelatedItem, dispatch_uid="recommendations.manual.saved")
@receiver(post_delete, sender=ManualRelatedItem, dispatch_uid="recommendations.manual.deleted")
def _rules_changed(**kwargs: Any) -> None:
    invalidate()
