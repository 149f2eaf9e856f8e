"""Merchandising rules: pins, exclusions and boosts, their dates, the cache, the preview."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from recommendations import serving
from recommendations.models import MerchandisingRule
from recommendations.serving import rules
from tests import factories
from tests.factories import BROWSER

pytestmark = pytest.mark.django_db(transaction=True)




def carousel(client, item, placement="related") -> list[int]:
    html = client.get(f"/products/{item.pk}/", **BROWSER).content.decode()
    section = re.search(rf'data-rec-placement="{placement}".*?</section>', html, flags=re.S).group(
        0
    )
    return [int(pk) for pk in re.findall(r'data-rec-item="(\d+)"', section)]


def outsider(items, item):
    """An item of another cluster: the model never puts it in ``item``'s related list."""
    cluster = item.name.split()[1]
    return next(p for p in reversed(items) if p.name.split()[1] != cluster)


def test_a_pin_shows_first_in_the_carousel_and_vanishes_after_its_end(client, shop, monkeypatch):
    items, _ = shop
    product, pinned = items[0], outsider(items, items[0])
    assert pinned.pk not in carousel(client, product)
    end = timezone.now() + timedelta(hours=2)
    MerchandisingRule.objects.create(
        name="Summer pick", kind="pin", placement="related", item=pinned, position=1, ends_at=end
    )
    shown = carousel(client, product)
    assert shown[0] == pinned.pk and len(shown) == len(set(shown))
    assert serving.related_to(product).items[0].source == "related:pinned"
    # Another placement is not affected.
    assert serving.bought_together(product).items[0].item != pinned

    later = end + timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert pinned.pk not in carousel(client, product)


def test_a_pin_in_the_future_waits_for_its_start(shop):
    items, _ = shop
    product, pinned = items[0], outsider(items, items[0])
    start = timezone.now() + timedelta(days=1)
    MerchandisingRule.objects.create(
        name="Later", kind="pin", placement="related", item=pinned, starts_at=start
    )
    assert serving.related_to(product).items[0].item != pinned
    result = rules.apply_rules("related", list(serving.related_to(product)), now=start)
    assert result[0].item == pinned


def test_pins_keep_their_positions_and_never_show_the_current_or_a_sold_out_item(shop):
    items, _ = shop
    product = items[0]
    a, b = outsider(items, product), items[-2]
    for position, item in ((3, a), (1, b)):
        MerchandisingRule.objects.create(
            name=f"pin {position}", kind="pin", placement="related", item=item, position=position
        )
    MerchandisingRule.objects.create(name="self", kind="pin", placement="related", item=product)
    result = [r.item for r in serving.related_to(product, k=6)]
    assert result[0] == b and result[2] == a and product not in result
    a.stock = 0
    a.save()
    assert a not in [r.item for r in serving.related_to(product, k=6)]


def test_exclusions_by_item_and_category_on_one_placement_or_everywhere(shop):
    items, _ = shop
    product = items[0]
    related = [r.item for r in serving.related_to(product, k=5)]
    MerchandisingRule.objects.create(name="no", kind="exclude", item=related[0])
    after = [r.item for r in serving.related_to(product, k=5)]
    assert related[0] not in after and len(after) == 5
    assert related[0] not in [r.item for r in serving.popular(k=40)]

    other_shelf = factories.category("Gifts")
    gift = factories.product(category=other_shelf, name="GIFT")
    from recommendations import tracking

    for n in range(100):
        tracking.record("purchase", gift, visitor_id=f"gift-{n}")
    from django.core.cache import cache

    cache.clear()
    assert gift in [r.item for r in serving.popular(k=3)]
    MerchandisingRule.objects.create(
        name="no gifts on home", kind="exclude", placement="popular", category=str(other_shelf.pk)
    )
    assert gift not in [r.item for r in serving.popular(k=40)]
    assert gift in [r.item for r in serving.popular(k=3, placement="elsewhere")]


def test_an_exclusion_beats_a_pin(shop):
    items, _ = shop
    product, item = items[0], outsider(items, items[0])
    MerchandisingRule.objects.create(name="pin", kind="pin", placement="related", item=item)
    MerchandisingRule.objects.create(name="ban", kind="exclude", item=item)
    assert item not in [r.item for r in serving.related_to(product, k=8)]


def test_a_boost_moves_a_category_up_by_rank(shop):
    _ = shop
    shelf = factories.category("Boosted")
    boosted = factories.product(category=shelf, name="BOOSTED")
    from recommendations import tracking

    for n in range(3):
        tracking.record("purchase", boosted, visitor_id=f"b-{n}")
    from django.core.cache import cache

    cache.clear()
    before = [r.item for r in serving.popular(k=50)]
    rank = before.index(boosted)
    assert rank >= 4
    MerchandisingRule.objects.create(
        name="boost", kind="boost", category=str(shelf.pk), multiplier=rank + 2
    )
    after = [r.item for r in serving.popular(k=50)]
    assert after.index(boosted) == 0 and set(after) == set(before)


def test_saving_or_deleting_a_rule_takes_effect_at_once(shop):
    items, _ = shop
    product, pinned = items[0], outsider(items, items[0])
    serving.related_to(product)  # the (empty) rules are cached now
    rule = MerchandisingRule.objects.create(
        name="pin", kind="pin", placement="related", item=pinned
    )
    assert serving.related_to(product).items[0].item == pinned
    rule.is_active = False
    rule.save()
    assert serving.related_to(product).items[0].item != pinned
    rule.is_active = True
    rule.save()
    rule.delete()
    assert serving.related_to(product).items[0].item != pinned


def test_serving_reads_the_rules_from_the_cache(shop, django_assert_num_queries):
    items, _ = shop
    product = items[0]
    MerchandisingRule.objects.create(name="boost", kind="boost", category="1", multiplier=2)
    serving.related_to(product)
    with django_assert_num_queries(1):  # the visible items; rules and related lists cached
        serving.related_to(product)


def test_the_preview_shows_the_list_before_and_after_the_rules(admin_client, shop):
    items, _ = shop
    product, pinned = items[0], outsider(items, items[0])
    MerchandisingRule.objects.create(name="pin", kind="pin", placement="related", item=pinned)
    url = reverse("admin:recommendations_merchandisingrule_preview")
    response = admin_client.get(url, {"list": "related", "item": product.pk, "k": 5})
    assert response.status_code == 200
    before, after = response.context["before"], response.context["after"]
    assert pinned not in [r.item for r in before]
    assert after.items[0].item == pinned and after.items[0].strategy == "pinned"
    rows = response.context["rows"]
    assert rows[0]["change"] == "new" and rows[-1]["before_gone"]
    html = response.content.decode()
    assert "Model only (rules off)" in html and pinned.name in html

    user = factories.user()
    response = admin_client.get(url, {"list": "for_you", "user": user.pk, "k": 5})
    assert response.status_code == 200 and len(response.context["after"]) == 5
    response = admin_client.get(url, {"list": "related"})
    assert response.status_code == 200 and response.context["form"].errors["item"]


def test_the_rule_form_checks_what_each_kind_needs(admin_client, shop):
    items, _ = shop
    url = reverse("admin:recommendations_merchandisingrule_add")
    base = {"name": "r", "placement": "related", "position": 1, "multiplier": 2, "is_active": "on"}
    response = admin_client.post(url, {**base, "kind": "pin"})
    assert response.status_code == 200 and "A pin needs the item" in response.content.decode()
    response = admin_client.post(url, {**base, "kind": "boost"})
    assert "A boost needs a category" in response.content.decode()
    shelf = items[0].category
    response = admin_client.post(url, {**base, "kind": "boost", "category": str(shelf.pk)})
    assert response.status_code == 302
    assert MerchandisingRule.objects.get().category == str(shelf.pk)
    html = admin_client.get(reverse("admin:recommendations_merchandisingrule_changelist"))
    assert "× 2" in html.content.decode()
