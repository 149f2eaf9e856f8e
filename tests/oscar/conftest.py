"""A small euro Oscar shop (real Oscar models, views and checkout) and a shopper who goes
through it with Django's test client."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from oscar.core.loading import get_model

Category = get_model("catalogue", "Category")
Product = get_model("catalogue", "Product")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductClass = get_model("catalogue", "ProductClass")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")
Country = get_model("address", "Country")

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


@pytest.fixture(autouse=True, scope="session")
def _temporary_media_root():
    """Thumbnails and trained models go to a folder removed at the end."""
    path = tempfile.mkdtemp(prefix="recommendations-oscar-media-")
    with override_settings(MEDIA_ROOT=path):
        yield
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@dataclass
class Shop:
    """The catalogue: visible products by name, plus the ones a shopper must never see."""

    products: dict[str, object] = field(default_factory=dict)
    categories: dict[str, object] = field(default_factory=dict)
    partner: object = None

    def __getitem__(self, name: str):
        return self.products[name]

    def visible(self) -> list:
        return [p for name, p in self.products.items() if not name.startswith("hidden")]


CATALOGUE = [
    # title, price, stock, categories
    ("USB mug warmer for iPhone fans", "7.50", 20, ["Mugs", "Toys"]),
    ("Blue enamel mug", "9.00", 20, ["Mugs"]),
    ("Red enamel mug", "9.00", 20, ["Mugs"]),
    ("Espresso cup set", "14.25", 20, ["Mugs", "Kitchen"]),
    ("Tea towel", "4.00", 20, ["Kitchen"]),
    ("Wooden spoon", "3.20", 20, ["Kitchen"]),
    ("Oven glove", "6.80", 20, ["Kitchen"]),
    ("Rubber duck", "2.50", 20, ["Toys"]),
    ("Spinning top", "3.75", 20, ["Toys"]),
    ("Kite", "12.00", 20, ["Toys"]),
]


@pytest.fixture
def shop(db) -> Shop:
    """Ten public products in stock, priced in euros, some in two categories; one product
    that is not public and one that is sold out (all its stock allocated to orders)."""
    Country.objects.create(
        iso_3166_1_a2="NL",
        iso_3166_1_a3="NLD",
        iso_3166_1_numeric="528",
        printable_name="Netherlands",
        name="Kingdom of the Netherlands",
        is_shipping_country=True,
    )
    kind = ProductClass.objects.create(name="Homeware", slug="homeware", track_stock=True)
    shop = Shop(partner=Partner.objects.create(name="Warehouse"))
    rows = [
        *CATALOGUE,
        ("hidden: unpublished mug", "5.00", 20, ["Mugs"]),
        ("hidden: sold-out mug", "5.00", 3, ["Mugs"]),
    ]
    for n, (title, price, stock, category_names) in enumerate(rows):
        product = Product.objects.create(
            title=title,
            upc=f"UPC{n:03d}",
            product_class=kind,
            structure=Product.STANDALONE,
            is_public=not title.startswith("hidden: unpublished"),
        )
        for name in category_names:
            if name not in shop.categories:
                shop.categories[name] = Category.add_root(name=name)
            ProductCategory.objects.create(product=product, category=shop.categories[name])
        StockRecord.objects.create(
            product=product,
            partner=shop.partner,
            partner_sku=f"SKU{n:03d}",
            price_currency="EUR",
            price=Decimal(price),
            num_in_stock=stock,
            num_allocated=stock if title.startswith("hidden: sold-out") else 0,
        )
        shop.products[title] = product
    return shop


class Shopper:
    """One visitor with a browser: every step goes through Oscar's own URLs and views."""

    def __init__(self, user=None) -> None:
        self.client = Client(HTTP_USER_AGENT=BROWSER)
        self.user = user
        if user is not None:
            self.client.force_login(user)

    def view(self, product, **params) -> str:
        response = self.client.get(product.get_absolute_url(), params)
        assert response.status_code == 200, response.status_code
        return response.content.decode()

    def add_to_basket(self, product, quantity: int = 1) -> None:
        response = self.client.post(
            reverse("basket:add", kwargs={"pk": product.pk}), {"quantity": quantity}
        )
        assert response.status_code == 302, response.content[:500]

    def checkout(self, guest_email: str | None = None):
        """Oscar's checkout from the gateway to the thank-you page; returns the order."""
        c = self.client
        if guest_email is not None:
            response = c.post(
                reverse("checkout:index"), {"username": guest_email, "options": "anonymous"}
            )
            assert response.status_code == 302, response.content[:2000]
        response = c.post(
            reverse("checkout:shipping-address"),
            {
                "first_name": "Sam",
                "last_name": "Jansen",
                "line1": "Damrak 1",
                "line4": "Amsterdam",
                "postcode": "1012 LG",
            },
        )
        assert response.status_code == 302, response.content[:2000]
        # One shipping method and no payment step: Oscar skips on to the preview.
        response = c.get(reverse("checkout:shipping-method"), follow=True)
        assert response.status_code == 200
        response = c.post(reverse("checkout:preview"), {"action": "place_order"})
        assert response.status_code == 302, _error(response)
        assert response.url == reverse("checkout:thank-you"), response.url
        order_id = c.session["checkout_order_id"]
        return get_model("order", "Order").objects.get(pk=order_id)


def _error(response) -> str:
    """The message Oscar's preview page shows when placing an order failed."""
    text = response.content.decode()
    start = text.find("alert-danger")
    return text[start : start + 400] if start >= 0 else text[:400]
