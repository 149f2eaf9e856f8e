"""Carousels any shop can use: every string a shopper sees is translated (the app ships a
German catalogue), and the click beacon's URL follows wherever the shop mounts the app."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from django.utils import translation

from recommendations import serving, tracking
from recommendations.models import Interaction
from tests.factories import BROWSER
from tests.urls_prefixed import PREFIX

pytestmark = pytest.mark.django_db(transaction=True)


def _render(source: str, visitor: str = "visitor-1", **context) -> str:
    request = RequestFactory().get("/", **BROWSER)
    request.user = AnonymousUser()
    request.recommendations_visitor_id = visitor
    return Template("{% load recommendations %}" + source).render(
        Context({"request": request, **context})
    )


def test_carousels_speak_the_pages_language(shop):
    items, _ = shop
    page = "{% related_items item k=4 %}{% recommended_for_you k=4 %}"
    with translation.override("de"):
        german = _render(page, item=items[0])
    assert "Das könnte Ihnen auch gefallen" in german and "Für Sie empfohlen" in german
    assert "seitwärts scrollen für mehr" in german  # the list's label for screen readers
    assert "Ähnlich" in german  # the reason under each related card
    assert "You may also like" not in german and "Similar<" not in german
    # The same lists, served from the per-process cache, in English on an English page.
    english = _render(page, item=items[0])
    assert "You may also like" in english and "Recommended for you" in english
    assert "Similar" in english and "Ähnlich" not in english
    assert "Das könnte" not in english


def test_a_shoppers_reasons_are_translated_with_the_item_named_as_the_shop_names_it(shop):
    items, _ = shop
    viewed = items[2]
    for item in items[2:11:4]:
        tracking.record("view", item, visitor_id="reader")
    with translation.override("de"):
        reasons = [str(r.reason) for r in serving.for_visitor(visitor_id="reader", k=6)]
    assert any(r.startswith("Weil Sie CLUSTER") and r.endswith("angesehen haben") for r in reasons)
    assert viewed.name.isupper()  # no case change: the name is printed as stored
    english = [str(r.reason) for r in serving.for_visitor(visitor_id="reader", k=6)]
    assert any(r.startswith("Because you viewed CLUSTER") for r in english)


def test_the_click_beacon_url_follows_the_shops_mount_point(shop):
    items, version = shop
    assert 'data-rec-click-url="/recommendations/click/"' in _render("{% recommendations_assets %}")
    with override_settings(ROOT_URLCONF="tests.urls_prefixed"):
        home = Client(**BROWSER).get("/").content.decode()
        url = f"/{PREFIX}recommendations/click/"
        assert f'data-rec-click-url="{url}"' in home
        assert 'data-rec-click-url="/recommendations/click/"' not in home
        response = Client(**BROWSER).post(
            url,
            {"item": items[0].pk, "source": f"related:v{version.pk}"},
            HTTP_SEC_FETCH_SITE="same-origin",
        )
        assert response.status_code == 204
    assert Interaction.objects.filter(event="click", item=items[0]).exists()
