"""One policy for bought items, per placement: a shopper's just-bought item leaves their own
similar, bought-together and trending lists (pages and API), and only theirs."""

import re

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from recommendations import serving
from recommendations.conf import DEFAULTS
from recommendations.ml.policy import PLACEMENT_DEFAULTS
from recommendations.models import Interaction
from recommendations.serving.lists import exclusion_policy
from tests import factories
from tests.factories import BROWSER, TRAINED_SETTINGS

pytestmark = pytest.mark.django_db(transaction=True)


def carousel(client, item, placement) -> list[int]:
    html = client.get(f"/products/{item.pk}/", **BROWSER).content.decode()
    section = re.search(rf'data-rec-placement="{placement}".*?</section>', html, flags=re.S)
    assert section, f"no {placement} carousel on the page"
    return [int(pk) for pk in re.findall(r'data-rec-item="(\d+)"', section.group(0))]


def api_list(client, item, kind) -> tuple[list[int], str]:
    response = client.get(f"/api/recommendations/items/{item.pk}/{kind}/", **BROWSER)
    assert response.status_code == 200, response.content
    return [row["item"]["id"] for row in response.json()["results"]], response.get(
        "Cache-Control", ""
    )


def buy(client, item) -> None:
    """Through the shop: add to the cart, pay (the order receiver records the purchase)."""
    client.post(f"/cart/add/{item.pk}/", {"quantity": 1}, **BROWSER)
    response = client.post("/checkout/", **BROWSER)
    assert response.status_code == 302 and "/orders/" in response.url


def test_the_policy_is_one_table():
    # The settings' defaults and ml.policy's table say the same for every list.
    assert {k: v for k, v in PLACEMENT_DEFAULTS.items() if k != "buy_again"} == DEFAULTS[
        "EXCLUDE_BOUGHT"
    ]
    assert exclusion_policy("related", "similar") == "purchased"
    assert exclusion_policy("cart_bought_together", "bought_together") == "purchased"
    assert exclusion_policy("home", "trending") == "purchased"
    assert exclusion_policy("home_for_you", "for_you") == "none"
    assert exclusion_policy("popular", "popular") == "none"
    assert exclusion_policy("orders_buy_again", "buy_again") == "only_purchased"


def test_a_just_bought_item_leaves_that_shoppers_related_and_bought_together_lists(shop):
    items, _ = shop
    product = items[0]
    everyone = set(carousel(Client(), product, "related"))
    together = set(carousel(Client(), product, "bought_together"))
    bought = next(p for p in items if p.pk in everyone & together)

    buyer, other = Client(), Client()
    buyer.force_login(factories.user("buyer"))
    before = carousel(buyer, product, "related")
    assert bought.pk in before
    buy(buyer, bought)
    assert Interaction.objects.filter(event="purchase", item=bought).exists()

    # The page right after the purchase: gone from the buyer's lists, still k long ...
    related = carousel(buyer, product, "related")
    assert bought.pk not in related and len(related) == len(before)
    assert bought.pk not in carousel(buyer, product, "bought_together")
    # ... and from their API lists, answered as private.
    api_related, control = api_list(buyer, product, "related")
    assert bought.pk not in api_related and "private" in control
    assert bought.pk not in api_list(buyer, product, "bought-together")[0]
    # Another shopper still sees it.
    assert bought.pk in carousel(other, product, "related")
    assert bought.pk in carousel(other, product, "bought_together")
    assert bought.pk in api_list(other, product, "related")[0]


def test_lists_follow_the_placements_policy_for_the_shopper_they_are_built_for(shop):
    items, _ = shop
    product, bought, viewed = items[0], items[4], items[8]
    visitor = "policy-visitor"
    from recommendations import tracking

    tracking.record("purchase", bought, visitor_id=visitor)
    tracking.record("view", viewed, visitor_id=visitor)

    def served(build, placement, who=visitor):
        return {r.item.pk for r in serving.serve(placement, build, visitor_id=who)}

    # k covers the whole catalogue: only an exclusion keeps an item out.
    assert bought.pk not in served(lambda: serving.related_to(product, 40), "related")
    assert bought.pk in served(lambda: serving.related_to(product, 40), "related", "someone")
    assert bought.pk not in served(lambda: serving.trending(k=40), "trending")
    assert bought.pk in served(lambda: serving.popular(k=40), "popular")  # best sellers: kept
    assert bought.pk in served(lambda: serving.for_visitor(None, visitor, 40), "for_you")
    # A direct call names its shopper; without one nothing is hidden.
    assert bought.pk not in {
        r.item.pk for r in serving.bought_together(product, 40, visitor_id=visitor)
    }
    assert bought.pk in {r.item.pk for r in serving.bought_together(product, 40)}

    # The setting overrides by placement, or by list ("seen" hides views too).
    policies = {"related": "none", "bought_together": "seen"}
    with override_settings(RECOMMENDATIONS={**TRAINED_SETTINGS, "EXCLUDE_BOUGHT": policies}):
        cache.clear()
        assert bought.pk in served(lambda: serving.related_to(product, 40), "related")
        together = served(lambda: serving.bought_together(product, 40), "bought_together")
        assert bought.pk not in together and viewed.pk not in together
