"""The default Celery beat schedule; a shop merges it into ``CELERY_BEAT_SCHEDULE``.

    from recommendations.learning.schedules import beat_schedule
    CELERY_BEAT_SCHEDULE = {**beat_schedule(), **my_own_entries}

Related items are not scheduled: ``train`` queues ``score_similarity`` itself after each
successful training, so lists and model always belong to the same version.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab


def beat_schedule(
    train: crontab | None = None,
    prune: crontab | None = None,
    insights: crontab | None = None,
) -> dict[str, Any]:
    """Nightly training (03:00), customer insights (04:00) and retention pruning (04:30),
    each overridable."""
    return {
        "recommendations-train-nightly": {
            "task": "recommendations.tasks.train_nightly",
            "schedule": train or crontab(hour=3, minute=0),
        },
        # Flushes the optional Redis event buffer; a no-op when it is off.
        "recommendations-flush-buffer": {
            "task": "recommendations.tasks.flush_buffer",
            "schedule": 10.0,
        },
        "recommendations-score-customers": {
            "task": "recommendations.tasks.score_customers",
            "schedule": insights or crontab(hour=4, minute=0),
        },
        "recommendations-prune-interactions": {
            "task": "recommendations.tasks.prune_interactions",
            "schedule": prune or crontab(hour=4, minute=30),
        },
    }
