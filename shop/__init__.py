"""The demo shop: a small real store that uses `recommendations` as any shop would."""

from .celery import app as celery_app

__all__ = ["celery_app"]
