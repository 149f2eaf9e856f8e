"""Shopper insights from the purchase log: churn risk, expected value, usual price range.

Scored nightly (``tasks.score_customers``) for every signed-in customer with a purchase who
has not opted out (where ``REQUIRE_CONSENT`` asks for consent: who gave it), into
:class:`CustomerInsight` rows that the admin's "Customers at risk" screen, the staff API
and ``recommendations_insights`` read. The maths is in :mod:`recommendations.ml.churn` and
:mod:`recommendations.ml.price` (no Django).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..adapters import get_adapter
from ..conf import app_settings
from ..ml import churn, price
from ..models import CustomerInsight, ShopperConsent
from .extract import order_lines

logger = logging.getLogger(__name__)


class NotEnoughCustomers(ValueError):
    """Too few customers, or no purchases past the horizon: nothing is written."""


@dataclass
class InsightsReport:
    customers: int
    model: str
    horizon_days: int


def score_customers() -> InsightsReport:
    """Score every signed-in customer and replace the insight rows, in one transaction.

    Raises :class:`NotEnoughCustomers` with the counts (and writes nothing) when the log
    cannot support the model.
    """
    cfg = app_settings.INSIGHTS
    horizon = int(cfg["HORIZON_DAYS"])
    lines = _consenting(order_lines(customers_only=True))
    if lines.empty:
        raise NotEnoughCustomers("No signed-in customer who may be scored has bought anything.")
    model = cfg["MODEL"]
    customers = lines["user"].nunique()
    if model != "bgnbd" and customers < cfg["GBM_MIN_CUSTOMERS"]:  # gbm, logit, ensemble
        model = "bgnbd"  # too few customers for trees to learn from: four parameters can
    try:
        scores = churn.score_customers(lines, at=timezone.now(), horizon_days=horizon, model=model)
    except churn.NotEnoughCustomers as exc:
        raise NotEnoughCustomers(str(exc)) from exc
    bands = _price_bands(lines)
    now = timezone.now()
    rows = [
        CustomerInsight(
            user_id=int(row.user),
            p_alive=_number(row.p_alive),
            churn_risk=_number(row.churn_risk),
            expected_orders=_number(row.expected_orders),
            expected_spend=None if pd.isna(row.expected_spend) else float(row.expected_spend),
            horizon_days=horizon,
            orders=int(row.n_orders),
            recency_days=_number(row.recency_days),
            average_order_value=None if pd.isna(row.monetary) else float(row.monetary),
            price_bands=bands.get(int(row.user), {}),
            model=str(row.model),
            scored_at=now,
        )
        for row in scores.itertuples(index=False)
    ]
    with transaction.atomic():
        CustomerInsight.objects.all().delete()
        CustomerInsight.objects.bulk_create(rows, batch_size=2000)
    logger.info("scored %d customers (%s, %d days)", len(rows), model, horizon)
    return InsightsReport(len(rows), model, horizon)


def _consenting(lines: pd.DataFrame) -> pd.DataFrame:
    """Only customers who may be profiled: opted-out shoppers are not scored, and where
    ``REQUIRE_CONSENT`` asks for consent only those who gave it on their account are."""
    choices = ShopperConsent.objects.filter(user__isnull=False)
    if app_settings.REQUIRE_CONSENT:
        allowed = choices.filter(tracking_allowed=True).values_list("user_id", flat=True)
        return lines[lines["user"].isin(set(allowed))]
    declined = set(choices.filter(tracking_allowed=False).values_list("user_id", flat=True))
    return lines[~lines["user"].isin(declined)] if declined else lines


def _price_bands(lines: pd.DataFrame) -> dict[int, dict[str, list[float]]]:
    """Each customer's usual unit price range per category (the adapter's category key)."""
    paid = lines[(lines["quantity"] > 0) & lines["value"].notna()].copy()
    if paid.empty:
        return {}
    paid["unit_price"] = paid["value"] / paid["quantity"]
    adapter = get_adapter()
    items = adapter.item_queryset().in_bulk(paid["item"].unique().tolist())
    paid["category"] = [
        str(adapter.item_category_id(items[i])) if i in items else price.ALL
        for i in paid["item"]
    ]
    out: dict[int, dict[str, list[float]]] = {}
    for row in price.price_bands(paid, category="category").itertuples(index=False):
        out.setdefault(int(row.user), {})[str(row.category)] = [
            round(float(row.low), 2),
            round(float(row.high), 2),
        ]
    return out


def _number(value: float) -> float:
    return 0.0 if value is None or not np.isfinite(value) else float(value)


#: The columns of the CSV export (admin action and ``recommendations_insights``).
CSV_COLUMNS = (
    "user_id",
    "username",
    "email",
    "churn_risk",
    "p_alive",
    "expected_orders",
    "expected_spend",
    "orders",
    "recency_days",
    "average_order_value",
    "horizon_days",
    "scored_at",
)


def write_csv(insights: Iterable[CustomerInsight], out: TextIO) -> int:
    """``insights`` as CSV rows for a campaign tool; returns how many were written."""
    user_model = get_user_model()
    username_field = user_model.USERNAME_FIELD
    has_email = any(f.name == "email" for f in user_model._meta.get_fields())
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for insight in insights:
        user = insight.user
        writer.writerow(
            [
                insight.user_id,
                getattr(user, username_field, ""),
                getattr(user, "email", "") if has_email else "",
                f"{insight.churn_risk:.4f}",
                f"{insight.p_alive:.4f}",
                f"{insight.expected_orders:.3f}",
                "" if insight.expected_spend is None else f"{insight.expected_spend:.2f}",
                insight.orders,
                f"{insight.recency_days:.1f}",
                "" if insight.average_order_value is None else f"{insight.average_order_value:.2f}",
                insight.horizon_days,
                insight.scored_at.isoformat(),
            ]
        )
        n += 1
    return n
