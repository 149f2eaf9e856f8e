"""Settings for the crash test's training subprocess: a short lock lease, a slow-enough VAE."""

from shop.settings import *  # noqa: F403
from shop.settings import RECOMMENDATIONS

RECOMMENDATIONS = {
    **RECOMMENDATIONS,
    "TRAINING": {
        "LOCK_TTL": 3,
        "HOLDOUT_FRACTION": 0.15,
        "BASELINES": ["pop"],
        "HYPERPARAMETERS": {
            "epochs": 100000,
            "patience": None,
            "hidden": 64,
            "latent": 16,
            "batch_size": 16,
        },
    },
}
