"""Exploration: a share of a list's positions for items the carousels have rarely shown.

A list ranks what the log already favours, so an item nobody was shown never earns the
clicks that would rank it. ``RECOMMENDATIONS["EXPLORATION"]`` gives a share of each list's
positions (0 by default: lists are exactly as without it) to visible items shown fewer than
``MAX_IMPRESSIONS`` times, chosen by Thompson sampling: each candidate draws a click rate
from ``Beta(clicks + 1, impressions - clicks + 1)`` and the highest draws win. An item that
earned clicks on few impressions is likely to be shown again; one shown often and never
clicked rarely is; one never shown has the flat prior and gets its chance.

The counts come from the impressions and clicks the app logs (every item of every logged
carousel, and the ``click`` events), over the latest ``SAMPLE`` impressions of the last
``WINDOW_DAYS``; they are computed at most every ``CACHE_SECONDS`` and kept in the cache and
in this process, so a request costs one Beta draw per candidate (at most
``MAX_CANDIDATES``) and the visibility of the few items drawn.

Explored entries carry strategy ``"explore"`` and :data:`EXPLORE` as their reason, so the
API, the admin and the click attribution (``placement:explore``) tell them apart. Only lists
with fallbacks explore: "buy it again", "recently viewed" and a category's popular list show
what they say. An A/B variant's ``exploration_share`` overrides the setting (:func:`varying`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_noop

from ..adapters import get_adapter
from ..conf import app_settings
from ..models import Event, Impression, Interaction
from .catalogue import fetch, item_cache
from .types import Reason, Recommendation

STRATEGY = "explore"
EXPLORE = Reason(gettext_noop("Something new to discover"))
CACHE_KEY = "recommendations:exploration"
MEMO_SECONDS = 30  # a process keeps the cached counts this long besides (no unpickling)

_variant: ContextVar[tuple[str, float] | None] = ContextVar(
    "recommendations_exploration_variant", default=None
)
_rng = np.random.default_rng()


@dataclass(frozen=True)
class Candidates:
    """Visible items with little exposure, and their counts (parallel arrays)."""

    item_ids: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)


def share(placement: str) -> float:
    """The share of ``placement``'s positions that explores, in [0, 1]: the A/B variant's
    (inside :func:`varying`), else ``PLACEMENTS[placement]``, else ``SHARE``."""
    chosen = _variant.get()
    if chosen is not None and chosen[0] == placement:
        value = chosen[1]
    else:
        cfg = app_settings.EXPLORATION
        value = (cfg.get("PLACEMENTS") or {}).get(placement, cfg["SHARE"])
    return min(1.0, max(0.0, float(value or 0.0)))


@contextmanager
def varying(placement: str, value: float | None) -> Iterator[None]:
    """An A/B variant's exploration share for ``placement`` inside the block (None: the
    setting's)."""
    if value is None:
        yield
        return
    token = _variant.set((placement, float(value)))
    try:
        yield
    finally:
        _variant.reset(token)


def positions(k: int, rate: float, rng: np.random.Generator | None = None) -> list[int]:
    """Which of ``k`` positions explore: ``k * rate`` of them on average (the fraction
    rounded up at random), spread evenly and never first unless the list is all
    exploration: ``k=8, rate=0.25`` gives positions 2 and 5 (the 3rd and 6th)."""
    exact = k * rate
    m = math.floor(exact + 1e-9)
    if exact - m > 1e-9 and (rng or _rng).random() < exact - m:
        m += 1
    m = min(m, k)
    return [math.floor((i + 1) * k / (m + 1)) if m < k else i for i in range(m)]


def thompson(
    impressions: np.ndarray, clicks: np.ndarray, n: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Indices of the ``n`` best of one draw per arm from Beta(clicks+1, impressions-clicks+1),
    best first."""
    clicks = np.minimum(np.asarray(clicks, np.float64), impressions)
    misses = np.asarray(impressions, np.float64) - clicks
    draws = (rng or _rng).beta(clicks + 1.0, misses + 1.0)
    n = min(n, len(draws))
    if n <= 0:
        return np.empty(0, np.int64)
    top = np.argpartition(-draws, n - 1)[:n]
    return top[np.argsort(-draws[top], kind="stable")]


def candidates() -> Candidates:
    """The exploration candidates, from the cache (and this process's memo)."""
    derived = item_cache.current().derived
    memo = derived.get(CACHE_KEY)
    if memo is not None and memo[0] > time.monotonic():
        return memo[1]
    value = cache.get(CACHE_KEY)
    if value is None:
        value = count_exposure()
        cache.set(CACHE_KEY, value, int(app_settings.EXPLORATION["CACHE_SECONDS"]))
    derived[CACHE_KEY] = (time.monotonic() + MEMO_SECONDS, value)
    return value


def count_exposure(rng: np.random.Generator | None = None) -> Candidates:
    """Impressions and clicks per visible item, read from the log; the items shown fewer
    than ``MAX_IMPRESSIONS`` times are the candidates."""
    cfg = app_settings.EXPLORATION
    since = timezone.now() - timedelta(days=float(cfg["WINDOW_DAYS"]))
    shown: Counter[int] = Counter()
    oldest = None
    latest = (
        Impression.objects.filter(created_at__gte=since)
        .order_by("-created_at")
        .values_list("item_ids", "created_at")[: int(cfg["SAMPLE"])]
    )
    for item_ids, created_at in latest.iterator(chunk_size=2000):
        shown.update(set(item_ids))  # an item once per carousel
        oldest = created_at
    clicks = dict(
        Interaction.objects.filter(event=Event.CLICK, created_at__gte=oldest or since)
        .values("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
        .order_by()
    )
    limit = int(cfg["MAX_IMPRESSIONS"])
    visible = get_adapter().visible_items().order_by("pk").values_list("pk", flat=True)
    ids = np.array([pk for pk in visible.iterator() if shown[pk] < limit], dtype=np.int64)
    cap = int(cfg["MAX_CANDIDATES"])
    if len(ids) > cap:
        ids = np.sort((rng or _rng).choice(ids, size=cap, replace=False))
    return Candidates(
        ids,
        np.array([shown[int(pk)] for pk in ids], dtype=np.int64),
        np.array([clicks.get(int(pk), 0) for pk in ids], dtype=np.int64),
    )


def explore(
    placement: str,
    result: list[Recommendation],
    k: int,
    exclude: set[Any],
    rng: np.random.Generator | None = None,
    pool: Candidates | None = None,
) -> list[Recommendation]:
    """``result`` with its exploring positions (of the first ``k``) given to drawn items that
    are visible, not excluded and not already in the first ``k``; unchanged at share 0."""
    rate = share(placement)
    if rate <= 0 or k <= 0:
        return result
    slots = positions(k, rate, rng)
    if not slots:
        return result
    pool = candidates() if pool is None else pool
    if not len(pool):
        return result
    shown = {rec.item.pk for rec in result[: k - len(slots)]}
    # A few more than needed: some may be sold out now, excluded or already listed.
    order = thompson(pool.impressions, pool.clicks, 2 * len(slots) + len(shown) + 4, rng)
    # Its score: the posterior mean click rate, (clicks + 1) / (impressions + 2).
    means = {
        int(pool.item_ids[i]): (pool.clicks[i] + 1.0) / (pool.impressions[i] + 2.0) for i in order
    }
    drawn = [pk for pk in means if pk not in exclude and pk not in shown]
    items, visible = fetch(drawn, set())
    picked = [pk for pk in drawn if pk in visible and pk in items][: len(slots)]
    if not picked:
        return result
    explored = [
        Recommendation(items[pk], float(means[pk]), STRATEGY, placement, None, EXPLORE.text(items))
        for pk in picked
    ]
    out = [rec for rec in result if rec.item.pk not in set(picked)]
    for slot, rec in zip(slots, explored, strict=False):
        out.insert(min(slot, len(out)), rec)
    return out
