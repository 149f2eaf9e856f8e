"""The suite's settings: the shop's own, as deployed (DEBUG off), with a throwaway key.

``os.environ`` carries the key, so the processes a test starts (``manage.py`` commands, the
crash test's trainer) start too. CI exports its own ``DJANGO_SECRET_KEY`` for its worker.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-not-secret-" + "k3y" * 16)

from shop.settings import *  # noqa: F403
