"""Shopper insights: who is drifting away, how many orders and how much spend to expect.

Per customer, from a purchase log (``user``, ``timestamp``, ``basket`` = order id, ``value``)
cut at a moment ``at`` (nothing at or after ``at`` is read):

* :func:`customer_features` - recency (days since the last order), frequency (repeat order
  days), ``T_age`` (days since the first order), monetary (mean order value), ...;
* :class:`BGNBD` - the beta-geometric / negative-binomial model of Fader, Hardie & Lee (2005),
  "Counting your customers the easy way", fitted by maximum likelihood: P(alive), expected
  orders over a horizon and P(no order in the horizon);
* :class:`GammaGamma` - Fader, Hardie & Lee (2005), "RFM and CLV": expected order value;
  expected spend = expected orders x expected value;
* the classifiers ``gbm`` (scikit-learn's ``HistGradientBoostingClassifier`` on RFM, window,
  gap, trend, line and BG/NBD features) and ``logit`` (logistic regression on log RFM and
  line features), and ``ensemble``, the mean of the two: trained on earlier cuts
  (``at - horizon``, then 30 and 60 days before it) with labels from the horizon after each,
  all before ``at``, so that they never see what happens after ``at``.

:func:`score_customers` is what the shop calls nightly; :data:`DEFAULT_MODEL` was chosen by
AUC on the temporal split (``python -m recommendations.ml.evaluate --protocol churn``,
``bench/churn``).

Why not a library: ``lifetimes`` 0.11.3 (last release 2020) imports ``autograd`` and ``dill``,
neither of them our dependency nor maintained against numpy 2 / pandas 3; ``btyd`` 0.1b3
(2022) declares ``Requires-Python <3.10`` and pip refuses it on our Python 3.11. Both models
are a few closed-form likelihoods, written here from the papers with ``scipy.special``.

Time unit: days. Repeat orders are counted as distinct order *days* (several invoices the same
day are one purchase occasion, the usual convention for BG/NBD), orders (invoices) are kept as
``n_orders``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

DAY = pd.Timedelta(days=1)
#: Models :func:`score_customers` can rank customers by: ``bgnbd`` (the probability model),
#: ``gbm`` (gradient-boosted trees), ``logit`` (logistic regression on log features) and
#: ``ensemble`` (the mean of gbm's and logit's probabilities).
MODELS = ("bgnbd", "gbm", "logit", "ensemble")
#: Chosen by AUC on online-retail's validation cut (ensemble 0.7620, logit 0.7611, gbm
#: 0.7594, bgnbd 0.7449; the better baseline, frequency, 0.7278); test cut 0.7454 / 0.7439 /
#: 0.7401 / 0.7340 vs 0.7231 (1.0309x): bench/results/churn.md. ``bgnbd`` needs only scipy,
#: the others scikit-learn.
DEFAULT_MODEL = "ensemble"
#: Fewer customers than this and no model is fitted (BG/NBD's four parameters, a classifier).
MIN_CUSTOMERS = 20
#: Features from the order lines (items, quantities, prices); NaN where the log lacks them.
LINE_FEATURES = ("items", "lines_per_order", "qty_mean", "qty_median", "price_median",
                 "value_per_line", "items_90d")
#: The gradient-boosted model's features (computed at the cut by :func:`customer_features`;
#: ``p_no_order`` and ``expected_orders`` by BG/NBD fitted at that cut).
GBM_FEATURES = ("recency_days", "frequency", "monetary", "T_age", "n_orders", "days_30d",
                "days_90d", "days_180d", "spend_90d", "spend_180d", "total_spend", "gap_mean",
                "gap_std", "gap_last", "recency_over_gap", "trend", "age_2nd", "age_3rd",
                "p_no_order", "expected_orders", *LINE_FEATURES)
#: The logistic model's features (log1p of each, standardised; NaN counts as 0).
LOGIT_FEATURES = ("recency_days", "frequency", "monetary", "T_age", "qty_mean", "qty_median",
                  "price_median", "value_per_line", "items_90d")
#: The classifiers learn from this many earlier cuts, ``TRAIN_STEP_DAYS`` apart: the cut
#: ``at - horizon`` (labels from ``[at - horizon, at)``), then ``at - horizon - 30 days`` ...
#: (labels from the horizon after each, all before ``at``). Cuts with too few customers or a
#: single class are skipped.
TRAIN_CUTS = 3
TRAIN_STEP_DAYS = 30.0


class NotEnoughCustomers(ValueError):
    """The log cannot support a churn model: too few customers, or no orders to learn from.

    ``counts`` holds the numbers behind the message (for the shop's logs).
    """

    def __init__(self, message: str, **counts: object) -> None:
        super().__init__(message)
        self.counts = counts


def _utc(t: object) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def purchase_lines(frame: pd.DataFrame, purchase_event: str = "purchase") -> pd.DataFrame:
    """One row per purchased line: ``user``, ``timestamp``, ``basket``, ``value``, ``item``,
    ``quantity``, ``unit_price`` (see :func:`orders_from_log` for what is kept).

    ``item`` is NaN without an ``item`` column; ``quantity`` is the column, else ``value /
    unit_price``; ``unit_price`` the column, else ``value / quantity`` (NaN where unknown).
    """
    missing = [c for c in ("user", "timestamp") if c not in frame.columns]
    if missing:
        raise ValueError(f"churn needs columns user and timestamp; the log lacks {missing}")
    df = frame
    if "event" in df.columns:
        df = df[df["event"] == purchase_event]
    if "quantity" in df.columns:
        df = df[pd.to_numeric(df["quantity"], errors="coerce").fillna(1) > 0]
    df = df.dropna(subset=["user", "timestamp"])
    ts = df["timestamp"]
    ts = (pd.to_datetime(ts, unit="s", utc=True) if pd.api.types.is_numeric_dtype(ts)
          else pd.to_datetime(ts, utc=True))
    nan = pd.Series(np.nan, index=df.index)
    qty = pd.to_numeric(df["quantity"], errors="coerce") if "quantity" in df.columns else None
    price = (pd.to_numeric(df["unit_price"], errors="coerce") if "unit_price" in df.columns
             else None)
    if "value" in df.columns:
        value = pd.to_numeric(df["value"], errors="coerce")
    elif price is not None:
        value = price * qty if qty is not None else price
    else:
        value = nan
    with np.errstate(divide="ignore", invalid="ignore"):
        if qty is None:
            qty = (value / price) if price is not None else nan
        if price is None:
            price = value / qty
    basket = (df["basket"].astype(str) if "basket" in df.columns
              else df["user"].astype(str) + "@" + ts.astype(str))
    item = df["item"] if "item" in df.columns else nan
    def clean(v: pd.Series) -> np.ndarray:
        return v.replace([np.inf, -np.inf], np.nan).to_numpy(np.float64)

    return pd.DataFrame({"user": df["user"].to_numpy(), "timestamp": ts.to_numpy(),
                         "basket": basket.to_numpy(), "value": value.to_numpy(np.float64),
                         "item": item.to_numpy(), "quantity": clean(qty),
                         "unit_price": clean(price)})


def orders_from_log(frame: pd.DataFrame, purchase_event: str = "purchase") -> pd.DataFrame:
    """One row per order: ``user``, ``timestamp`` (first line), ``basket``, ``value`` (sum).

    Accepts an event log (rows that are not ``purchase_event`` and returns, ``quantity <= 0``,
    are dropped) or an order table. ``value`` is the ``value`` column, else ``unit_price x
    quantity``, else ``unit_price``, else NaN (monetary features then stay NaN). Without a
    ``basket`` column one shopper at one moment is one order.
    """
    return orders_from_lines(purchase_lines(frame, purchase_event))


def orders_from_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """:func:`orders_from_log` for the output of :func:`purchase_lines`."""
    return (lines.groupby(["user", "basket"], sort=False)
            .agg(timestamp=("timestamp", "min"), value=("value", lambda v: v.sum(min_count=1)))
            .reset_index())


_BASE_COLUMNS = ("x", "frequency", "t_x", "T_age", "recency_days", "n_orders", "monetary",
                 "total_spend", "repeat_value", "orders_90d", "n_days", "days_30d", "days_90d",
                 "days_180d", "spend_90d", "spend_180d", "gap_mean", "gap_std", "gap_last",
                 "recency_over_gap", "trend", "age_2nd", "age_3rd", *LINE_FEATURES)


def customer_features(orders: pd.DataFrame, at: object, extra: pd.DataFrame | None = None,
                      lines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per customer with an order before ``at`` (orders and lines at or after ``at`` are
    ignored, so the features at a cut never see what follows it).

    Columns: ``user``; ``x`` = ``frequency`` (repeat order days), ``t_x`` (days from the first
    to the last order day), ``T_age`` (days from the first order to ``at``), ``recency_days``
    (days since the last order), ``n_orders`` (orders), ``monetary`` (mean order value),
    ``total_spend``, ``repeat_value`` (mean value of the repeat order days: Gamma-Gamma's
    ``m_x``), ``orders_90d`` (orders in the last 90 days); ``n_days`` (order days),
    ``days_30d`` / ``days_90d`` / ``days_180d`` (order days in the last 30 / 90 / 180 days),
    ``spend_90d`` / ``spend_180d``; between order days: ``gap_mean``, ``gap_std``,
    ``gap_last`` (days), ``recency_over_gap`` (recency / mean gap); ``trend`` ((order days in
    the last 90 + 1) / (in the 90 before + 1)); ``age_2nd`` / ``age_3rd`` (days since the
    second / third latest order day); with ``lines`` (:func:`purchase_lines`), the
    :data:`LINE_FEATURES`: distinct ``items`` (and ``items_90d``), ``lines_per_order``,
    ``qty_mean``, ``qty_median``, ``price_median``, ``value_per_line`` (NaN without lines).
    ``extra``: a frame indexed by user whose columns are joined as they are (the caller's own
    signals).
    """
    at = _utc(at)
    o = orders[orders["timestamp"] < at]
    if o.empty:
        return pd.DataFrame(columns=["user", *_BASE_COLUMNS])
    o = o.assign(day=o["timestamp"].dt.floor("D"))
    days = (o.groupby(["user", "day"], sort=True)
            .agg(first=("timestamp", "min"), value=("value", lambda v: v.sum(min_count=1)))
            .reset_index())
    g = days.groupby("user", sort=True)
    first, last = g["first"].min(), g["first"].max()
    n_days = g.size()
    # mean value of the repeat days: every day but the first
    total_day_value = g["value"].sum(min_count=1)
    first_value = g["value"].first()
    x = (n_days - 1).astype(np.float64)
    repeat_value = ((total_day_value - first_value) / x).where(x > 0)
    per_order = o.groupby("user", sort=True)
    recent = o[o["timestamp"] >= at - 90 * DAY].groupby("user").size()
    out = pd.DataFrame({
        "x": x,
        "t_x": (last - first) / DAY,
        "T_age": (at - first) / DAY,
        "recency_days": (at - last) / DAY,
        "n_orders": per_order.size().astype(np.float64),
        "monetary": per_order["value"].mean(),
        "total_spend": per_order["value"].sum(min_count=1),
        "repeat_value": repeat_value,
        "orders_90d": recent.reindex(x.index).fillna(0.0),
    })
    out["frequency"] = out["x"]
    out["n_days"] = n_days.astype(np.float64)
    # order days by age (days before the cut), newest first within each customer
    days["age"] = (at - days["first"]) / DAY
    for w in (30, 90, 180):
        inside = days[days["age"] < w].groupby("user")
        out[f"days_{w}d"] = inside.size().reindex(out.index).fillna(0.0)
        if w >= 90:
            out[f"spend_{w}d"] = inside["value"].sum().reindex(out.index).fillna(0.0)
    days = days.sort_values(["user", "age"])
    rank = days.groupby("user").cumcount()
    for k, name in ((1, "age_2nd"), (2, "age_3rd")):
        out[name] = days.loc[rank == k].set_index("user")["age"].reindex(out.index)
    gap = days.groupby("user")["age"].diff()  # older minus newer day: positive gaps
    gaps = gap.groupby(days["user"])
    out["gap_mean"] = gaps.mean().reindex(out.index)
    out["gap_std"] = gaps.std().reindex(out.index)
    out["gap_last"] = out["age_2nd"] - out["recency_days"]
    out["recency_over_gap"] = out["recency_days"] / out["gap_mean"]
    out["trend"] = (out["days_90d"] + 1.0) / (out["days_180d"] - out["days_90d"] + 1.0)
    out = out.join(_line_features(lines, at, out["n_orders"]))
    if extra is not None:
        out = out.join(extra, how="left")
    out.index.name = "user"
    return out.reset_index()


def _line_features(lines: pd.DataFrame | None, at: pd.Timestamp,
                   n_orders: pd.Series) -> pd.DataFrame:
    """:data:`LINE_FEATURES` per customer from the lines before ``at`` (NaN without lines)."""
    empty = pd.DataFrame(np.nan, index=n_orders.index, columns=list(LINE_FEATURES))
    if lines is None or lines.empty:
        return empty
    li = lines[lines["timestamp"] < at]
    li = li[li["user"].isin(n_orders.index)]
    if li.empty:
        return empty
    g = li.groupby("user")
    has_items = li["item"].notna().any()
    recent = li[li["timestamp"] >= at - 90 * DAY]
    out = pd.DataFrame({
        "items": g["item"].nunique() if has_items else np.nan,
        "lines_per_order": g.size() / n_orders,
        "qty_mean": g["quantity"].mean(),
        "qty_median": g["quantity"].median(),
        "price_median": g["unit_price"].median(),
        "value_per_line": g["value"].mean(),
    }, index=n_orders.index)
    out["items_90d"] = (recent.groupby("user")["item"].nunique().reindex(out.index).fillna(0.0)
                        if has_items else np.nan)
    return out[list(LINE_FEATURES)].astype(np.float64)


# --- BG/NBD ---------------------------------------------------------------------------------


#: How far (a factor either way) a parameter may move from its start. Where the maximum
#: likelihood lies at infinity (no rate heterogeneity: r and alpha grow together), unbounded
#: searches ran to 1e34 and beyond, where the log-gamma differences lose all precision and
#: the "optimum" was rounding noise: a test's churn risks then flipped with the second
#: the log was scored at. Within 1e4 the likelihood is exact and the ratios that matter
#: (r / alpha, a / b) can still take any realistic value.
FIT_RANGE = 1e4


def _fit(neg_ll, start: np.ndarray) -> np.ndarray:
    """Minimise ``neg_ll`` over log-parameters (so they stay positive) within
    :data:`FIT_RANGE` of ``start``; L-BFGS-B, then Nelder-Mead from there when L-BFGS-B
    reports a failure (flat or ragged likelihoods)."""
    bounds = [(s - np.log(FIT_RANGE), s + np.log(FIT_RANGE)) for s in start]
    res = minimize(neg_ll, start, method="L-BFGS-B", bounds=bounds)
    if not res.success:
        res2 = minimize(neg_ll, res.x, method="Nelder-Mead", bounds=bounds,
                        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-10})
        res = res2 if res2.fun <= res.fun else res
    return np.exp(res.x)


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD: purchase rate ~ Gamma(r, alpha), dropout after each purchase ~ Beta(a, b).

    ``x``: repeat purchases, ``t_x``: time of the last one since the first purchase, ``T``: time
    since the first purchase (all days).
    """

    r: float
    alpha: float
    a: float
    b: float

    @staticmethod
    def _ll(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                          - (r + x) * np.log(alpha + t_x), -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    def log_likelihood(self, x, t_x, T) -> np.ndarray:
        """Per-customer log-likelihood of (x, t_x, T)."""
        return self._ll(np.array([self.r, self.alpha, self.a, self.b]),
                        *map(np.asarray, (x, t_x, T)))

    @classmethod
    def fit(cls, x, t_x, T, penalizer: float = 0.0) -> BGNBD:
        """Maximum likelihood over the customers (identical rows weighed once, counted).

        ``penalizer`` adds ``penalizer * sum(params**2)`` (a ridge on the parameters, as is
        usual for BG/NBD on small logs); 0 is the plain maximum-likelihood estimate.
        """
        d = pd.DataFrame({"x": np.asarray(x, float), "t": np.asarray(t_x, float),
                          "T": np.asarray(T, float)})
        u = d.groupby(["x", "t", "T"]).size().reset_index(name="w")
        xs, ts, Ts, w = (u[c].to_numpy(np.float64) for c in ("x", "t", "T", "w"))
        scale = float(max(np.mean(Ts), 1e-9))

        def neg_ll(logp: np.ndarray) -> float:
            p = np.exp(logp)
            ll = cls._ll(p, xs, ts, Ts)
            val = -(w @ ll) / w.sum() + penalizer * float(p @ p)
            return float(val) if np.isfinite(val) else 1e100

        start = np.log([1.0, scale / 2, 1.0, 1.0])
        return cls(*map(float, _fit(neg_ll, start)))

    def _alive_odds(self, x, t_x, T) -> np.ndarray:
        """a / (b + x - 1) * ((alpha + T) / (alpha + t_x))**(r + x) for x > 0, else 0."""
        x, t_x, T = (np.asarray(v, np.float64) for v in (x, t_x, T))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # log1p: alpha may be huge (little rate heterogeneity) and the difference of two
            # large logs would round to zero
            log_odds = (np.log(self.a) - np.log(np.maximum(self.b + x - 1, 1e-300))
                        + (self.r + x) * np.log1p((T - t_x) / (self.alpha + t_x)))
            return np.where(x > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)

    def p_alive(self, x, t_x, T) -> np.ndarray:
        """P(the customer has not dropped out at T | x, t_x, T)."""
        return 1.0 / (1.0 + self._alive_odds(x, t_x, T))

    def p_no_order(self, t: float, x, t_x, T) -> np.ndarray:
        """P(no order in (T, T + t] | x, t_x, T): dead, or alive and the Poisson clock stays
        silent (dropout only ever follows a purchase, so an alive customer without orders in
        the window is still alive); lambda | alive, history ~ Gamma(r + x, alpha + T)."""
        x, T = np.asarray(x, np.float64), np.asarray(T, np.float64)
        pa = self.p_alive(x, t_x, T)
        silent = np.exp(-(self.r + x) * np.log1p(t / (self.alpha + T)))
        return (1.0 - pa) + pa * silent

    def expected_orders(self, t: float, x, t_x, T) -> np.ndarray:
        """E[orders in (T, T + t] | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10)."""
        x, T = np.asarray(x, np.float64), np.asarray(T, np.float64)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        f = hyp2f1(r + x, b + x, a + b + x - 1, z)
        ratio = np.exp(-(r + x) * np.log1p(t / (alpha + T)))
        num = (a + b + x - 1) / (a - 1) * (1.0 - ratio * f)
        out = num / (1.0 + self._alive_odds(x, t_x, T))
        # Where the Gauss hypergeometric function overflows (b large: customers almost never
        # drop out, the common case for a loyal base), use its limit without dropout in the
        # window: alive, orders at the posterior mean rate (r + x) / (alpha + T).
        limit = self.p_alive(x, t_x, T) * (r + x) / (alpha + T) * t
        return np.where(np.isfinite(out), np.maximum(out, 0.0), limit)


# --- Gamma-Gamma ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma spend model: order values ~ Gamma(p, nu), nu ~ Gamma(q, gamma).

    Fitted on customers with repeat orders, ``m_x`` their mean repeat order value.
    """

    p: float
    q: float
    gamma: float

    @staticmethod
    def _ll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        p, q, g = params
        px = p * x
        return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
                + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(g + x * m))

    @classmethod
    def fit(cls, x, m_x, penalizer: float = 0.0) -> GammaGamma:
        """Maximum likelihood on customers with ``x > 0`` and a positive ``m_x``."""
        x, m = np.asarray(x, np.float64), np.asarray(m_x, np.float64)
        keep = (x > 0) & np.isfinite(m) & (m > 0)
        x, m = x[keep], m[keep]
        if len(x) < 2:
            raise ValueError(f"Gamma-Gamma needs customers with repeat orders and values; "
                             f"got {len(x)}")

        def neg_ll(logp: np.ndarray) -> float:
            params = np.exp(logp)
            val = -np.mean(cls._ll(params, x, m)) + penalizer * float(params @ params)
            return float(val) if np.isfinite(val) else 1e100

        return cls(*map(float, _fit(neg_ll, np.log([1.0, 2.0, float(np.mean(m))]))))

    @property
    def population_mean(self) -> float:
        """E[order value] of a customer we know nothing about (inf when q <= 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")

    def expected_value(self, x, m_x) -> np.ndarray:
        """E[order value | x, m_x]: shrinks the customer's mean towards the population's.
        Customers without repeat orders (or values) get the population mean."""
        x, m = np.asarray(x, np.float64), np.asarray(m_x, np.float64)
        ok = (x > 0) & np.isfinite(m) & (m > 0)
        xm = np.where(ok, x * m, 0.0)
        out = self.p * (self.gamma + xm) / (self.p * np.where(ok, x, 0.0) + self.q - 1)
        return np.where(ok, out, self.population_mean)



# --- scoring ----------------------------------------------------------------------------------


def _check(features: pd.DataFrame, at: pd.Timestamp, min_customers: int) -> None:
    n = len(features)
    repeaters = int((features["x"] > 0).sum()) if n else 0
    if n < min_customers or repeaters == 0:
        raise NotEnoughCustomers(
            f"churn scoring at {at} needs at least {min_customers} customers with an order "
            f"before it, some of them with a repeat order; the log has {n} customers, "
            f"{repeaters} with a repeat order", customers=n, repeat_customers=repeaters,
            needed=min_customers)


def fit_bgnbd(features: pd.DataFrame) -> tuple[BGNBD, GammaGamma | None]:
    """BG/NBD on (x, t_x, T_age); Gamma-Gamma on the repeaters' values when the log has
    values (else ``None``: expected spend is then NaN)."""
    bg = BGNBD.fit(features["x"], features["t_x"], features["T_age"])
    gg = None
    valued = (features["x"] > 0) & (features["repeat_value"] > 0)
    if int(valued.sum()) >= 2:
        gg = GammaGamma.fit(features["x"], features["repeat_value"])
    return bg, gg


def _add_bgnbd(features: pd.DataFrame, bg: BGNBD | None, horizon_days: float) -> pd.DataFrame:
    """``p_no_order`` and ``expected_orders`` over the horizon by ``bg`` (NaN without it)."""
    f = features.copy()
    if bg is None or f.empty:
        f["p_no_order"], f["expected_orders"] = np.nan, np.nan
        return f
    f["p_no_order"] = bg.p_no_order(horizon_days, f["x"], f["t_x"], f["T_age"])
    f["expected_orders"] = bg.expected_orders(horizon_days, f["x"], f["t_x"], f["T_age"])
    return f


def model_features(orders: pd.DataFrame, at: object, horizon_days: float,
                   lines: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`customer_features` at ``at`` plus BG/NBD's ``p_no_order`` and
    ``expected_orders`` from a BG/NBD fitted on the same customers (nothing at or after ``at``
    is read)."""
    at = _utc(at)
    f = customer_features(orders, at, lines=lines)
    bg = None
    if len(f) >= 2 and (f["x"] > 0).any():
        bg = BGNBD.fit(f["x"], f["t_x"], f["T_age"])
    return _add_bgnbd(f, bg, horizon_days)


def challenger_training_set(orders: pd.DataFrame, at: pd.Timestamp, horizon_days: float,
                            features: Sequence[str] = GBM_FEATURES,
                            lines: pd.DataFrame | None = None, cuts: int = TRAIN_CUTS,
                            step_days: float = TRAIN_STEP_DAYS,
                            min_customers: int = MIN_CUSTOMERS
                            ) -> tuple[pd.DataFrame, np.ndarray]:
    """The classifiers' training rows: (``user``, ``cut``, features at the cut; 1 = no order in
    ``[cut, cut + horizon)``) for the cuts ``at - horizon - k * step_days``, ``k < cuts``.

    Every label window ends by ``at`` and only orders (and lines) before ``at`` are read, so
    nothing after ``at`` can leak. The first cut is always kept (the caller checks it); a later
    one only with ``min_customers`` customers and both classes.
    """
    at = _utc(at)
    o = orders[orders["timestamp"] < at]
    li = None if lines is None else lines[lines["timestamp"] < at]
    parts, labels = [], []
    for k in range(max(int(cuts), 1)):
        cut = at - horizon_days * DAY - k * step_days * DAY
        f = model_features(o, cut, horizon_days, li)
        came_back = set(o.loc[(o["timestamp"] >= cut)
                              & (o["timestamp"] < cut + horizon_days * DAY), "user"])
        y = (~f["user"].isin(came_back)).to_numpy(np.int64)
        if k > 0 and (len(y) < min_customers or int(y.sum()) in (0, len(y))):
            continue
        parts.append(f[["user", *features]].assign(cut=cut))
        labels.append(y)
    X = pd.concat(parts, ignore_index=True)
    return X[["user", "cut", *features]], np.concatenate(labels)


def _log1p(X: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0), 0.0))


def make_classifier(model: str, seed: int = 0):
    """An unfitted scikit-learn classifier for ``gbm`` or ``logit`` with the chosen settings
    (chosen on online-retail's validation cut; bench/results/churn.md)."""
    if model == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier  # optional dependency

        return HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.05, max_depth=2, min_samples_leaf=50,
            early_stopping=False, random_state=seed)
    if model == "logit":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        return make_pipeline(FunctionTransformer(_log1p), StandardScaler(),
                             LogisticRegression(C=1.0, max_iter=2000))
    raise ValueError(f"no classifier called {model!r}; choose gbm or logit")


#: Each classifier's features.
CLASSIFIER_FEATURES = {"gbm": GBM_FEATURES, "logit": LOGIT_FEATURES}


def fit_classifiers(orders: pd.DataFrame, at: pd.Timestamp, horizon_days: float,
                    models: Sequence[str] = ("gbm",), lines: pd.DataFrame | None = None,
                    min_customers: int = MIN_CUSTOMERS, seed: int = 0) -> dict:
    """The classifiers named in ``models`` (``gbm``, ``logit``), fitted on one
    :func:`challenger_training_set`; raises :class:`NotEnoughCustomers` when the cut
    ``at - horizon`` has too few customers or one class."""
    at = _utc(at)
    cols = list(dict.fromkeys(c for m in models for c in CLASSIFIER_FEATURES[m]))
    X, y = challenger_training_set(orders, at, horizon_days, cols, lines=lines,
                                   min_customers=min_customers)
    first = (X["cut"] == X["cut"].max()).to_numpy()
    n, churned = int(first.sum()), int(y[first].sum())
    if n < min_customers or churned in (0, n):
        raise NotEnoughCustomers(
            f"the churn classifiers learn from customers before {at - horizon_days * DAY} and "
            f"whether they ordered in the {horizon_days:g} days up to {at}: they need at least "
            f"{min_customers} such customers, both some who ordered again and some who did "
            f"not; the log has {n} customers then, {n - churned} who ordered again, "
            f"{churned} who did not", customers=n, returned=n - churned, churned=churned,
            needed=min_customers)
    return {m: make_classifier(m, seed).fit(
        X[list(CLASSIFIER_FEATURES[m])].to_numpy(np.float64), y) for m in models}


def fit_challenger(orders: pd.DataFrame, at: pd.Timestamp, horizon_days: float,
                   min_customers: int = MIN_CUSTOMERS, seed: int = 0,
                   lines: pd.DataFrame | None = None, model: str = "gbm"):
    """One fitted classifier (see :func:`fit_classifiers`)."""
    return fit_classifiers(orders, at, horizon_days, (model,), lines=lines,
                           min_customers=min_customers, seed=seed)[model]


def score_customers(frame: pd.DataFrame, at: object = None, horizon_days: float = 90.0,
                    model: str = DEFAULT_MODEL, min_customers: int = MIN_CUSTOMERS,
                    extra: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every customer with an order before ``at`` (default: the last timestamp of the log).

    ``frame``: a purchase log (see :func:`orders_from_log`). Rows at or after ``at`` are ignored.
    Columns: ``user``, ``churn_risk`` (P(no order in the next ``horizon_days``) by ``model``;
    ``ensemble``: the mean of ``gbm``'s and ``logit``'s),
    ``p_alive``, ``expected_orders`` (next ``horizon_days``, BG/NBD), ``expected_value``
    (Gamma-Gamma), ``expected_spend`` (their product), ``recency_days``, ``frequency``,
    ``T_age``, ``n_orders``, ``monetary``, ``total_spend``, ``model``; highest risk first.
    Raises :class:`NotEnoughCustomers` (with counts) when the log cannot support the model.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    lines = purchase_lines(frame)
    at = _utc(at) if at is not None else lines["timestamp"].max() + pd.Timedelta(seconds=1)
    lines = lines[lines["timestamp"] < at]
    orders = orders_from_lines(lines)
    f = customer_features(orders, at, extra=extra, lines=lines)
    _check(f, at, min_customers)
    bg, gg = fit_bgnbd(f)
    p_no = bg.p_no_order(horizon_days, f["x"], f["t_x"], f["T_age"])
    exp_orders = bg.expected_orders(horizon_days, f["x"], f["t_x"], f["T_age"])
    exp_value = (gg.expected_value(f["x"], f["repeat_value"]) if gg is not None
                 else np.full(len(f), np.nan))
    if model == "bgnbd":
        risk = p_no
    else:
        names = ("gbm", "logit") if model == "ensemble" else (model,)
        clfs = fit_classifiers(orders, at, horizon_days, names, lines=lines,
                               min_customers=min_customers)
        fx = _add_bgnbd(f, bg, horizon_days)
        risk = np.mean([clfs[m].predict_proba(
            fx[list(CLASSIFIER_FEATURES[m])].to_numpy(np.float64))[:, 1] for m in names], axis=0)
    out = pd.DataFrame({
        "user": f["user"].to_numpy(), "churn_risk": risk,
        "p_alive": bg.p_alive(f["x"], f["t_x"], f["T_age"]),
        "expected_orders": exp_orders, "expected_value": exp_value,
        "expected_spend": exp_orders * exp_value,
        "recency_days": f["recency_days"].to_numpy(), "frequency": f["frequency"].to_numpy(),
        "T_age": f["T_age"].to_numpy(), "n_orders": f["n_orders"].to_numpy(),
        "monetary": f["monetary"].to_numpy(), "total_spend": f["total_spend"].to_numpy(),
        "model": model})
    out.attrs.update({"at": str(at), "horizon_days": float(horizon_days),
                      "bgnbd": vars(bg), "gamma_gamma": None if gg is None else vars(gg)})
    return out.sort_values("churn_risk", ascending=False, kind="stable").reset_index(drop=True)
