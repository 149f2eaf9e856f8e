"""Settings of the bench processes: the shop's own, with model artifacts kept apart.

``BENCH_MEDIA_ROOT`` moves MEDIA_ROOT (where model artifacts are stored) into the bench's
scratch folder, so a bench database's ``v1`` never overwrites the demo shop's ``v1``.
Used as ``DJANGO_SETTINGS_MODULE=settings_bench`` with ``bench/`` on PYTHONPATH.
"""

import os
from pathlib import Path

# Bench databases are throwaway: a fixed key, DEBUG as the bench sets it (off by default).
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-secret-" + "b3nch" * 10)

from shop.settings import *  # noqa: F403
from shop.settings import MEDIA_ROOT, RECOMMENDATIONS

MEDIA_ROOT = Path(os.environ.get("BENCH_MEDIA_ROOT") or MEDIA_ROOT)
# bench/serving sends every request from one address: the reads limit stays on (its cache
# round trip is part of what is measured) at a rate the load never reaches.
RECOMMENDATIONS = {**RECOMMENDATIONS, "READS_RATE": "1000000000/s"}
