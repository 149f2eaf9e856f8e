"""The shop's log as a model sees it: one builder for training, evaluation and the gate.

Event weights and time decay come from the settings here and nowhere else, so a setting
that the docs say changes a model changes every place that builds its input.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from django.utils import timezone

from ..conf import app_settings
from ..ml.data import InteractionMatrix, build_interaction_matrix
from .extract import extract_log


def training_log() -> pd.DataFrame:
    """The events training reads: the whole retained log, or its last ``WINDOW_DAYS``."""
    days = app_settings.TRAINING["WINDOW_DAYS"]
    return extract_log(since=timezone.now() - timedelta(days=days) if days else None)


def interaction_matrix(frame: pd.DataFrame) -> InteractionMatrix:
    """``frame`` weighted by ``EVENT_WEIGHTS`` and decayed by ``TRAINING["HALF_LIFE_DAYS"]``."""
    return build_interaction_matrix(
        frame,
        event_weights=app_settings.EVENT_WEIGHTS,
        half_life_days=app_settings.TRAINING["HALF_LIFE_DAYS"],
    )
