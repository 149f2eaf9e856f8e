"""Settings of the fault-injection bench's processes: the shop's own, plus what the bench
switches with environment variables (set by ``bench/faults/run.py``, never by hand):

- ``FAULTS_BUFFER=1`` and ``FAULTS_BUFFER_URL``: the Redis event buffer on (its own db);
- ``FAULTS_LOCK_TTL``: the training lease, shorter than the 600 s default so that a killed
  worker's lease expires within the run (the report says what the default would give);
- ``FAULTS_VISIBILITY_TIMEOUT``: Celery's Redis ``visibility_timeout`` (default one hour);
- ``FAULTS_EPOCHS``: VAE epochs, so that training a small slice takes seconds;
- ``FAULTS_DUMMY_CACHE=1``: no cache in the probe, so every read reflects the database now.

Persistent database connections with health checks, as a production web server has them
(``CONN_MAX_AGE`` + ``CONN_HEALTH_CHECKS``): a connection broken by a PostgreSQL restart is
replaced at the next request instead of failing every later one.
"""

import os

from shop.settings import *  # noqa: F403
from shop.settings import DATABASES, RECOMMENDATIONS

DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

_training = {
    "LOCK_TTL": int(os.environ.get("FAULTS_LOCK_TTL", "600")),
    "RETRY_COUNTDOWN": 5,
    # The demo slice spans a few weeks: test on its last week, not the default 30 days.
    "TEST_WINDOW_DAYS": int(os.environ.get("FAULTS_TEST_WINDOW_DAYS", "7")),
}
if os.environ.get("FAULTS_EPOCHS"):
    _training["HYPERPARAMETERS"] = {"epochs": int(os.environ["FAULTS_EPOCHS"])}

RECOMMENDATIONS = {
    **RECOMMENDATIONS,
    "TRAINING": _training,
    "BUFFER": {
        "ENABLED": os.environ.get("FAULTS_BUFFER") == "1",
        "REDIS_URL": os.environ.get("FAULTS_BUFFER_URL", "redis://127.0.0.1:6390/1"),
    },
    "READS_RATE": None,
    "IMPRESSIONS_ENABLED": os.environ.get("FAULTS_DUMMY_CACHE") != "1",
}

if os.environ.get("FAULTS_VISIBILITY_TIMEOUT"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ["FAULTS_VISIBILITY_TIMEOUT"])
    }

if os.environ.get("FAULTS_DUMMY_CACHE") == "1":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("FAULTS_LOG_LEVEL", "WARNING")},
}
