"""Trained on the Oscar shop's log, served on Oscar's product pages and the API: Oscar's
prices and currency, only what Oscar would sell, rules on every category of a product."""

import random
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from recommendations.models import MerchandisingRule, ModelVersion
from recommendations.tracking.recording import record_many

from .conftest import BROWSER, Shopper, StockRecord

pytestmark = pytest.mark.django_db(transaction=True)

CLUSTERS = {
    "mugs": ["USB mug warmer for iPhone fans", "Blue enamel mug", "Red enamel mug",
             "Espresso cup set"],
    "kitchen": ["Tea towel", "Wooden spoon", "Oven glove"],
    "toys": ["Rubber duck", "Spinning top", "Kite"],
}
SETTINGS = {
    "ADAPTER": "recommendations.contrib.oscar.adapter.OscarAdapter",
    "TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]},
    "RELATED_ITEMS_K": 5,
    "BOUGHT_TOGETHER": {"MIN_SUPPORT": 1},
}


def _history(shop, shoppers: int = 60) -> None:
    """Months of earlier orders: each shopper buys within one shelf, two or three baskets
    40 days apart (the temporal test sees history and a next basket)."""
    rng = random.Random(0)
    last = timezone.now() - timedelta(days=15)
    rows = []
    for n in range(shoppers):
        shelf = [shop[title] for title in list(CLUSTERS.values())[n % 3]]
        bought = rng.sample(shelf, 3)
        for b, product in enumerate(bought):
            when = last + timedelta(hours=n) - timedelta(days=40 * (len(bought) - 1 - b))
            for event in ("view", "purchase"):
                rows.append({"event": event, "item": product, "visitor_id": f"past-{n}",
                             "created_at": when, "value": Decimal("5") if event == "purchase"
                             else None})
    result = record_many(rows, defer=False)
    assert not result.rejected, result.rejected[:3]


@pytest.fixture
def trained(shop):
    """The shop's log trained with the command a shop runs (no broker: all in process)."""
    with override_settings(RECOMMENDATIONS=SETTINGS):
        _history(shop)
        call_command("recommendations_train", "--algorithm", "ease", "--force-activate")
        version = ModelVersion.objects.get()
        assert version.status == "succeeded" and version.is_active, version.error
        yield shop


def _related(client: Client, product) -> list[dict]:
    response = client.get(f"/api/recommendations/items/{product.pk}/related/")
    assert response.status_code == 200, response.content[:300]
    return [row["item"] for row in response.json()["results"]]


def test_the_product_page_shows_carousels_with_oscars_prices(trained):
    shopper = Shopper()
    html = shopper.view(trained["Blue enamel mug"])
    carousel = html[html.index('class="rec-carousel"'):]
    names = re.findall(r'<span class="rec-name">([^<]*)</span>', carousel)
    assert "USB mug warmer for iPhone fans" in names  # as Oscar names it: no case changes
    warmer = carousel.index("USB mug warmer for iPhone fans")
    assert re.search(r'rec-price">€7\.50<', carousel[warmer:warmer + 400])
    assert "£" not in carousel
    assert not {"hidden: unpublished mug", "hidden: sold-out mug"} & set(names)


def test_related_lists_in_the_api_hold_oscar_payloads_of_sellable_products(trained):
    items = _related(Client(HTTP_USER_AGENT=BROWSER), trained["Red enamel mug"])
    names = [item["name"] for item in items]
    # the model's neighbours first (the other mugs), then best sellers fill the carousel
    assert set(names[:3]) == set(CLUSTERS["mugs"]) - {"Red enamel mug"}
    assert not [name for name in names if name.startswith("hidden")]
    warmer = next(item for item in items if item["name"].startswith("USB"))
    assert (warmer["price"], warmer["currency"]) == ("7.50", "EUR")
    assert warmer["url"] == trained["USB mug warmer for iPhone fans"].get_absolute_url()
    assert warmer["categories"] == ["Mugs", "Toys"]


def test_a_stock_record_change_is_served_at_once(trained):
    client = Client(HTTP_USER_AGENT=BROWSER)
    mug = trained["Red enamel mug"]
    warmer = trained["USB mug warmer for iPhone fans"]
    assert any(item["id"] == warmer.pk for item in _related(client, mug))  # now cached
    record = StockRecord.objects.get(product=warmer)
    record.price = Decimal("6.25")
    record.save()  # what Oscar's dashboard does
    payload = next(item for item in _related(client, mug) if item["id"] == warmer.pk)
    assert payload["price"] == "6.25"
    record.num_allocated = record.num_in_stock  # sold out: all of it allocated to orders
    record.save()
    assert warmer.pk not in {item["id"] for item in _related(client, mug)}
    html = Shopper().view(trained["Blue enamel mug"])
    assert "USB mug warmer" not in html[html.index('class="rec-carousel"'):]


def test_excluding_a_category_removes_products_in_any_of_their_categories(trained):
    """The mug warmer is in "Mugs" and "Toys": excluding "Toys" removes it from mug lists."""
    client = Client(HTTP_USER_AGENT=BROWSER)
    mug = trained["Blue enamel mug"]
    warmer = trained["USB mug warmer for iPhone fans"]
    assert warmer.pk in {item["id"] for item in _related(client, mug)}
    MerchandisingRule.objects.create(
        name="No toys", kind="exclude", category=str(trained.categories["Toys"].pk)
    )
    ids = {item["id"] for item in _related(client, mug)}
    assert ids and warmer.pk not in ids


def test_popular_by_category_counts_every_category_of_a_product(trained):
    client = Client(HTTP_USER_AGENT=BROWSER)
    toys = trained.categories["Toys"].pk
    response = client.get("/api/recommendations/popular/", {"category": toys})
    assert response.status_code == 200
    names = {row["item"]["name"] for row in response.json()["results"]}
    assert "USB mug warmer for iPhone fans" in names and "Kite" in names
    assert "Tea towel" not in names
