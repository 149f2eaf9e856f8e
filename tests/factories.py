"""Small factories: explicit functions, so a test reads what it builds."""

from __future__ import annotations

import itertools
from decimal import Decimal

from django.contrib.auth import get_user_model

from shop.models import Category, Product

_seq = itertools.count(1)

#: RECOMMENDATIONS for tests that train on :func:`clustered_log`: a quick gate, 5 related.
TRAINED_SETTINGS = {
    "TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]},
    "RELATED_ITEMS_K": 5,
}
#: A browser's User-Agent: bots are neither tracked nor shown personal lists.
BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/130.0"}


def category(name: str | None = None) -> Category:
    n = next(_seq)
    name = name or f"Category {n}"
    return Category.objects.create(name=name, slug=f"category-{n}")


def product(**fields) -> Product:
    n = next(_seq)
    defaults = {
        "sku": f"SKU{n:05d}",
        "name": f"PRODUCT {n}",
        "price": Decimal("2.50"),
        "stock": 10,
        "is_active": True,
    }
    defaults.update(fields)
    return Product.objects.create(**defaults)


def user(username: str | None = None, password: str = "correct-horse-battery", **fields):
    n = next(_seq)
    return get_user_model().objects.create_user(
        username=username or f"user{n}", password=password, **fields
    )


def visitor_token(visitor_id: str) -> str:
    """What an API client sends for ``visitor_id``: the id as POST .../visitors/ signs it."""
    from recommendations.tracking import visitors

    return visitors.sign(visitor_id)


def log_reader(**fields):
    """Staff who may view the interaction log (``recommendations.view_interaction``)."""
    from django.contrib.auth.models import Permission

    staff = user(is_staff=True, **fields)
    staff.user_permissions.add(
        Permission.objects.get(
            codename="view_interaction", content_type__app_label="recommendations"
        )
    )
    return staff


def clustered_log(n_users: int = 160, n_items: int = 40, clusters: int = 4, seed: int = 0):
    """A log with real structure: each shopper buys 6-9 items of one cluster of products,
    in baskets of three (one timestamp per basket), 40 days apart, the last basket 10-17
    days ago: the temporal test (a 30-day window) sees every shopper's history and next
    basket. Returns the products."""
    import random
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from recommendations.models import Interaction

    rng = random.Random(seed)
    shelf = category()
    items = [
        product(category=shelf, name=f"CLUSTER {i % clusters} ITEM {i}") for i in range(n_items)
    ]
    last_basket = timezone.now() - timedelta(days=17)
    rows = []
    for u in range(n_users):
        cluster = [p for i, p in enumerate(items) if i % clusters == u % clusters]
        bought = rng.sample(cluster, rng.randint(6, min(9, len(cluster))))
        baskets = (len(bought) + 2) // 3
        for b, p in enumerate(bought):
            days_before_last = 40 * (baskets - 1 - b // 3)
            when = last_basket + timedelta(hours=u) - timedelta(days=days_before_last)
            rows.append(
                Interaction(  # what the shop's server recorded: a verified purchase
                    visitor_id=f"visitor-{u}",
                    item=p,
                    event="purchase",
                    client_event_id=f"server:{uuid.uuid4().hex}",
                    created_at=when,
                )
            )
            rows.append(
                Interaction(
                    visitor_id=f"visitor-{u}",
                    item=p,
                    event="view",
                    created_at=when - timedelta(minutes=5),
                )
            )
    Interaction.objects.bulk_create(rows)
    return items


def trained_version(algorithm: str = "ease", hyperparameters: dict | None = None):
    """Train and activate a version on whatever log the test made (EASE: fast, exact)."""
    from recommendations.learning.tasks import queue_training

    params = hyperparameters if hyperparameters is not None else {"l2": 10.0}
    version = queue_training(algorithm=algorithm, hyperparameters=params, force_activate=True)
    version.refresh_from_db()
    assert version.is_active, version.error
    return version
