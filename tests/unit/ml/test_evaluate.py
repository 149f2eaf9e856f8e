"""evaluate_models (the management command's entry point) and the CLI's dataset handling."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import scipy.sparse as sp

from recommendations.ml import evaluate
from recommendations.ml.data import build_interaction_matrix


def test_evaluate_models_on_synthetic(clustered: sp.csr_matrix) -> None:
    res = evaluate.evaluate_models(clustered, models=["pop", "itemknn", "ease"], seed=1)
    assert set(res["models"]) == {"pop", "itemknn", "ease"}
    for r in res["models"].values():
        assert r["status"] == "ok"
        assert 0 <= r["recall@20"] <= 1 and 0 <= r["ndcg@100"] <= 1
        assert r["fit_seconds"] >= 0 and r["py_peak_mib"] > 0
    assert res["models"]["ease"]["ndcg@100"] > res["models"]["pop"]["ndcg@100"]
    assert "itemknn" in evaluate.format_table(res)
    json.dumps(res)


def test_evaluate_reports_refused_ease(clustered: sp.csr_matrix) -> None:
    from recommendations.ml.models import EASE

    res = evaluate.evaluate_models(clustered, models=[EASE(max_memory_bytes=1)], seed=0)
    assert res["models"]["ease"]["status"] == "refused"
    assert "refused" in evaluate.format_table(res)


def test_cli_skips_missing_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("RECOMMENDATIONS_DATASETS_DIR", str(tmp_path / "nowhere"))
    assert evaluate.main(["--dataset", "ml-100k"]) == 0
    out = capsys.readouterr().out
    assert "skipped: dataset ml-100k not found at" in out and "nowhere" in out


def test_cli_on_csv_path(tmp_path: Path, clustered: sp.csr_matrix) -> None:
    coo = clustered.tocoo()
    csv = tmp_path / "log.csv"
    pd.DataFrame({"user": coo.row, "item": coo.col, "event": "purchase"}).to_csv(csv, index=False)
    out = tmp_path / "res.json"
    assert evaluate.main(["--dataset", str(csv), "--models", "pop,itemknn",
                          "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["models"]["itemknn"]["status"] == "ok"


def test_interaction_matrix_input_accepted() -> None:
    log = pd.DataFrame({"user": [u for u in range(40) for _ in range(6)],
                        "item": [(u + j) % 30 for u in range(40) for j in range(6)]})
    im = build_interaction_matrix(log)
    res = evaluate.evaluate_models(im, models=["pop"], seed=0)
    assert res["split"]["n_items"] <= 30


def _timed_log(tmp_path: Path) -> Path:
    """200 shoppers over 100 days, each re-buying from one of 4 clusters: a tiny timed CSV."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for u in range(200):
        own = np.arange(8) + 8 * (u % 4)
        for day in sorted(rng.choice(100, 6, replace=False)):
            for item in rng.choice(own, 2, replace=False):
                rows.append((f"c{u}", f"sku{item}", pd.Timestamp("2024-01-01")
                             + pd.Timedelta(days=int(day)), f"o{u}-{day}"))
    csv = tmp_path / "orders.csv"
    pd.DataFrame(rows, columns=["customer_id", "product_id", "event_time", "order_id"]).to_csv(
        csv, index=False)
    return csv


def test_cli_temporal_prints_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = _timed_log(tmp_path)
    assert evaluate.main(["--dataset", str(csv), "--protocol", "temporal", "--window-days",
                          "30", "--test-fraction", "0.3", "--models",
                          "buy_again,pop,ease,served,itemknn"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    got = {(r["model"], r["task"]) for r in lines}
    assert got == {(m, t) for m in ("buy_again", "pop", "ease", "served", "itemknn")
                   for t in ("all", "explore")}
    for r in lines:
        assert r["protocol"] == "temporal" and r["users"] > 0
        for key in ("ndcg@20", "recall@20", "hitrate@20", "repeat_share"):
            assert 0 <= r[key] <= 1
    by = {(r["model"], r["task"]): r for r in lines}
    assert by[("buy_again", "all")]["repeat_share"] > 0
    assert by[("buy_again", "explore")]["repeat_share"] == 0
    # a model that knows the clusters beats this month's best sellers on new items
    assert by[("ease", "explore")]["ndcg@20"] > by[("pop", "explore")]["ndcg@20"]
    assert by[("served", "all")]["policy"] == "none"


def test_explore_masks_history_all_does_not() -> None:
    import numpy as np

    from recommendations.ml.temporal import HeldOut

    one = sp.csr_matrix(np.array([[1, 0, 0]], np.float32))
    truth = sp.csr_matrix(np.array([[1, 1, 0]], np.float32))
    held = HeldOut(np.array(["a"]), history=one, truth=truth, bought=one, orders=one,
                   last_bought_days=one)
    scores = np.array([[3.0, 2.0, 1.0]])
    all_ = evaluate.temporal_metrics(scores, held, "all")
    explore = evaluate.temporal_metrics(scores, held, "explore")
    assert all_["ndcg@20"] == pytest.approx(1.0) and all_["repeat_share"] == 0.5
    # item 0 masked and not in truth: item 1 is now first
    assert explore["ndcg@20"] == pytest.approx(1.0) and explore["recall@20"] == 1.0
    scores = np.array([[3.0, 1.0, 2.0]])
    assert evaluate.temporal_metrics(scores, held, "explore")["ndcg@20"] < 1.0


def test_cli_temporal_needs_timestamps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "log.csv"
    pd.DataFrame({"user": [1, 2], "item": [3, 4]}).to_csv(csv, index=False)
    assert evaluate.main(["--dataset", str(csv), "--protocol", "temporal"]) == 2
    assert "time column" in capsys.readouterr().err


def test_cli_temporal_skips_missing_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("RECOMMENDATIONS_DATASETS_DIR", str(tmp_path / "nowhere"))
    assert evaluate.main(["--dataset", "ml-latest-small", "--protocol", "temporal"]) == 0
    assert "skipped: dataset ml-latest-small" in capsys.readouterr().out


def test_cli_temporal_refuses_instacart_clearly(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    d = tmp_path / "instacart-train-baskets"
    d.mkdir()
    (d / "order_products__train.csv.gz").write_bytes(b"")
    monkeypatch.setenv("RECOMMENDATIONS_DATASETS_DIR", str(tmp_path))
    assert evaluate.main(["--dataset", "instacart", "--protocol", "temporal"]) == 2
    assert "instacart has no timestamps" in capsys.readouterr().err
