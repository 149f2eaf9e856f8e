"""Small factories: explicit functions, so a test reads what it builds."""

from __future__ import annotations

import itertools
from decimal import Decimal

from django.contrib.auth import get_user_model

from shop.models import Category, Product

_seq = itertools.count(1)


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
