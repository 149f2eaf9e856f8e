"""A/B tests: deterministic assignment, serving a variant, and the significance test.

A visitor's variant is a pure function of the experiment and their visitor id (SHA-256 of
both, mapped onto the variants' weights), so it is the same on every page and in every
process, with nothing stored. The visitor id is the signed cookie the middleware sets;
API clients without one are keyed by their user id.

Serving: the template tags wrap a carousel in :func:`serving`; inside it
``pool.active_version_id()`` answers the variant's version (or no model, for the
popularity arm), so every service serves the arm without knowing about experiments.
Impressions record the experiment and variant; the results below read them.

Statistics: each variant is compared with the first (the control) by a two-sided pooled
two-proportion z-test on *visitors* (the unit that was randomised): the share of exposed
visitors who clicked, and who bought an item within the attribution window after clicking.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from ..conf import app_settings
from ..models import Experiment, ExperimentVariant
from . import performance
from .pool import NO_MODEL, serving_version

CACHE_KEY = "recommendations:experiments"


def cache_seconds() -> int:
    return int(app_settings.EXPERIMENTS_CACHE_SECONDS)


@dataclasses.dataclass(frozen=True)
class Variant:
    experiment_id: int
    name: str
    kind: str
    version_id: int | None
    weight: int
    #: The share of positions this arm explores (None: the placement's setting).
    exploration_share: float | None = None

    def serving_version(self) -> int | None:
        """What ``pool.serving_version`` gets: None keeps the active version."""
        if self.kind == ExperimentVariant.Kind.POPULAR:
            return NO_MODEL
        if self.kind == ExperimentVariant.Kind.VERSION and self.version_id:
            return self.version_id
        return None


@dataclasses.dataclass(frozen=True)
class RunningExperiment:
    pk: int
    name: str
    placement: str
    starts_at: datetime
    ends_at: datetime | None
    variants: tuple[Variant, ...]

    def running(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


def visitor_key(user: Any = None, visitor_id: str | None = None) -> str:
    """What assignment hashes: the visitor cookie, else ``user:<pk>``; "" for nobody."""
    if visitor_id:
        return visitor_id
    pk = getattr(user, "pk", None) if user is not None else None
    return f"user:{pk}" if pk is not None else ""


def bucket(experiment_id: int, key: str) -> float:
    """A uniform number in [0, 1) fixed by the experiment and the visitor."""
    digest = hashlib.sha256(f"{experiment_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: RunningExperiment, key: str) -> Variant | None:
    """The visitor's variant: the weights split [0, 1) into consecutive shares."""
    total = sum(v.weight for v in experiment.variants)
    if not key or total <= 0:
        return None
    point = bucket(experiment.pk, key) * total
    upto = 0.0
    for variant in experiment.variants:
        upto += variant.weight
        if point < upto and variant.weight > 0:
            return variant
    return experiment.variants[-1]


def running_experiments() -> list[RunningExperiment]:
    """Switched-on experiments that have not ended (cached; dates are checked on use)."""
    value = cache.get(CACHE_KEY)
    if value is None:
        now = timezone.now()
        value = [
            RunningExperiment(
                pk=exp.pk,
                name=exp.name,
                placement=exp.placement,
                starts_at=exp.starts_at,
                ends_at=exp.ends_at,
                variants=tuple(
                    Variant(exp.pk, v.name, v.kind, v.version_id, v.weight, v.exploration_share)
                    for v in exp.variants.all()
                ),
            )
            for exp in Experiment.objects.filter(is_active=True)
            .exclude(ends_at__lte=now)
            .prefetch_related("variants")
            .order_by("starts_at", "pk")
        ]
        cache.set(CACHE_KEY, value, cache_seconds())
    return value


def experiment_for(placement: str, now: datetime | None = None) -> RunningExperiment | None:
    """The experiment running on ``placement`` (the earliest started, if several)."""
    now = now or timezone.now()
    for experiment in running_experiments():
        if experiment.placement == placement and experiment.variants and experiment.running(now):
            return experiment
    return None


def variant_for(placement: str, user: Any = None, visitor_id: str | None = None) -> Variant | None:
    experiment = experiment_for(placement)
    if experiment is None:
        return None
    return assign(experiment, visitor_key(user, visitor_id))


@contextmanager
def serving(placement: str, user: Any = None, visitor_id: str | None = None) -> Iterator[Any]:
    """Serve this visitor's variant of ``placement`` inside the block; yields it (or None)."""
    variant = variant_for(placement, user, visitor_id)
    if variant is None:
        yield None
        return
    with serving_version(variant.serving_version()):
        yield variant


def invalidate() -> None:
    cache.delete(CACHE_KEY)


@receiver(post_save, sender=Experiment, dispatch_uid="recommendations.experiments.saved")
@receiver(post_delete, sender=Experiment, dispatch_uid="recommendations.experiments.deleted")
@receiver(post_save, sender=ExperimentVariant, dispatch_uid="recommendations.variants.saved")
@receiver(post_delete, sender=ExperimentVariant, dispatch_uid="recommendations.variants.deleted")
def _experiments_changed(**kwargs: Any) -> None:
    invalidate()


# --- statistics -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> ZTest | None:
    """Two-sided pooled z-test of ``x1/n1`` against ``x2/n2``; None without data.

    ``z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2))`` with ``p = (x1 + x2) / (n1 + n2)``;
    ``p_value = erfc(|z| / sqrt 2)``, i.e. ``2 (1 - Phi(|z|))``.
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    if pooled <= 0 or pooled >= 1:
        return ZTest(0.0, 1.0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x2 / n2 - x1 / n1) / se
    return ZTest(z, math.erfc(abs(z) / math.sqrt(2)))


def sample_size_per_variant(
    baseline: float, relative_lift: float = 0.2, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Visitors each arm needs to detect ``relative_lift`` over ``baseline`` (normal approx.)."""
    from statistics import NormalDist

    p1, p2 = baseline, baseline * (1 + relative_lift)
    if not 0 < p1 < 1 or not 0 < p2 < 1:
        return None
    z_a = NormalDist().inv_cdf(1 - alpha / 2)
    z_b = NormalDist().inv_cdf(power)
    return math.ceil((z_a + z_b) ** 2 * (p1 * (1 - p1) + p2 * (1 - p2)) / (p2 - p1) ** 2)


@dataclasses.dataclass
class VariantResult:
    name: str
    kind: str
    description: str
    weight: int
    impressions: int = 0
    visitors: int = 0
    clicks: int = 0
    clickers: int = 0
    purchases: int = 0
    converters: int = 0
    revenue: float = 0.0
    click_test: ZTest | None = None
    conversion_test: ZTest | None = None

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def click_rate(self) -> float | None:
        return self.clickers / self.visitors if self.visitors else None

    @property
    def conversion_rate(self) -> float | None:
        return self.converters / self.visitors if self.visitors else None


def results(experiment: Experiment, until: datetime | None = None) -> dict[str, Any]:
    """Per-variant exposure, clicks and attributed purchases, with the tests vs the control."""
    now = timezone.now()
    until = min(filter(None, [until or now, experiment.ends_at]))
    variants = list(experiment.variants.select_related("version"))
    rows = {
        v.name: VariantResult(
            name=v.name,
            kind=v.kind,
            description=(f"v{v.version_id}" if v.kind == "version" else v.get_kind_display()),
            weight=v.weight,
        )
        for v in variants
    }
    exposure = performance.experiment_exposure(experiment)
    for (variant, _key), n in exposure.items():
        row = rows.get(variant)
        if row is None:  # a variant renamed or deleted since: not reported
            continue
        row.impressions += n
        row.visitors += 1
    activity = performance.online_activity(experiment.starts_at, until)
    clickers: dict[str, set[str]] = {name: set() for name in rows}
    converters: dict[str, set[str]] = {name: set() for name in rows}
    for click in activity.clicks:
        if click.experiment_id != experiment.pk or click.variant not in rows:
            continue
        rows[click.variant].clicks += 1
        clickers[click.variant].add(click.key)
    for purchase in activity.purchases:
        click = purchase.click
        if click.experiment_id != experiment.pk or click.variant not in rows:
            continue
        rows[click.variant].purchases += 1
        rows[click.variant].revenue += purchase.value
        converters[click.variant].add(click.key)
    for name, row in rows.items():
        row.clickers = len(clickers[name])
        row.converters = len(converters[name])
    ordered = [rows[v.name] for v in variants]
    control = ordered[0] if ordered else None
    for row in ordered[1:]:
        row.click_test = two_proportion_z_test(
            control.clickers, control.visitors, row.clickers, row.visitors
        )
        row.conversion_test = two_proportion_z_test(
            control.converters, control.visitors, row.converters, row.visitors
        )
    needed = None
    if control is not None and control.click_rate:
        needed = sample_size_per_variant(control.click_rate)
    return {
        "variants": ordered,
        "control": control,
        "until": until,
        "window_hours": performance.attribution_window().total_seconds() / 3600,
        "needed_per_variant": needed,
    }
