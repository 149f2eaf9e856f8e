"""A small django-oscar shop with the app installed exactly as docs/oscar.md says.

Run with ``make test-oscar`` (its own virtualenv, ``.venv-oscar``, with django-oscar);
the main suite never collects this folder (see ``tests/conftest.py``).
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
