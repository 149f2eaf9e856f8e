"""The shop's Celery application.

With no ``CELERY_BROKER_URL`` in the environment, tasks run eagerly in the calling
process (the embedded default: nothing else to start). With one set (Redis, or
RabbitMQ), ``celery -A shop worker`` runs them.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
