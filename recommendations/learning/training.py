"""One training run: extract -> matrix -> fit -> test against baselines -> save -> gate.

The task in :mod:`recommendations.tasks` holds the lock and records failures; everything
here works on a :class:`ModelVersion` that is already ``running``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..conf import app_settings
from ..ml.data import split_strong
from ..ml.evaluate import evaluate_model
from ..ml.metrics import evaluate_scores
from ..ml.models import REGISTRY
from ..models import ModelVersion
from .dataset import interaction_matrix, training_log
from .versions import LoadedVersion, active_version, load_version, save_version_artifacts

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


class NotEnoughData(ValueError):
    """The log is too small to train and test a model honestly."""


def train_version(
    version: ModelVersion,
    heartbeat: Callable[[], Any] = lambda: None,
    progress: Progress | None = None,
) -> ModelVersion:
    """Train ``version`` in place and save it; decides ``gate_passed`` (does not activate)."""
    say = progress or (lambda message: logger.info("v%s: %s", version.pk, message))
    cfg = app_settings.TRAINING
    t0 = time.perf_counter()
    frame = training_log()
    say(f"extracted {len(frame):,} events in {time.perf_counter() - t0:.1f}s")
    if frame.empty:
        raise NotEnoughData("The interaction log has no events to train on.")
    matrix = interaction_matrix(frame)
    version.data_since = frame["timestamp"].min().to_pydatetime()
    version.data_until = frame["timestamp"].max().to_pydatetime()
    version.n_events = len(frame)
    del frame
    try:
        split = split_strong(
            matrix,
            fraction=cfg["HOLDOUT_FRACTION"],
            min_items=cfg["MIN_ITEMS_PER_USER"],
            seed=cfg["SEED"],
        )
    except ValueError as exc:
        raise NotEnoughData(
            f"Not enough shoppers with {cfg['MIN_ITEMS_PER_USER']}+ items: {exc}"
        ) from exc
    item_ids = matrix.item_ids[split.item_index]
    version.n_users, version.n_items = int(matrix.shape[0]), len(item_ids)
    say(
        f"{version.n_users:,} shoppers x {version.n_items:,} items; "
        f"{split.validation[0].shape[0]} validation and {split.test[0].shape[0]} test shoppers"
    )

    algorithm = version.algorithm or cfg["ALGORITHM"]
    if algorithm not in REGISTRY:
        raise ValueError(f"Unknown algorithm {algorithm!r}; choose from {', '.join(REGISTRY)}.")
    params = version.hyperparameters or cfg["HYPERPARAMETERS"]
    candidate = REGISTRY[algorithm](**params)

    def on_epoch(epoch: int, n_epochs: int, metrics: dict) -> None:
        heartbeat()
        ndcg = metrics.get("val_ndcg@100", metrics.get("ndcg@100"))
        say(f"epoch {epoch}/{n_epochs}" + (f" validation NDCG@100 {ndcg:.4f}" if ndcg else ""))

    say(f"training {algorithm}")
    result = evaluate_model(candidate, split, progress=on_epoch)
    heartbeat()
    baselines: dict[str, Any] = {}
    for name in cfg["BASELINES"]:
        say(f"baseline {name}")
        entry = evaluate_model(REGISTRY[name](), split)
        if entry.get("status") == "refused" and name == "ease":
            say(f"EASE refused ({entry['reason']}); item-kNN instead")
            name, entry = "itemknn", evaluate_model(REGISTRY["itemknn"](), split)
        baselines[name] = _public(entry)
        heartbeat()

    active = active_version()
    active_metrics = None
    if active is not None:
        try:
            active_metrics = score_on_split(load_version(active), split, item_ids)
        except Exception as exc:  # an unreadable old artifact must not block a new model
            logger.warning("could not test the active version %s: %s", active, exc)
    version.metrics = {
        "split": {
            "train_users": int(split.train.shape[0]),
            "validation_users": int(split.validation[0].shape[0]),
            "test_users": int(split.test[0].shape[0]),
            "items": version.n_items,
            "seed": cfg["SEED"],
        },
        "candidate": _public(result),
        "baselines": baselines,
        "active": None if active is None else {"version": active.pk, **(active_metrics or {})},
    }
    version.training_curve = result.get("history", [])
    version.device = str(getattr(candidate, "device_", "cpu"))[:32]
    version.hyperparameters = candidate.hyperparameters()
    version.gate_passed, version.gate_report = gate(version.metrics)
    say(version.gate_report)
    version.artifact = save_version_artifacts(version, candidate, item_ids)
    return version


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    """Metrics worth keeping on the version (the curve is stored separately)."""
    return {k: v for k, v in entry.items() if k != "history"}


def score_on_split(loaded: LoadedVersion, split: Any, item_ids: np.ndarray) -> dict[str, float]:
    """Test an older model on this run's test users, mapping its item columns onto ours.

    Items the old model never saw get no score: that is the honest cost of its age.
    """
    fold_in, truth = split.test
    old_index = loaded.item_index()
    ours_to_old = np.array([old_index.get(int(pk), -1) for pk in item_ids])
    known = np.flatnonzero(ours_to_old >= 0)
    mapping = sp.csr_matrix(
        (np.ones(len(known), np.float32), (known, ours_to_old[known])),
        shape=(len(item_ids), loaded.model.n_items),
    )

    def score(X: sp.csr_matrix) -> np.ndarray:
        old_scores = loaded.model.score(sp.csr_matrix(X @ mapping))
        scores = np.full((X.shape[0], len(item_ids)), -np.inf, dtype=np.float32)
        scores[:, known] = old_scores[:, ours_to_old[known]]
        return scores

    return {
        k: float(v)
        for k, v in evaluate_scores(score, fold_in, truth).items()
        if isinstance(v, int | float)
    }


def gate(metrics: dict[str, Any]) -> tuple[bool, str]:
    """Whether the candidate may replace what is served, and why, in one sentence each."""
    cfg = app_settings.GATE
    name = cfg["METRIC"]
    ours = metrics["candidate"].get(name)
    reasons, passed = [], True
    pop = metrics["baselines"].get("pop", {}).get(name)
    if ours is None:
        return False, f"No {name} for the candidate."
    if pop is not None:
        needed = pop * (1 + cfg["MIN_LIFT_OVER_POPULARITY"])
        ok = ours >= needed
        passed &= ok
        reasons.append(
            f"{name} {ours:.4f} {'>=' if ok else '<'} popularity {pop:.4f} "
            f"+ {cfg['MIN_LIFT_OVER_POPULARITY']:.0%}"
        )
    active = metrics.get("active") or {}
    if active.get(name) is not None:
        floor = active[name] * (1 - cfg["MAX_DROP_FROM_ACTIVE"])
        ok = ours >= floor
        passed &= ok
        reasons.append(
            f"{'>=' if ok else '<'} active v{active['version']} {active[name]:.4f} "
            f"- {cfg['MAX_DROP_FROM_ACTIVE']:.0%}"
        )
    return passed, ("Gate passed: " if passed else "Gate failed: ") + "; ".join(reasons) + "."
