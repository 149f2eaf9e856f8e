"""Churn models on data simulated from BG/NBD: recovery, P(alive), no leakage, errors, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommendations.ml import churn, churn_eval, evaluate

TRUE = churn.BGNBD(r=0.6, alpha=12.0, a=0.9, b=2.5)
START = pd.Timestamp("2024-01-01", tz="UTC")


def simulate(n: int, params: churn.BGNBD, T: np.ndarray, seed: int = 0,
             horizon: float = 0.0) -> tuple[list[np.ndarray], np.ndarray]:
    """Per customer the purchase times (days since the first purchase at 0) up to
    ``T + horizon``, and whether each is still alive at the end (the paper's process: a
    Poisson clock of rate lambda; after each repeat purchase, gone with probability p)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    times, alive_at_end = [], np.zeros(n, bool)
    for i in range(n):
        t, out, alive = 0.0, [0.0], True
        while True:
            t += rng.exponential(1.0 / lam[i])
            if t > T[i] + horizon:
                break
            out.append(t)
            if rng.random() < p[i]:  # drops out right after a repeat purchase
                alive = False
                break
        times.append(np.array(out))
        alive_at_end[i] = alive
    return times, alive_at_end


def summarize(times: list[np.ndarray], T: np.ndarray) -> tuple[np.ndarray, ...]:
    x = np.array([np.sum(ts <= T[i]) - 1 for i, ts in enumerate(times)], float)
    t_x = np.array([ts[ts <= T[i]].max() for i, ts in enumerate(times)])
    return x, t_x


def purchase_log(n: int = 300, days: float = 240.0, seed: int = 1) -> pd.DataFrame:
    """A log of ``n`` customers starting over the first half of ``days``; values ~ lognormal."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0, days / 2, n)
    times, _ = simulate(n, TRUE, days - first, seed=seed)
    rows = []
    for i, ts in enumerate(times):
        scale = rng.uniform(10, 60)
        for j, t in enumerate(ts):
            when = START + pd.Timedelta(days=float(first[i] + t))
            rows.append((f"c{i}", f"i{rng.integers(20)}", when, f"o{i}-{j}",
                         float(rng.gamma(4.0, scale / 4.0))))
    return pd.DataFrame(rows, columns=["user", "item", "timestamp", "basket", "value"])


def test_bgnbd_recovers_parameters_of_simulated_data() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    T = rng.uniform(60, 360, n)
    times, _ = simulate(n, TRUE, T, seed=4)
    x, t_x = summarize(times, T)
    fit = churn.BGNBD.fit(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        true, got = getattr(TRUE, name), getattr(fit, name)
        assert abs(got - true) / true < 0.35, (name, true, got)
    # the fit explains the data better than the truth only by a hair, and beats a wrong model
    wrong = churn.BGNBD(r=2.0, alpha=2.0, a=0.1, b=5.0)
    assert fit.log_likelihood(x, t_x, T).sum() >= TRUE.log_likelihood(x, t_x, T).sum() - 1e-6
    assert TRUE.log_likelihood(x, t_x, T).sum() > wrong.log_likelihood(x, t_x, T).sum() + 100


def test_expected_orders_and_p_no_order_match_the_simulation() -> None:
    n, h = 4000, 60.0
    T = np.full(n, 120.0)
    times, _ = simulate(n, TRUE, T, seed=5, horizon=h)
    x, t_x = summarize(times, T)
    future = np.array([np.sum((ts > T[i]) & (ts <= T[i] + h)) for i, ts in enumerate(times)])
    expected = TRUE.expected_orders(h, x, t_x, T)
    p_none = TRUE.p_no_order(h, x, t_x, T)
    assert abs(expected.mean() - future.mean()) < 0.1 * future.mean()
    assert abs(p_none.mean() - np.mean(future == 0)) < 0.03


def test_p_alive_decreases_with_recency_for_a_fixed_frequency() -> None:
    T = 200.0
    t_x = np.linspace(195.0, 5.0, 20)  # last order ever longer ago
    pa = TRUE.p_alive(np.full(20, 4.0), t_x, np.full(20, T))
    assert np.all(np.diff(pa) < 0)
    assert TRUE.p_alive(0.0, 0.0, T) == pytest.approx(1.0)  # no repeat yet: cannot have left


def test_gamma_gamma_shrinks_towards_the_population_mean() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 8, 2000).astype(float)
    nu = rng.gamma(4.0, 1.0 / 30.0, 2000)  # spend rate per customer
    m = np.array([rng.gamma(3.0, 1.0 / v, int(k)).mean() for v, k in zip(nu, x, strict=True)])
    gg = churn.GammaGamma.fit(x, m)
    assert abs(gg.population_mean - m.mean()) < 0.2 * m.mean()
    high = gg.expected_value([1.0, 10.0], [10 * gg.population_mean] * 2)
    assert gg.population_mean < high[0] < high[1] < 10 * gg.population_mean
    assert gg.expected_value([0.0], [np.nan])[0] == pytest.approx(gg.population_mean)


def test_challenger_never_sees_after_the_cut() -> None:
    pytest.importorskip("sklearn")
    log = purchase_log()
    at = START + pd.Timedelta(days=180)
    orders = churn.orders_from_log(log)
    X, y = churn.challenger_training_set(orders, at, 60.0)
    X0, y0 = churn.challenger_training_set(orders[orders["timestamp"] < at], at, 60.0)
    pd.testing.assert_frame_equal(X, X0)
    assert np.array_equal(y, y0)
    # stacked cuts at - 60d, at - 90d, at - 120d: each cut's rows are its customers, labelled
    # by the 60 days after it only, and every label window ends by at
    cuts = sorted(X["cut"].unique(), reverse=True)
    assert cuts == [at - pd.Timedelta(days=60 + 30 * k) for k in range(churn.TRAIN_CUTS)]
    for cut in cuts:
        rows = (X["cut"] == cut).to_numpy()
        early = orders[orders["timestamp"] < cut]
        assert set(X.loc[rows, "user"]) == set(early["user"])
        back = set(orders.loc[(orders["timestamp"] >= cut)
                              & (orders["timestamp"] < cut + pd.Timedelta(days=60)), "user"])
        assert np.array_equal(y[rows], (~X.loc[rows, "user"].isin(back)).to_numpy(np.int64))
    # a future that would flip every label changes nothing in the scores
    future = log[log["timestamp"] >= at]
    for model in churn.MODELS:
        a = churn.score_customers(log, at, 60.0, model=model)
        b = churn.score_customers(log[log["timestamp"] < at], at, 60.0, model=model)
        c = churn.score_customers(pd.concat([log[log["timestamp"] < at], future.iloc[::-1]]),
                                  at, 60.0, model=model)
        pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(a, c)


def test_features_at_a_cut_ignore_later_events() -> None:
    """Orders and lines after the cut, however odd, change no feature at the cut (fails if any
    feature, the line features included, reads past it)."""
    log = purchase_log(n=120).assign(unit_price=lambda d: d["value"] / 3, quantity=3)
    at = START + pd.Timedelta(days=150)
    lines = churn.purchase_lines(log)
    past = lines[lines["timestamp"] < at]
    future = lines[lines["timestamp"] >= at].assign(
        item="a-new-item", quantity=1000.0, unit_price=999.0, value=999000.0)
    assert len(future) > 0
    # a future line exactly at the cut counts as future too
    at_cut = past.iloc[:5].assign(timestamp=at, item="at-the-cut", value=1e6, basket="late")
    full = pd.concat([past, future, at_cut], ignore_index=True)
    got = churn.model_features(churn.orders_from_lines(full), at, 60.0, lines=full)
    want = churn.model_features(churn.orders_from_lines(past), at, 60.0, lines=past)
    pd.testing.assert_frame_equal(got, want)
    assert set(churn.GBM_FEATURES) | set(churn.LOGIT_FEATURES) <= set(got.columns)
    assert got[list(churn.LINE_FEATURES)].notna().any().all()


def test_rich_features_on_a_small_log() -> None:
    at = pd.Timestamp("2024-07-01", tz="UTC")
    d = lambda n: at - pd.Timedelta(days=n)  # noqa: E731
    log = pd.DataFrame([
        # user a: order days 200, 100, 40 and 10 days before the cut; two lines on day 10
        ("a", "i1", d(200), "o1", 10.0, 2), ("a", "i2", d(100), "o2", 20.0, 4),
        ("a", "i1", d(40), "o3", 30.0, 6), ("a", "i3", d(10), "o4", 40.0, 8),
        ("a", "i4", d(10), "o4", 60.0, 1),
        # user b: one order 50 days before
        ("b", "i1", d(50), "o5", 5.0, 1),
        # after the cut: ignored
        ("b", "i9", at + pd.Timedelta(days=1), "o6", 1e6, 1),
    ], columns=["user", "item", "timestamp", "basket", "value", "quantity"])
    lines = churn.purchase_lines(log)
    f = churn.customer_features(churn.orders_from_lines(lines), at, lines=lines)
    a, b = (f.set_index("user").loc[u] for u in ("a", "b"))
    assert (a["n_days"], a["days_30d"], a["days_90d"], a["days_180d"]) == (4, 1, 2, 3)
    assert a["spend_90d"] == 130.0 and a["spend_180d"] == 150.0
    assert a["recency_days"] == pytest.approx(10) and a["age_2nd"] == pytest.approx(40)
    assert a["age_3rd"] == pytest.approx(100) and a["gap_last"] == pytest.approx(30)
    assert a["gap_mean"] == pytest.approx(190 / 3)
    assert a["recency_over_gap"] == pytest.approx(10 / (190 / 3))
    assert a["trend"] == pytest.approx((2 + 1) / (1 + 1))
    assert a["items"] == 4 and a["items_90d"] == 3 and a["lines_per_order"] == 5 / 4
    assert a["qty_mean"] == pytest.approx(21 / 5) and a["price_median"] == pytest.approx(5.0)
    assert a["value_per_line"] == pytest.approx(32.0)
    assert b["n_days"] == 1 and np.isnan(b["gap_mean"]) and np.isnan(b["age_2nd"])
    assert b["value_per_line"] == 5.0  # the 1e6 after the cut is not read
    # without item / quantity / price columns the line features are NaN, the rest is there
    bare = churn.orders_from_log(log[["user", "timestamp", "basket"]])
    g = churn.customer_features(bare, at).set_index("user")
    assert g[list(churn.LINE_FEATURES)].isna().all().all() and g.loc["a", "n_days"] == 4


def test_ensemble_is_the_mean_of_its_classifiers() -> None:
    pytest.importorskip("sklearn")
    log, at = purchase_log(), START + pd.Timedelta(days=180)
    risk = {m: churn.score_customers(log, at, 60.0, model=m).set_index("user")["churn_risk"]
            for m in ("gbm", "logit", "ensemble")}
    mean = (risk["gbm"] + risk["logit"].reindex(risk["gbm"].index)) / 2
    np.testing.assert_allclose(risk["ensemble"].reindex(mean.index), mean)


def test_score_customers_columns_and_order() -> None:
    pytest.importorskip("sklearn")
    s = churn.score_customers(purchase_log(), START + pd.Timedelta(days=180), 60.0)
    for col in ("user", "churn_risk", "p_alive", "expected_orders", "expected_spend",
                "recency_days", "frequency", "monetary", "T_age"):
        assert col in s.columns
    assert s["churn_risk"].is_monotonic_decreasing
    assert s["churn_risk"].between(0, 1).all() and s["p_alive"].between(0, 1).all()
    assert (s["expected_spend"] >= 0).all() and s["user"].is_unique


def test_too_few_customers_names_the_counts() -> None:
    log = purchase_log(n=300)
    few = log[log["user"].isin(["c0", "c1", "c2", "c3", "c4"])]
    with pytest.raises(churn.NotEnoughCustomers, match=r"the log has 5 customers") as e:
        churn.score_customers(few, START + pd.Timedelta(days=240), 30.0, model="bgnbd")
    assert e.value.counts["customers"] == 5 and e.value.counts["needed"] == churn.MIN_CUSTOMERS


def test_challenger_without_orders_in_the_last_horizon_names_the_counts() -> None:
    pytest.importorskip("sklearn")
    log = purchase_log(n=300, days=120)
    at = START + pd.Timedelta(days=400)  # nobody ordered in [at - 90d, at)
    with pytest.raises(churn.NotEnoughCustomers, match=r"0 who ordered again") as e:
        churn.score_customers(log, at, 90.0, model="gbm")
    assert e.value.counts["returned"] == 0 and e.value.counts["customers"] == 300


def test_churn_protocol_rows() -> None:
    pytest.importorskip("sklearn")
    rows = churn_eval.evaluate_churn(purchase_log(n=400), horizon_days=45.0)
    assert [r["model"] for r in rows] == list(churn_eval.CHURN_MODELS)
    assert sum(r["default"] for r in rows) == 1
    for r in rows:
        assert r["protocol"] == "churn" and 0.0 <= r["auc"] <= 1.0
    bg = next(r for r in rows if r["model"] == "bgnbd")
    assert bg["spend_mae"] >= 0 and bg["spend_mae_naive_past_rate"] >= 0


def test_roc_auc() -> None:
    assert churn_eval.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert np.isnan(churn_eval.roc_auc(np.array([1.0, 2.0]), np.array([1, 1])))


def test_cli_prints_one_json_line_per_model(tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("sklearn")
    csv = tmp_path / "orders.csv"
    purchase_log(n=300).to_csv(csv, index=False)
    assert evaluate.main(["--dataset", str(csv), "--protocol", "churn",
                          "--horizon-days", "45"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert {x["model"] for x in lines} == {"recency", "frequency", *churn.MODELS}
    assert all(x["protocol"] == "churn" and 0 <= x["auc"] <= 1 for x in lines)


def test_cli_reports_too_few_customers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "few.csv"
    purchase_log(n=300).query("user in ['c1', 'c2', 'c3']").to_csv(csv, index=False)
    assert evaluate.main(["--dataset", str(csv), "--protocol", "churn",
                          "--models", "bgnbd"]) == 2
    assert "customers" in capsys.readouterr().err
