"""The app's settings: one ``RECOMMENDATIONS`` dict over documented defaults.

Read lazily and reset on ``setting_changed`` (the pattern of ``rest_framework.settings``),
so tests can use ``override_settings(RECOMMENDATIONS={...})``::

    from recommendations.conf import app_settings
    app_settings.EVENT_WEIGHTS["purchase"]
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # Dotted path of the adapter class (see adapters.py) that knows the shop's specifics.
    "ADAPTER": "recommendations.adapters.DefaultAdapter",
    # How much each event says about a shopper's taste, for training. 0 ignores the event;
    # a negative weight vetoes: the item leaves that shopper's training row (and fold-in
    # row) whatever else they did with it.
    "EVENT_WEIGHTS": {
        "view": 1.0,
        "add_to_cart": 3.0,
        "remove_from_cart": 0.0,
        "purchase": 5.0,
        "click": 0.0,  # the view that follows a click already counts
        "not_interested": -1.0,  # a dismissed item ("not interested"): a veto
    },
    # Events older than this many days are pruned by recommendations_prune (None keeps all).
    "RETENTION_DAYS": 730,
    # Master switch for tracking: False records nothing at all.
    "TRACKING_ENABLED": True,
    # Requests whose User-Agent matches this (case-insensitive) regex are not recorded.
    "BOT_USER_AGENT_PATTERN": (
        r"bot|crawl|spider|slurp|preview|headless|monitor|curl|wget|python-requests|httpx"
        r"|scrapy|lighthouse|pingdom|facebookexternalhit"
    ),
    # Honour the Global Privacy Control header (Sec-GPC: 1) as an opt-out.
    "HONOR_GLOBAL_PRIVACY_CONTROL": True,
    # The signed cookie that identifies an anonymous visitor, and its lifetime (seconds).
    "VISITOR_COOKIE_NAME": "rec_vid",
    "VISITOR_COOKIE_MAX_AGE": 365 * 24 * 3600,
    # API clients' visitor ids must be ones the server signed (POST .../visitors/); True also
    # accepts bare ids that apps mint themselves, which anyone who learns one can then use.
    "ACCEPT_UNSIGNED_VISITOR_IDS": False,
    # Session key where a visitor's own opt-out choice is kept (see tracking.opt_out()).
    "OPT_OUT_SESSION_KEY": "recommendations_opt_out",
    # Opt-in, as the ePrivacy Directive / GDPR ask in the EU: True sets no visitor cookie,
    # records nothing and shows nothing personal until the shopper consents (tracking.consent).
    "REQUIRE_CONSENT": False,
    # The signed cookie that keeps a browser's choice (consent or opt-out), and its lifetime.
    # Signed-in shoppers' choices are also kept on their account (ShopperConsent).
    "CONSENT_COOKIE_NAME": "rec_consent",
    "CONSENT_COOKIE_MAX_AGE": 365 * 24 * 3600,
    # --- training (tasks.train) --------------------------------------------------------
    "TRAINING": {
        # REGISTRY name of the model to train, and its hyper-parameters over the tuned defaults.
        # next_basket: the shopper's own re-buys, what sells now and a Mult-VAE for new items,
        # blended on held-out shoppers (docs/training.md).
        "ALGORITHM": "next_basket",
        "HYPERPARAMETERS": {},
        # Baselines tested on the same held-out shoppers, for the gate and the admin:
        # buy_again (own items by orders, then recency, then recent best sellers), pop
        # (recent best sellers) and EASE (item-kNN where the catalogue is too large for it).
        "BASELINES": ["buy_again", "pop", "ease"],
        # Only events newer than this many days are used (None: the whole retained log).
        "WINDOW_DAYS": None,
        # Exponential time decay of event weights, in days (None: no decay). 30 was best on
        # online-retail's validation shoppers (bench/results/ml_experiments_temporal.md).
        "HALF_LIFE_DAYS": 30.0,
        # The temporal test: history before now minus this many days, truth = what the
        # held-out shoppers bought since.
        "TEST_WINDOW_DAYS": 30,
        # Share of shoppers held out for testing, and as many again for validation, chosen by
        # a stable hash of their id (and this salt): no version ever trains on them.
        "HOLDOUT_FRACTION": 0.1,
        "HOLDOUT_SALT": "",
        # Refit the version that goes live on every event up to now (held-out shoppers stay
        # out) after the gate tested it on the events before the cut.
        "REFIT": True,
        # The random ("strong generalisation") protocol of recommendations_evaluate.
        "MIN_ITEMS_PER_USER": 5,
        "SEED": 0,
        # The training lock's lease (seconds); renewed every epoch, so a dead worker's expires.
        "LOCK_TTL": 600,
        # How long a queued training waits between tries while another one runs (seconds).
        "RETRY_COUNTDOWN": 15,
    },
    # Where the app's Celery tasks (training, then scoring related items and activation)
    # run: "auto" sends them to the broker when Celery has one (CELERY_BROKER_URL) and runs
    # them in the calling process when it has none or runs tasks eagerly; True always runs
    # them in process, False always sends them (system check W003 warns without a broker).
    "TASKS_IN_PROCESS": "auto",
    # --- the activation gate (learning/gate.py) -------------------------------------------
    "GATE": {
        # Test metric the gate compares: NDCG@20 of what "for you" serves, on the temporal
        # test (repeats included; explore_ndcg@20 is new items only).
        "METRIC": "ndcg@20",
        # The new model must beat the best baseline by this relative margin (0 = beat it).
        "MIN_LIFT_OVER_BASELINES": 0.0,
        # ... and may not fall below the active version, measured on the same held-out
        # shoppers, by more than this (training noise).
        "MAX_DROP_FROM_ACTIVE": 0.02,
    },
    # --- shopper insights (learning/insights.py) -------------------------------------------
    "INSIGHTS": {
        # Churn risk = P(no purchase in the next HORIZON_DAYS); MODEL "ensemble" (mean of
        # "gbm" and "logit"; the best AUC on online-retail), "gbm", "logit" or "bgnbd".
        "HORIZON_DAYS": 90,
        "MODEL": "ensemble",
        # Below this many customers the classifiers have too little to learn from (they
        # predict the base rate for everyone): BG/NBD scores instead.
        "GBM_MIN_CUSTOMERS": 500,
    },
    # --- related items (tasks.score_similarity) ----------------------------------------
    "RELATED_ITEMS_K": 20,
    # "Bought together": partners in at least MIN_SUPPORT orders, ranked by METHOD
    # ("shrunk_lift": lift pulled toward 1 by PRIOR pseudo-orders; "count", "lift",
    # "confidence_lcb"); with HALF_LIFE_DAYS an order's weight halves every that many days.
    "BOUGHT_TOGETHER": {
        "METHOD": "shrunk_lift",
        "MIN_SUPPORT": 2,
        "PRIOR": 50.0,
        "HALF_LIFE_DAYS": None,
    },
    # --- serving (services.py) ------------------------------------------------------------
    # How many of a visitor's latest events are folded into the model for "for you".
    "FOLD_IN_EVENTS": 50,
    # What a placement may show a shopper again, by placement or by list: "none" (re-buys
    # allowed, ranked as the model ranks them), "purchased" (hide what they bought), "seen"
    # (hide everything in their history). "Buy it again" shows only what they bought. These
    # are ml.policy.PLACEMENT_DEFAULTS (a test holds them equal); docs/serving.md has the table.
    "EXCLUDE_BOUGHT": {
        "for_you": "none",
        "similar": "purchased",
        "bought_together": "purchased",
        "trending": "purchased",
        "popular": "none",
        "recently_viewed": "none",
    },
    # Optional re-ranking for variety, per placement (off by default: no placement named):
    # {"for_you": {"METHOD": "mmr", "LAMBDA": 0.9}} (maximal marginal relevance; 1 keeps the
    # order, lower trades relevance for variety; SIMILARITY "model" item vectors or
    # "category"; CANDIDATES x k items re-ranked), {"METHOD": "category_cap", "CAP": 2}, or
    # {"METHOD": "popularity", "WEIGHT": 0.5} (best sellers give way to less-known items
    # ranked just below them: more of the catalogue across shoppers' lists).
    # See serving/diversity.py and docs/serving.md ("Diversity") for the measured trade-off.
    "DIVERSITY": {},
    # Default carousel length.
    "CAROUSEL_SIZE": 12,
    # Seconds a visitor's "for you" list is cached (invalidated at once when they act).
    "VISITOR_CACHE_SECONDS": 300,
    # Seconds popular / trending lists and related lists are cached.
    "LIST_CACHE_SECONDS": 600,
    # How long a catalogue epoch lives: how long a process with a per-process cache may show
    # an item's old name or price after a change that sent no signal (serving/catalogue.py).
    "CATALOGUE_CACHE_SECONDS": 300,
    # Catalogues up to this size are loaded whole into each process's item cache (0: never).
    "PREWARM_ITEMS": 10_000,
    # Days counted by popular(), and by the recent side of trending().
    "POPULAR_WINDOW_DAYS": 30,
    "TRENDING_WINDOW_DAYS": 7,
    # Dotted path of the DRF serializer for items in API responses (None: the adapter's payload).
    "ITEM_SERIALIZER": None,
    # Most events one POST to the events endpoint may carry, and its rate (POSTs) per
    # signed-in user, else per client address (a visitor_id is the client's own claim).
    "MAX_EVENTS_PER_REQUEST": 100,
    "EVENTS_RATE": "120/min",
    # Reads of the list endpoints per signed-in user, else per client address (each read
    # logs impressions); None switches the limit off.
    "READS_RATE": "1200/min",
    # New visitor ids per client address a minute (POST .../visitors/).
    "VISITORS_RATE": "30/min",
    # --- operations (rules.py, experiments.py, impressions.py, dashboard.py) -------------
    # A purchase of a clicked item by the same shopper within this many hours is attributed.
    "ATTRIBUTION_WINDOW_HOURS": 24,
    # Seconds merchandising rules, hand-made related lists and running experiments are
    # cached (a save or delete drops them at once; this bounds staleness in other processes).
    "RULES_CACHE_SECONDS": 60,
    "EXPERIMENTS_CACHE_SECONDS": 60,
    # Log which items each carousel showed (one bulk INSERT per page, after the response),
    # written when this many rows wait in a process, or the oldest waited this many seconds.
    "IMPRESSIONS_ENABLED": True,
    "IMPRESSIONS_FLUSH_ROWS": 200,
    "IMPRESSIONS_FLUSH_SECONDS": 1.0,
    # --- exploration (serving/exploration.py) ----------------------------------------------
    # A share of each list's positions (0 to 1; 0 = off) goes to visible items shown fewer
    # than MAX_IMPRESSIONS times, picked by Thompson sampling on their clicks and impressions
    # (Beta(clicks + 1, impressions - clicks + 1)). PLACEMENTS overrides SHARE per placement
    # ({"for_you": 0.25}); an A/B variant's exploration_share overrides both. Counts come from
    # the latest SAMPLE impressions of the last WINDOW_DAYS, refreshed every CACHE_SECONDS;
    # at most MAX_CANDIDATES items (a random subset of the rest) are sampled per request.
    "EXPLORATION": {
        "SHARE": 0.0,
        "PLACEMENTS": {},
        "MAX_IMPRESSIONS": 100,
        "WINDOW_DAYS": 30,
        "SAMPLE": 50_000,
        "MAX_CANDIDATES": 2_000,
        "CACHE_SECONDS": 600,
    },
    # --- buffered ingestion (buffer.py) ---------------------------------------------------
    # For busy shops: record() appends to a Redis list and tasks.flush_buffer writes in bulk.
    # If Redis is down, events are written directly: nothing is lost.
    "BUFFER": {
        "ENABLED": False,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "KEY": "recommendations:events",
    },
    # Where artifacts are kept: a STORAGES alias, and the folder inside it.
    "ARTIFACT_STORAGE": "default",
    "ARTIFACT_PREFIX": "recommendations/models",
    # --- served models (learning/versions.py, ml/serving_model.py) -------------------------
    # A local folder where each machine keeps the served form of a version as .npy files
    # that every worker maps read-only (one shared copy); None: a folder in the system's
    # temporary directory. Derived data: it may be deleted at any time.
    "SERVING_CACHE_DIR": None,
    # Entries kept per row of a dense item-item term (EASE, the VAE's EASE part) when it is
    # served: memory O(items x k) instead of items^2; None serves it dense (exact). The
    # NDCG@20 cost is in bench/results/serving_topk.md.
    "SERVING_TOP_K": 64,
    # Big catalogues (ml/ann.py): a VAE-based version of at least MIN_ITEMS items gets an
    # approximate nearest-neighbour index (usearch HNSW) in its served form; "for you"
    # then scores the index's CANDIDATES best items (plus the shopper's own items, the EASE
    # term's and the most popular) instead of every item, searching with beam EF. Below
    # MIN_ITEMS (or None) every item is scored, exactly. Chosen in bench/results/scale.json.
    "ANN": {"MIN_ITEMS": 50_000, "CANDIDATES": 200, "EF": 256},
}


#: What one ``DIVERSITY`` entry may say besides ``METHOD`` (serving/diversity.py), and defaults.
DIVERSITY_DEFAULTS: dict[str, Any] = {
    "LAMBDA": 0.9,
    "CAP": 2,
    "SIMILARITY": "model",
    "CANDIDATES": 3,
    "WEIGHT": 0.5,
}
DIVERSITY_METHODS = ("mmr", "category_cap", "popularity")
DIVERSITY_SIMILARITIES = ("model", "category")

#: Dict settings whose keys are the shop's own (event types, placements), not ours.
OPEN_DICTS = frozenset({"EVENT_WEIGHTS", "EXCLUDE_BOUGHT", "DIVERSITY"})


class AppSettings:
    """Attribute access to ``settings.RECOMMENDATIONS`` merged over ``DEFAULTS``."""

    def __init__(self) -> None:
        self._cached: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, "RECOMMENDATIONS", {}) or {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid RECOMMENDATIONS setting: {name!r}")
        if name not in self._cached:
            value = self.user_settings.get(name, DEFAULTS[name])
            if isinstance(DEFAULTS[name], dict) and isinstance(value, dict):
                value = {**DEFAULTS[name], **value}
            self._cached[name] = value
        return self._cached[name]

    def reload(self) -> None:
        self._cached.clear()


app_settings = AppSettings()


def get_item_model():
    """The model that ``RECOMMENDATIONS_ITEM_MODEL`` names, like ``get_user_model()``."""
    from django.apps import apps

    return apps.get_model(settings.RECOMMENDATIONS_ITEM_MODEL, require_ready=False)


def import_from_setting(name: str) -> Any:
    """The object a dotted-path setting names (``ADAPTER``, ``ITEM_SERIALIZER``), imported
    once per path: the one place where the app resolves a dotted path. None for None."""
    path = getattr(app_settings, name)
    return import_path(path) if path else None


@lru_cache(maxsize=16)
def import_path(path: str) -> Any:
    """The object a dotted path names, imported once."""
    return import_string(path)


def unknown_keys() -> list[str]:
    """``RECOMMENDATIONS`` keys (and keys of its nested dicts) that :data:`DEFAULTS` does not
    declare: a typo there would otherwise be silently ignored. Reported by a system check."""
    unknown = []
    for key, value in app_settings.user_settings.items():
        if key not in DEFAULTS:
            unknown.append(key)
        elif isinstance(DEFAULTS[key], dict) and isinstance(value, dict) and key not in OPEN_DICTS:
            unknown += [f"{key}.{sub}" for sub in value if sub not in DEFAULTS[key]]
    return unknown


def diversity_errors() -> list[str]:
    """What is wrong with ``RECOMMENDATIONS["DIVERSITY"]`` (a system check reports it)."""
    errors = []
    for placement, entry in app_settings.DIVERSITY.items():
        where = f"RECOMMENDATIONS['DIVERSITY'][{placement!r}]"
        if not isinstance(entry, dict):
            errors.append(f"{where} must be a dict, e.g. {{'METHOD': 'mmr', 'LAMBDA': 0.9}}.")
            continue
        known = {"METHOD", *DIVERSITY_DEFAULTS}
        if unknown := sorted(set(entry) - known):
            errors.append(f"{where} has unknown keys {unknown}; known: {sorted(known)}.")
        cfg = {**DIVERSITY_DEFAULTS, **entry}
        if entry.get("METHOD") not in (*DIVERSITY_METHODS, None):
            errors.append(f"{where}['METHOD'] must be one of {DIVERSITY_METHODS} (or None: off).")
        lam = cfg["LAMBDA"]
        if not isinstance(lam, (int, float)) or not 0 <= lam <= 1:
            errors.append(f"{where}['LAMBDA'] must be a number within [0, 1].")
        if not isinstance(cfg["CAP"], int) or cfg["CAP"] < 1:
            errors.append(f"{where}['CAP'] must be an integer >= 1.")
        if cfg["SIMILARITY"] not in DIVERSITY_SIMILARITIES:
            errors.append(f"{where}['SIMILARITY'] must be one of {DIVERSITY_SIMILARITIES}.")
        weight = cfg["WEIGHT"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            errors.append(f"{where}['WEIGHT'] must be a number >= 0.")
        if not isinstance(cfg["CANDIDATES"], int) or cfg["CANDIDATES"] < 1:
            errors.append(f"{where}['CANDIDATES'] must be an integer >= 1 (times k).")
    return errors


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in ("RECOMMENDATIONS", "RECOMMENDATIONS_ITEM_MODEL"):
        app_settings.reload()


setting_changed.connect(_reload, dispatch_uid="recommendations.conf.reload")
