"""The Oscar shop's Celery app, as docs/oscar.md tells a shop to write it: settings under
``CELERY_``; with no broker, tasks run in the calling process (eager mode)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.oscar.settings")

app = Celery("oscar_shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
