"""Template tags and the click beacon, through the shop's real pages."""

import pytest
from django.core.cache import cache
from django.template import Context, Template
from django.test import RequestFactory

from recommendations import serving
from recommendations.models import Interaction
from tests.factories import BROWSER

pytestmark = pytest.mark.django_db(transaction=True)


def _render(source: str, **context) -> str:
    request = RequestFactory().get("/", **BROWSER)
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    request.recommendations_visitor_id = context.pop("visitor", "visitor-1")
    return Template("{% load recommendations %}" + source).render(
        Context({"request": request, **context})
    )


@pytest.mark.parametrize(
    ("tag", "budget"),
    [
        ("{% recommended_for_you k=6 %}", 2),
        # Item lists read what the shopper bought once (the placement's policy hides it),
        # then keep it with the shopper's cached lists: one query more on their first list.
        ("{% related_items item k=6 %}", 3),
        ("{% bought_together item k=6 %}", 3),
        ("{% recently_viewed k=6 %}", 2),
        ("{% trending k=6 %}", 2),
    ],
)
def test_each_carousel_costs_at_most_two_or_three_queries(
    shop, tag, budget, django_assert_max_num_queries
):
    items, _ = shop
    # Shared, per-process state is warmed first: the model (loaded once per version) and
    # the popular list (cached for everyone). What is left is the per-visitor cost.
    _render(
        "{% recommended_for_you %}{% trending %}{% related_items item %}",
        item=items[1],
        visitor="warm-up",
    )
    with django_assert_max_num_queries(budget):
        _render(tag, item=items[0], visitor="visitor-1")


def test_carousel_markup_is_an_accessible_list_with_attribution(shop):
    items, version = shop
    html = _render("{% related_items item k=4 %}", item=items[0])
    assert html.count('<li class="rec-card">') == 4
    assert '<ol class="rec-track" tabindex="0"' in html
    assert (
        f"?src=related%3Av{version.pk}" in html
        and f'data-rec-source="related:v{version.pk}"' in html
    )
    assert 'class="rec-image rec-placeholder"' in html  # no image: a placeholder, no broken <img>


def test_pages_show_carousels(client, shop):
    items, _ = shop
    client.defaults.update(BROWSER)
    home = client.get("/").content.decode()
    assert "Recommended for you" in home and "rec-card" in home
    product = client.get(f"/products/{items[0].pk}/").content.decode()
    assert "You may also like" in product and "Customers also bought" in product
    client.post(f"/cart/add/{items[0].pk}/", {"quantity": 1})
    assert "Complete your order" in client.get("/cart/").content.decode()


def test_a_failing_recommender_never_breaks_the_page(client, shop, monkeypatch, caplog):
    items, _ = shop

    def boom(*args, **kwargs):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(serving, "related_to", boom)
    monkeypatch.setattr(serving, "for_visitor", boom)
    response = client.get(f"/products/{items[0].pk}/", **BROWSER)
    assert response.status_code == 200
    assert "You may also like" not in response.content.decode()
    assert "Customers also bought" in response.content.decode()
    assert "model exploded" in caplog.text
    assert client.get("/", **BROWSER).status_code == 200


def test_the_click_beacon_records_placement_and_version(client, shop):
    items, version = shop
    client.get("/", **BROWSER)  # gets a visitor cookie
    response = client.post(
        "/recommendations/click/",
        {"item": items[2].pk, "source": f"related:v{version.pk}"},
        **BROWSER,
    )
    assert response.status_code == 204
    click = Interaction.objects.get(event="click")
    assert click.item_id == items[2].pk and click.source == f"related:v{version.pk}"
    assert client.post("/recommendations/click/", {"item": "999999"}, **BROWSER).status_code == 400
    assert client.get("/recommendations/click/").status_code == 405


def test_the_click_beacon_is_rate_limited(client, shop):
    items, _ = shop
    cache.clear()
    client.get("/", **BROWSER)
    codes = {
        client.post("/recommendations/click/", {"item": items[0].pk}, **BROWSER).status_code
        for _ in range(61)
    }
    assert codes == {204, 429}
