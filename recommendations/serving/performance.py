"""Online metrics: what the carousels did for the shop, read from impressions and the log.

Definitions (also shown on the admin page):

- an **impression** is one carousel shown to one shopper (:class:`~.models.Impression`);
- a **click** is an ``Interaction`` with ``event="click"``; its ``source`` names the
  placement (``related:v3``). Each click is matched to the shopper's latest impression of
  that placement before it (within ``IMPRESSION_LOOKBACK``, preferring one that showed the
  clicked item): that impression gives the click its model version and A/B variant;
- an **attributed purchase** is a server-verified purchase (:mod:`recommendations.verified`)
  of the clicked item by the same shopper (user or visitor id) within the attribution window
  after the click (setting ``ATTRIBUTION_WINDOW_HOURS``, 24 by default); the latest such
  click gets the credit;
- **CTR** = clicks / impressions; **conversion** = attributed purchases / clicks;
  **revenue** = the attributed purchase lines' value.

Every figure is aggregated in the database or from the (few) clicks and attributed
purchases; the impression table is only scanned through its ``created_at`` index, and for
coverage, over a bounded sample of the latest impressions.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, TruncDate
from django.utils import timezone

from ..adapters import get_adapter
from ..conf import app_settings
from ..models import Event, Experiment, Impression, Interaction
from ..verified import verified_purchases_q

#: A click is matched to an impression shown at most this long before it.
IMPRESSION_LOOKBACK = timedelta(hours=24)
#: Coverage reads at most this many of the period's latest impressions.
COVERAGE_SAMPLE = 20_000
PERIODS = (7, 30, 90, 365)
_VERSION_TAG = re.compile(r"^v(\d+)$")
_CHUNK = 500


def attribution_window() -> timedelta:
    return timedelta(hours=float(app_settings.ATTRIBUTION_WINDOW_HOURS))


def split_source(source: str) -> tuple[str, str]:
    """``"product:related:v3"`` -> ``("product:related", "v3")``."""
    placement, sep, tag = source.rpartition(":")
    return (placement, tag) if sep else (source, "")


def version_of_tag(tag: str) -> int | None:
    match = _VERSION_TAG.match(tag)
    return int(match.group(1)) if match else None


def shopper_key(visitor_id: str, user_id: int | None) -> str:
    return visitor_id or (f"user:{user_id}" if user_id is not None else "")


# --- period ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime
    days: int

    @property
    def dates(self) -> list[date]:
        first = timezone.localdate(self.since)
        last = timezone.localdate(self.until - timedelta(microseconds=1))
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def period(days: int = 30, end: date | None = None) -> Period:
    """``days`` whole local days ending with ``end`` (today by default)."""
    end = end or timezone.localdate()
    tz = timezone.get_current_timezone()
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), datetime.min.time()), tz)
    since = timezone.make_aware(
        datetime.combine(end - timedelta(days=days - 1), datetime.min.time()), tz
    )
    return Period(since, until, days)


def newest_activity() -> datetime | None:
    """The newest event or impression (to offer a period that has data)."""
    stamps = [
        Interaction.objects.aggregate(t=Max("created_at"))["t"],
        Impression.objects.aggregate(t=Max("created_at"))["t"],
    ]
    stamps = [s for s in stamps if s is not None]
    return max(stamps) if stamps else None


# --- clicks and attributed purchases ---------------------------------------------------


@dataclasses.dataclass
class Click:
    pk: int
    key: str
    item_id: int
    created_at: datetime
    placement: str
    tag: str
    version_id: int | None = None
    experiment_id: int | None = None
    variant: str = ""
    matched: bool = False


@dataclasses.dataclass
class Purchase:
    pk: int
    created_at: datetime
    item_id: int
    quantity: int
    value: float
    click: Click


@dataclasses.dataclass
class Activity:
    clicks: list[Click]  # clicks inside the period
    purchases: list[Purchase]  # attributed purchases inside the period


def online_activity(since: datetime, until: datetime) -> Activity:
    """The period's carousel clicks (matched to impressions) and attributed purchases."""
    window = attribution_window()
    rows = (
        Interaction.objects.filter(
            event=Event.CLICK, created_at__gte=since - window, created_at__lt=until
        )
        .exclude(source="")
        .values_list("pk", "visitor_id", "user_id", "item_id", "created_at", "source")
    )
    clicks: dict[int, Click] = {}
    for pk, visitor_id, user_id, item_id, created_at, source in rows.iterator(chunk_size=2000):
        placement, tag = split_source(source)
        clicks[pk] = Click(
            pk=pk,
            key=shopper_key(visitor_id, user_id),
            item_id=item_id,
            created_at=created_at,
            placement=placement,
            tag=tag,
            version_id=version_of_tag(tag),
        )
    _match_impressions(list(clicks.values()), since - window, until)
    purchases = []
    for pk, created_at, item_id, quantity, value, click_id in attributed_purchases(since, until):
        click = clicks.get(click_id)
        if click is not None:
            purchases.append(Purchase(pk, created_at, item_id, quantity, float(value or 0), click))
    return Activity([c for c in clicks.values() if c.created_at >= since], purchases)


def attributed_purchases(since: datetime, until: datetime) -> Iterable[tuple]:
    """``(pk, created_at, item_id, quantity, value, click pk)`` of each purchase in the period
    that follows a click on the same item by the same shopper within the window: one query."""
    window = attribution_window()
    same_shopper = (Q(visitor_id=OuterRef("visitor_id")) & ~Q(visitor_id="")) | Q(
        user_id=OuterRef("user_id")
    )
    click = (
        Interaction.objects.filter(
            same_shopper,
            event=Event.CLICK,
            item_id=OuterRef("item_id"),
            created_at__lte=OuterRef("created_at"),
            created_at__gte=OuterRef("created_at") - window,
        )
        .exclude(source="")
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    return (
        Interaction.objects.filter(  # server-verified purchases only: revenue is the shop's
            verified_purchases_q(), created_at__gte=since, created_at__lt=until
        )
        .annotate(click_id=Subquery(click))
        .filter(click_id__isnull=False)
        .values_list("pk", "created_at", "item_id", "quantity", "value", "click_id")
    )


def _match_impressions(clicks: list[Click], since: datetime, until: datetime) -> None:
    """Give each click the version and variant of the impression it came from."""
    if not clicks:
        return
    visitors = sorted({c.key for c in clicks if not c.key.startswith("user:")})
    users = sorted({int(c.key[5:]) for c in clicks if c.key.startswith("user:")})
    shown: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    base = Impression.objects.filter(
        created_at__gte=since - IMPRESSION_LOOKBACK, created_at__lt=until
    )
    fields = (
        "visitor_id",
        "user_id",
        "placement",
        "created_at",
        "version_id",
        "experiment_id",
        "variant",
        "item_ids",
    )
    filters = [Q(visitor_id__in=visitors[i : i + _CHUNK]) for i in range(0, len(visitors), _CHUNK)]
    filters += [
        Q(visitor_id="", user_id__in=users[i : i + _CHUNK]) for i in range(0, len(users), _CHUNK)
    ]
    for condition in filters:
        for visitor_id, user_id, placement, *rest in base.filter(condition).values_list(*fields):
            shown[(shopper_key(visitor_id, user_id), placement)].append(tuple(rest))
    for entries in shown.values():
        entries.sort(key=lambda e: e[0])
    for click in clicks:
        entries = shown.get((click.key, click.placement))
        if not entries:
            continue
        end = bisect.bisect_right(entries, click.created_at, key=lambda e: e[0])
        earliest = click.created_at - IMPRESSION_LOOKBACK
        candidates = [e for e in reversed(entries[:end]) if e[0] >= earliest]
        if not candidates:
            continue
        best = next((e for e in candidates if click.item_id in (e[4] or ())), candidates[0])
        _, click.version_id, click.experiment_id, click.variant, _ = best
        click.matched = True


def experiment_exposure(experiment: Experiment) -> dict[tuple[str, str], int]:
    """``{(variant, shopper key): impressions}`` of one experiment (its partial index)."""
    rows = (
        Impression.objects.filter(experiment=experiment)
        .values("variant", "visitor_id", "user_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    out: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        out[(row["variant"], shopper_key(row["visitor_id"], row["user_id"]))] += row["n"]
    return out


# --- the dashboard's tables and series ------------------------------------------------


@dataclasses.dataclass
class Totals:
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    revenue: float = 0.0

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion(self) -> float | None:
        return self.purchases / self.clicks if self.clicks else None


def version_label(version_id: int | None) -> str:
    return f"v{version_id}" if version_id else "no model"


def online_metrics(p: Period) -> dict[str, Any]:
    """Per placement and per version: totals, and daily series over the period."""
    day_index = {d: i for i, d in enumerate(p.dates)}
    n_days = len(day_index)

    def new_series() -> dict[str, list[float]]:
        return {name: [0.0] * n_days for name in ("impressions", "clicks", "purchases", "revenue")}

    by_placement: dict[str, Totals] = defaultdict(Totals)
    by_version: dict[str, Totals] = defaultdict(Totals)
    by_tag: dict[str, Totals] = defaultdict(Totals)
    placement_days: dict[str, dict[str, list[float]]] = defaultdict(new_series)
    version_days: dict[str, dict[str, list[float]]] = defaultdict(new_series)

    impressions = (
        Impression.objects.filter(created_at__gte=p.since, created_at__lt=p.until)
        .annotate(day=TruncDate("created_at"))
        .values("day", "placement", "version_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in impressions:
        version = version_label(row["version_id"])
        by_placement[row["placement"]].impressions += row["n"]
        by_version[version].impressions += row["n"]
        i = day_index.get(row["day"])
        if i is not None:
            placement_days[row["placement"]]["impressions"][i] += row["n"]
            version_days[version]["impressions"][i] += row["n"]

    activity = online_activity(p.since, p.until)
    for click in activity.clicks:
        version = version_label(click.version_id)
        by_placement[click.placement].clicks += 1
        by_version[version].clicks += 1
        by_tag[_tag_label(click.tag)].clicks += 1
        i = day_index.get(timezone.localdate(click.created_at))
        if i is not None:
            placement_days[click.placement]["clicks"][i] += 1
            version_days[version]["clicks"][i] += 1
    for purchase in activity.purchases:
        click = purchase.click
        version = version_label(click.version_id)
        for totals in (
            by_placement[click.placement],
            by_version[version],
            by_tag[_tag_label(click.tag)],
        ):
            totals.purchases += 1
            totals.revenue += purchase.value
        i = day_index.get(timezone.localdate(purchase.created_at))
        if i is not None:
            for series in (placement_days[click.placement], version_days[version]):
                series["purchases"][i] += 1
                series["revenue"][i] += purchase.value

    total = Totals(
        impressions=sum(t.impressions for t in by_placement.values()),
        clicks=sum(t.clicks for t in by_placement.values()),
        purchases=sum(t.purchases for t in by_placement.values()),
        revenue=sum(t.revenue for t in by_placement.values()),
    )
    return {
        "total": total,
        "placements": sorted(by_placement.items(), key=lambda kv: -kv[1].impressions),
        "versions": sorted(by_version.items(), key=_version_sort),
        "tags": sorted(by_tag.items(), key=lambda kv: -kv[1].clicks),
        "placement_days": dict(placement_days),
        "version_days": dict(version_days),
        "matched_clicks": sum(1 for c in activity.clicks if c.matched),
    }


def _tag_label(tag: str) -> str:
    return "model" if version_of_tag(tag) is not None else (tag or "unknown")


def _version_sort(kv: tuple[str, Totals]) -> tuple:
    version = version_of_tag(kv[0])
    return (version is None, -(version or 0))


def rate_series(numerator: list[float], denominator: list[float]) -> list[float | None]:
    return [n / d if d else None for n, d in zip(numerator, denominator, strict=True)]


# --- interaction stats ----------------------------------------------------------------


def interaction_stats(p: Period) -> dict[str, Any]:
    """Events per day and type, active shoppers per day and in all."""
    day_index = {d: i for i, d in enumerate(p.dates)}
    events = Interaction.objects.filter(created_at__gte=p.since, created_at__lt=p.until)
    per_type: dict[str, list[float]] = {}
    totals: dict[str, int] = defaultdict(int)
    rows = (
        events.annotate(day=TruncDate("created_at"))
        .values("day", "event")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        series = per_type.setdefault(row["event"], [0.0] * len(day_index))
        i = day_index.get(row["day"])
        if i is not None:
            series[i] += row["n"]
        totals[row["event"]] += row["n"]
    shopper = Case(
        When(user__isnull=False, then=Concat(Value("u"), Cast("user_id", CharField()))),
        default=Concat(Value("v"), "visitor_id"),
        output_field=CharField(),
    )
    active = [0.0] * len(day_index)
    for row in (
        events.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count(shopper, distinct=True))
        .order_by()
    ):
        i = day_index.get(row["day"])
        if i is not None:
            active[i] = row["n"]
    labels = dict(Event.choices)
    return {
        "per_type": {labels.get(k, k): v for k, v in sorted(per_type.items())},
        "totals": sorted(((labels.get(k, k), n) for k, n in totals.items()), key=lambda kv: -kv[1]),
        "events": sum(totals.values()),
        "active_per_day": active,
        "active_shoppers": events.aggregate(n=Count(shopper, distinct=True))["n"] or 0,
    }


def coverage(p: Period, sample: int = COVERAGE_SAMPLE) -> dict[str, Any]:
    """Share of the visible catalogue that the carousels showed (latest ``sample`` impressions)."""
    rows = (
        Impression.objects.filter(created_at__gte=p.since, created_at__lt=p.until)
        .order_by("-created_at")
        .values_list("placement", "item_ids")[:sample]
    )
    per_placement: dict[str, set[int]] = defaultdict(set)
    read = 0
    for placement, item_ids in rows:
        per_placement[placement].update(item_ids or ())
        read += 1
    catalogue = get_adapter().visible_items().count()
    shown: set[int] = set().union(*per_placement.values()) if per_placement else set()

    def share(items: set[int]) -> float | None:
        return min(1.0, len(items) / catalogue) if catalogue else None

    return {
        "catalogue": catalogue,
        "sampled": read,
        "complete": read < sample,
        "all": (len(shown), share(shown)),
        "placements": sorted(
            ((name, len(items), share(items)) for name, items in per_placement.items()),
            key=lambda row: -row[1],
        ),
    }
