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
