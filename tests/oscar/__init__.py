"""A small django-oscar shop with the app installed exactly as docs/oscar.md says.

Run with ``make test-oscar`` (its own virtualenv, ``.venv-oscar``, with django-oscar);
the main suite never collects this folder (see ``tests/conftest.py``).

No Celery app and no Celery settings: a shop without a broker needs none (the app's tasks
run in process).
"""
