"""The default Celery beat schedule; a shop merges it into ``CELERY_BEAT_SCHEDULE``.

    from recommendations.learning.schedules import beat_schedule
    CELERY_BEAT_SCHEDULE = {**beat_schedule(), **my_own_entries}

Related items are not scheduled: ``train`` queues ``score_similarity`` itself after each
successful training, so lists and model always belong to the same version. Between
trainings, ``refresh`` (every 15 minutes by default; ``beat_schedule(refresh=crontab(...))``
or a number of seconds) updates the active version's bought-together lists, the similar
lists of new items and the popular and trending caches from the latest events
(``learning/refresh.py``).
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

#: How often the refresh between trainings runs by default (seconds).
REFRESH_EVERY_SECONDS = 15 * 60.0


def beat_schedule(
    train: crontab | None = None,
    prune: crontab | None = None,
    insights: crontab | None = None,
    refresh: crontab | float | None = None,
) -> dict[str, Any]:
    """Nightly training (03:00), customer insights (04:00), retention pruning (04:30) and the
    refresh between trainings (every :data:`REFRESH_EVERY_SECONDS`), each overridable."""
    return {
        "recommendations-refresh": {
            "task": "recommendations.tasks.refresh",
            "schedule": refresh or REFRESH_EVERY_SECONDS,
        },
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
