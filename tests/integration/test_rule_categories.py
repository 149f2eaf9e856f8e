"""Rules name their categories: the adapter's ``category_name``, the rules list, the preview."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from recommendations.adapters import DefaultAdapter, get_adapter
from recommendations.models import MerchandisingRule
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


class NoCategoryRelation(DefaultAdapter):
    category_field = "sku"  # a plain text field: nothing to name a category by


def test_the_adapter_names_a_category_by_its_key():
    mugs = factories.category("Mugs")
    adapter = get_adapter()
    assert adapter.category_name(mugs.pk) == "Mugs"
    assert adapter.category_name(str(mugs.pk)) == "Mugs"  # rules store the key as text
    assert adapter.category_names([str(mugs.pk), "999999", "abc", ""]) == {str(mugs.pk): "Mugs"}
    # Unknown keys, keys of the wrong type and no category at all: the key itself.
    assert adapter.category_name("999999") == "999999"
    assert adapter.category_name("abc") == "abc"
    assert adapter.category_name(None) == ""
    assert NoCategoryRelation().category_name(str(mugs.pk)) == str(mugs.pk)


def test_the_rules_list_and_preview_show_category_names(admin_client):
    mugs, toys = factories.category("Mugs"), factories.category("Toys")
    item = factories.product(category=mugs)
    MerchandisingRule.objects.create(name="No toys", kind="exclude", category=str(toys.pk))
    MerchandisingRule.objects.create(
        name="More mugs", kind="boost", category=str(mugs.pk), multiplier=2
    )
    MerchandisingRule.objects.create(name="Gone", kind="exclude", category="424242")

    html = admin_client.get(reverse("admin:recommendations_merchandisingrule_changelist"))
    text = html.content.decode()
    assert "category Toys" in text and "category Mugs" in text
    assert f"category {toys.pk}<" not in text
    assert "category 424242" in text  # a category deleted since: its key, not an error

    preview = admin_client.get(
        reverse("admin:recommendations_merchandisingrule_preview"),
        {"list": "related", "item": item.pk, "k": 4},
    ).content.decode()
    assert "exclude on every placement: category Toys" in preview
    assert "boost on every placement: category Mugs" in preview


def test_the_rules_list_names_its_categories_in_one_query(admin_client):
    url = reverse("admin:recommendations_merchandisingrule_changelist")
    shelves = [factories.category(f"Shelf {n}") for n in range(5)]
    MerchandisingRule.objects.create(name="r0", kind="exclude", category=str(shelves[0].pk))
    admin_client.get(url)  # warm the session and the content types
    with CaptureQueriesContext(connection) as one:
        admin_client.get(url)
    for n, shelf in enumerate(shelves[1:], 1):
        MerchandisingRule.objects.create(name=f"r{n}", kind="exclude", category=str(shelf.pk))
    with CaptureQueriesContext(connection) as five:
        page = admin_client.get(url).content.decode()
    assert all(f"category {shelf.name}" in page for shelf in shelves)
    assert len(five) == len(one)
