"""The churn protocol: cut the log ``horizon_days`` before its end; who orders again after?

Customers: everyone with an order before the cut ``T``; churned: no order in ``[T, end]``.
Every model sees only the log's lines before ``T`` (the classifiers learn from cuts before
``T - horizon`` with labels up to ``T``). One result per model: ``recency`` and ``frequency``
(the baselines: days since the last order, fewer orders = more risk), ``bgnbd``, ``gbm``,
``logit`` and ``ensemble`` (see :mod:`.churn`); AUC of the churn risk. The ``bgnbd`` row
also carries the spend calibration: mean absolute error of the
predicted spend (BG/NBD orders x Gamma-Gamma value) against what each customer spent in the
horizon, next to two naive predictions: the customer's past spend per horizon (total spend /
max(T_age, horizon) x horizon) and zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from . import churn

BASELINES = ("recency", "frequency")
CHURN_MODELS = (*BASELINES, *churn.MODELS)


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties count half); NaN with a single class."""
    y = np.asarray(positive, bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(np.asarray(score, np.float64))
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def evaluate_churn(frame: pd.DataFrame, horizon_days: float = 90.0, at: object = None,
                   models: tuple[str, ...] = CHURN_MODELS) -> list[dict[str, Any]]:
    """One dict per model: ``protocol``, ``model``, ``auc``, counts; see the module doc.

    ``at`` defaults to the last order minus ``horizon_days``; the truth window is
    ``[at, at + horizon_days)``.
    """
    lines = churn.purchase_lines(frame)
    orders = churn.orders_from_lines(lines)
    if orders.empty:
        raise churn.NotEnoughCustomers("the log has no purchases", customers=0)
    end = orders["timestamp"].max()
    cut = churn._utc(at) if at is not None else end - horizon_days * churn.DAY
    stop = cut + horizon_days * churn.DAY
    if at is None:
        stop = end + pd.Timedelta(seconds=1)  # the last day's orders count
    before = orders[orders["timestamp"] < cut]
    window = orders[(orders["timestamp"] >= cut) & (orders["timestamp"] < stop)]
    if window.empty:
        raise churn.NotEnoughCustomers(
            f"no purchases in the {horizon_days:g} days after the cut {cut}: nothing to test "
            f"against ({before['user'].nunique()} customers before it)",
            customers=int(before["user"].nunique()), purchases_after=0)
    feats = churn.customer_features(before, cut)
    churned = ~feats["user"].isin(set(window["user"]))
    spent = window.groupby("user")["value"].sum().reindex(feats["user"]).fillna(0.0).to_numpy()
    common = {"protocol": "churn", "cut": str(cut), "horizon_days": float(horizon_days),
              "customers": len(feats), "churned_share": float(churned.mean())}
    out: list[dict[str, Any]] = []
    for name in models:
        row: dict[str, Any] = {"model": name}
        if name == "recency":
            risk = feats["recency_days"].to_numpy()
        elif name == "frequency":
            risk = -feats["n_orders"].to_numpy()
        elif name in churn.MODELS:
            # the lines, not the orders: the classifiers read items, quantities and prices
            s = churn.score_customers(lines[lines["timestamp"] < cut], cut, horizon_days,
                                      model=name)
            s = s.set_index("user").loc[feats["user"]]
            risk = s["churn_risk"].to_numpy()
            if name == "bgnbd":
                pred = s["expected_spend"].to_numpy()
                naive = (feats["total_spend"].fillna(0.0)
                         / np.maximum(feats["T_age"], horizon_days) * horizon_days).to_numpy()
                row.update({
                    "spend_mae": (float(np.nanmean(np.abs(pred - spent)))
                                  if np.isfinite(pred).any() else None),  # None: no values
                    "spend_mae_naive_past_rate": float(np.mean(np.abs(naive - spent))),
                    "spend_mae_zero": float(np.mean(np.abs(spent))),
                    "spend_total_predicted": float(np.nansum(pred)),
                    "spend_total_actual": float(spent.sum()),
                    "orders_mae": float(np.nanmean(np.abs(
                        s["expected_orders"].to_numpy()
                        - window.groupby("user").size().reindex(feats["user"]).fillna(0)
                        .to_numpy()))),
                    "params": {"bgnbd": s.attrs["bgnbd"], "gamma_gamma": s.attrs["gamma_gamma"]},
                })
        else:
            raise ValueError(f"unknown churn model {name!r}; choose from {CHURN_MODELS}")
        row["auc"] = roc_auc(risk, churned.to_numpy())
        row["default"] = name == churn.DEFAULT_MODEL
        out.append({**common, **row})
    return out


def churn_main(args: Any) -> int:
    """``evaluate --protocol churn``: one JSON line per model (``--models`` picks some)."""
    import json
    import sys

    from .datasets import DatasetNotFound, load_frame

    names = tuple(m.strip() for m in (args.models or ",".join(CHURN_MODELS)).split(",")
                  if m.strip())
    bad = [m for m in names if m not in CHURN_MODELS]
    if bad:
        print(f"error: unknown churn models {bad}; choose from {list(CHURN_MODELS)}",
              file=sys.stderr)
        return 2
    try:
        frame = load_frame(args.dataset)
        rows = evaluate_churn(frame, args.horizon_days, at=args.cut, models=names)
    except DatasetNotFound as exc:
        print(str(exc))
        return 0
    except ValueError as exc:  # NotEnoughCustomers included: a clear message with counts
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in rows:
        print(json.dumps({"dataset": args.dataset, **r}, default=float))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(rows, indent=2, default=float))
    return 0
