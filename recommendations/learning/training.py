"""One training run on the shop's question, "what will this shopper buy next?".

extract -> temporal split (history before the cut, purchases in the window after it, stable
held-out shoppers) -> fit the candidate -> test it, the simple baselines and the active
version on the same held-out shoppers -> gate -> refit on every event up to now -> save.

The task in :mod:`recommendations.learning.tasks` holds the lock and records failures;
everything here works on a :class:`ModelVersion` that is already ``running``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..conf import app_settings
from ..ml.data import build_interaction_matrix
from ..ml.evaluate import TASKS, temporal_metrics
from ..ml.models import REGISTRY, CatalogueTooLargeError, Recommender
from ..ml.policy import apply_exclusion
from ..ml.serving_model import NotServable, ServedModel, served_form
from ..ml.temporal import (
    TemporalSplit,
    buy_again_scores,
    heldout_bucket,
    recent_popularity_scores,
    split_temporal,
)
from ..models import ModelVersion
from .dataset import training_log
from .gate import gate
from .versions import LoadedVersion, active_version, load_version, save_version_artifacts

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
#: A test needs at least this many held-out shoppers who bought in the window.
MIN_TEST_SHOPPERS = 5


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
    version.event_weights = dict(app_settings.EVENT_WEIGHTS)
    version.half_life_days = cfg["HALF_LIFE_DAYS"]
    version.data_since = frame["timestamp"].min().to_pydatetime()
    version.data_until = frame["timestamp"].max().to_pydatetime()
    version.n_events = len(frame)
    split = temporal_split(frame)
    say(
        f"cut {split.cut:%Y-%m-%d %H:%M}, {split.window_days:g}-day window: "
        f"{len(split.train_user_ids):,} training shoppers x {len(split.item_ids):,} items; "
        f"{split.validation.n_users} validation and {split.test.n_users} test shoppers"
    )

    algorithm = version.algorithm or cfg["ALGORITHM"]
    if algorithm not in REGISTRY:
        raise ValueError(f"Unknown algorithm {algorithm!r}; choose from {', '.join(REGISTRY)}.")
    params = version.hyperparameters or cfg["HYPERPARAMETERS"]

    def on_epoch(epoch: int, n_epochs: int, metrics: dict) -> None:
        heartbeat()
        ndcg = next((v for k, v in metrics.items() if k.startswith("val_ndcg")), None)
        say(f"epoch {epoch}/{n_epochs}" + (f" validation NDCG {ndcg:.4f}" if ndcg else ""))

    say(f"training {algorithm} on the events before the cut")
    candidate = REGISTRY[algorithm](**params)
    t1 = time.perf_counter()
    candidate.fit(split.train, validation=_validation(split), progress=on_epoch)
    fit_seconds = time.perf_counter() - t1
    heartbeat()
    # Tested as web processes will score it (top-k item-item rows), like the active version.
    results = {**served_metrics(as_served(candidate), split), "fit_seconds": fit_seconds}
    baselines = _baselines(split, say)
    heartbeat()
    active = active_version()
    active_metrics: dict = {}
    if active is not None:
        try:
            active_metrics = score_on_split(load_version(active), split)
        except Exception as exc:  # a broken or unreadable artifact must not block a new model
            logger.warning("could not test the active version %s: %s", active, exc)
            active_metrics = {"untested": str(exc)[:300]}
    version.metrics = {
        "protocol": {
            "name": "temporal",
            "cut": split.cut.isoformat(),
            "window_days": split.window_days,
            "train_users": len(split.train_user_ids),
            "validation_users": split.validation.n_users,
            "test_users": split.test.n_users,
            "items": len(split.item_ids),
            "repeat_share": split.repeat_share("test"),
            "policy": app_settings.EXCLUDE_BOUGHT["for_you"],
        },
        "candidate": results,
        "baselines": baselines,
        "active": None if active is None else {"version": active.pk, **active_metrics},
    }
    version.gate_passed, version.gate_report = gate(version.metrics)
    say(version.gate_report)

    model, item_ids = candidate, split.item_ids
    if cfg["REFIT"]:
        say("refitting on every event up to now (held-out shoppers stay out)")
        model, item_ids = _refit(algorithm, params, frame, split, on_epoch)
        heartbeat()
    report = model.training_report()
    version.training_curve = report.pop("history", [])
    version.metrics["candidate"]["training"] = _jsonable(report)
    version.device = str(model.device_)[:32]
    version.hyperparameters = model.hyperparameters()
    version.n_users, version.n_items = len(split.train_user_ids), len(item_ids)
    version.artifact = save_version_artifacts(version, model, item_ids)
    return version


def temporal_split(frame: pd.DataFrame) -> TemporalSplit:
    """The gate's split of the shop's log, from the settings; NotEnoughData says what's short."""
    cfg = app_settings.TRAINING
    try:
        split = split_temporal(
            frame,
            window_days=cfg["TEST_WINDOW_DAYS"],
            test_fraction=cfg["HOLDOUT_FRACTION"],
            validation_fraction=cfg["HOLDOUT_FRACTION"],
            event_weights=app_settings.EVENT_WEIGHTS,
            half_life_days=cfg["HALF_LIFE_DAYS"],
            salt=cfg["HOLDOUT_SALT"],
        )
    except ValueError as exc:
        raise NotEnoughData(str(exc)) from exc
    if split.test.n_users < MIN_TEST_SHOPPERS or split.validation.n_users < 1:
        raise NotEnoughData(
            f"Not enough held-out shoppers who bought in the last {cfg['TEST_WINDOW_DAYS']} "
            f"days to test a model: {split.test.n_users} test and {split.validation.n_users} "
            f"validation shoppers (at least {MIN_TEST_SHOPPERS} and 1 are needed)."
        )
    return split


def as_served(model: Recommender) -> Recommender | ServedModel:
    """The candidate in the form serving will score (``SERVING_TOP_K``), so the gate compares
    it with the active version on equal terms; the trained model if it has no served form."""
    try:
        return served_form(model, app_settings.SERVING_TOP_K)
    except NotServable:
        return model


def served_metrics(model: Recommender | ServedModel, split: TemporalSplit) -> dict[str, Any]:
    """Test metrics of what "for you" would serve from ``model``: its scores of the test
    shoppers' histories with the placement's exclusion policy applied."""
    held = split.test
    scores = np.asarray(model.score(held.history), dtype=np.float64)
    apply_exclusion(scores, held.bought, held.history, app_settings.EXCLUDE_BOUGHT["for_you"])
    return _metrics(scores, split)


def _metrics(scores: np.ndarray, split: TemporalSplit) -> dict[str, Any]:
    """One flat dict: ``ndcg@20`` ... for the ``all`` task, ``explore_ndcg@20`` ... for
    the new-items task."""
    out: dict[str, Any] = {}
    for task in TASKS:
        prefix = "" if task == "all" else f"{task}_"
        for key, value in temporal_metrics(scores, split.test, task).items():
            out[prefix + key] = float(value) if isinstance(value, float) else value
    return out


def _baselines(split: TemporalSplit, say: Progress) -> dict[str, dict[str, Any]]:
    held = split.test
    out: dict[str, dict[str, Any]] = {}
    for name in app_settings.TRAINING["BASELINES"]:
        say(f"baseline {name}")
        if name == "buy_again":
            scores = buy_again_scores(held, split.recent_popularity)
        elif name == "pop":
            scores = recent_popularity_scores(split, held.n_users)
        else:
            try:
                model = REGISTRY[name]().fit(split.train, validation=_validation(split))
            except CatalogueTooLargeError as exc:
                say(f"{name} refused ({exc}); item-kNN instead")
                name, model = "itemknn", REGISTRY["itemknn"]().fit(split.train)
            scores = model.score(held.history)
        out[name] = _metrics(np.asarray(scores, dtype=np.float64), split)
    return out


def score_on_split(loaded: LoadedVersion, split: TemporalSplit) -> dict[str, Any]:
    """Test an older model on this run's test shoppers, mapping its item columns onto ours.

    Items the old model never saw get no score: that is the honest cost of its age. The
    held-out shoppers are chosen by a stable hash, so the old model never trained on them
    (as long as ``HOLDOUT_FRACTION`` and ``HOLDOUT_SALT`` are unchanged).
    """
    mapping, known, ours_to_old = _column_map(split.item_ids, loaded)
    old_scores = loaded.model.score(sp.csr_matrix(split.test.history @ mapping))
    scores = np.full((split.test.n_users, len(split.item_ids)), -np.inf, dtype=np.float64)
    scores[:, known] = old_scores[:, ours_to_old[known]]
    apply_exclusion(
        scores, split.test.bought, split.test.history, app_settings.EXCLUDE_BOUGHT["for_you"]
    )
    return _metrics(scores, split)


def _column_map(
    item_ids: np.ndarray, loaded: LoadedVersion
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    old_index = loaded.item_index()
    ours_to_old = np.array([old_index.get(int(pk), -1) for pk in item_ids], dtype=np.int64)
    known = np.flatnonzero(ours_to_old >= 0)
    mapping = sp.csr_matrix(
        (np.ones(len(known), np.float32), (known, ours_to_old[known])),
        shape=(len(item_ids), loaded.model.n_items),
    )
    return mapping, known, ours_to_old


def _validation(split: TemporalSplit) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    return split.validation.history, split.validation.truth


def _refit(
    algorithm: str,
    params: dict[str, Any],
    frame: pd.DataFrame,
    split: TemporalSplit,
    on_epoch: Callable[[int, int, dict], None],
) -> tuple[Recommender, np.ndarray]:
    """The same configuration fitted on every training shopper's events up to now, so the
    live model knows this month's items and demand; held-out shoppers never train."""
    cfg = app_settings.TRAINING
    salt, fraction = cfg["HOLDOUT_SALT"], 2 * cfg["HOLDOUT_FRACTION"]
    users = frame["user"].unique()
    held_out = {u for u in users if heldout_bucket(u, salt) < fraction}
    matrix = build_interaction_matrix(
        frame[~frame["user"].isin(held_out)],
        event_weights=app_settings.EVENT_WEIGHTS,
        aggregate="sum",
        half_life_days=cfg["HALF_LIFE_DAYS"],
        now=frame["timestamp"].max(),
    )
    # The validation shoppers, as the gate saw them, over the refit's (wider) columns.
    index = pd.Index(matrix.item_ids).get_indexer(split.item_ids)
    kept = np.flatnonzero(index >= 0)
    widen = sp.csr_matrix(
        (np.ones(len(kept), np.float32), (kept, index[kept])),
        shape=(len(split.item_ids), len(matrix.item_ids)),
    )
    validation = (
        sp.csr_matrix(split.validation.history @ widen),
        sp.csr_matrix(split.validation.truth @ widen),
    )
    model = REGISTRY[algorithm](**params)
    model.fit(matrix.X, validation=validation, progress=on_epoch)
    return model, matrix.item_ids


def _jsonable(value: Any) -> Any:
    """Numbers and containers only (a training report may hold numpy scalars)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)
