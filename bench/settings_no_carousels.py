"""bench/serving's comparison server: the same shop, the product page without carousels.

``BENCH_TEMPLATE_DIR`` holds ``shop/product_detail.html``, written by bench/serving from the
shop's current template with only the recommendation tags removed; it is searched before
the shop's ``templates/``. Everything else (middleware, tracking INSERT per view) is equal.
"""

import copy
import os

from settings_bench import *  # noqa: F403
from settings_bench import TEMPLATES as _TEMPLATES

TEMPLATES = copy.deepcopy(_TEMPLATES)
TEMPLATES[0]["DIRS"] = [os.environ["BENCH_TEMPLATE_DIR"], *TEMPLATES[0]["DIRS"]]
