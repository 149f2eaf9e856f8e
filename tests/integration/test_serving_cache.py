"""What serving caches, and what it never does: stock is read fresh on every list."""

import random
import re
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.signals import request_finished, request_started
from django.template import Context, Template, engines
from django.test import RequestFactory, override_settings
from django.utils import translation

from recommendations import serving, signals
from recommendations.adapters import DefaultAdapter, get_adapter
from recommendations.serving import catalogue, pool
from recommendations.templatetags import recommendations as tags
from shop.adapters import ShopAdapter
from shop.models import Product
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
SETTINGS = {"TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]}, "RELATED_ITEMS_K": 5}
BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/130.0"}


@pytest.fixture(params=["recommendations.adapters.DefaultAdapter", "shop.adapters.ShopAdapter"])
def shop(request):
    """Both adapters: the default one (the ORM builds every query) and the shop's, whose
    static visibility lets serving keep compiled statements."""
    with override_settings(RECOMMENDATIONS={**SETTINGS, "ADAPTER": request.param}):
        items = factories.clustered_log()
        version = factories.trained_version()
        pool.active_model.clear()
        yield items, version


def _ids(result) -> list[int]:
    return [rec.item.pk for rec in result]


def _render(source: str, visitor: str = "visitor-1", **context) -> str:
    request = RequestFactory().get("/", **BROWSER)
    request.user = AnonymousUser()
    request.recommendations_visitor_id = visitor
    return Template("{% load recommendations %}" + source).render(
        Context({"request": request, **context})
    )


def _card_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-rec-item="(\d+)"', html)]


def test_an_item_sold_out_without_any_signal_leaves_cached_lists_at_once(client, shop):
    items, _ = shop
    first = _ids(serving.related_to(items[0], k=4))
    assert _ids(serving.related_to(items[0], k=4)) == first  # served from the list cache
    html = _render("{% related_items item k=4 %}", item=items[0])
    api = client.get(f"/api/recommendations/items/{items[0].pk}/related/?k=4", **BROWSER)
    assert _card_ids(html) == first == [r["item"]["id"] for r in api.json()["results"]]
    # queryset.update sends no post_save: the caches are not told, the next list still knows
    Product.objects.filter(pk=first[0]).update(stock=0)
    Product.objects.filter(pk=first[1]).update(is_active=False)
    again = _ids(serving.related_to(items[0], k=4))
    assert first[0] not in again and first[1] not in again and len(again) == 4
    assert not {first[0], first[1]} & set(_card_ids(_render("{% related_items item k=4 %}",
                                                            item=items[0])))
    api = client.get(f"/api/recommendations/items/{items[0].pk}/related/?k=4", **BROWSER)
    assert not {first[0], first[1]} & {r["item"]["id"] for r in api.json()["results"]}
    for_you = serving.for_visitor(visitor_id="visitor-3", k=30)
    assert not {first[0], first[1]} & set(_ids(for_you))
    # the shopper's own history, with the sold-out item in it
    client.get(f"/products/{first[2]}/", **BROWSER)
    client.get(f"/products/{first[0]}/", **BROWSER)  # still viewable, not recommendable
    page = client.get(f"/products/{items[0].pk}/", **BROWSER).content.decode()
    recent = re.search(r'data-rec-placement="recently_viewed"(.*?)</section>', page, re.S)
    assert recent and _card_ids(recent.group(1)) == [first[2]]


def test_a_saved_item_shows_its_new_name_and_stock_at_once(shop):
    items, _ = shop
    shown = _ids(serving.related_to(items[0], k=4))
    assert "Renamed Mug" not in _render("{% related_items item k=4 %}", item=items[0])
    product = Product.objects.get(pk=shown[0])
    product.name = "Renamed Mug"
    product.save()  # post_save: a new catalogue epoch
    assert "Renamed Mug" in _render("{% related_items item k=4 %}", item=items[0])
    product.stock = 0
    product.save()
    assert shown[0] not in _ids(serving.related_to(items[0], k=4))
    product.stock = 5
    product.save()  # back in stock: shown again at once (the epoch changed)
    assert shown[0] in _ids(serving.related_to(items[0], k=4))


def test_saves_deletes_and_paid_orders_start_a_new_catalogue_epoch(shop):
    items, _ = shop
    epochs = [catalogue.catalogue_epoch()]
    assert catalogue.catalogue_epoch() == epochs[0]  # stable while nothing changes
    factories.product(name="NEW ARRIVAL")
    epochs.append(catalogue.catalogue_epoch())
    items[5].delete()
    epochs.append(catalogue.catalogue_epoch())
    # order_paid: stock moves through queryset.update, which sends no post_save
    signals.order_paid.send(
        sender=None, request=None, order=SimpleNamespace(pk=1), lines=[], user=None
    )
    epochs.append(catalogue.catalogue_epoch())
    assert len(set(epochs)) == 4


def test_warm_carousels_cost_one_query_and_share_what_they_read(
    shop, django_assert_num_queries
):
    items, _ = shop
    source = (
        "{% related_items item k=6 %}{% bought_together item k=6 %}{% recently_viewed k=6 %}"
    )
    _render(source, item=items[0], visitor="visitor-2")  # warms the lists, not the request
    request_started.send(sender=None)  # a page: what one list reads, the next may reuse
    try:
        with django_assert_num_queries(1):  # both lists' visibility, in one query
            related = _render("{% related_items item k=6 %}", item=items[0], visitor="visitor-2")
        with django_assert_num_queries(0):
            bought = _render("{% bought_together item k=6 %}", item=items[0], visitor="visitor-2")
        with django_assert_num_queries(1):  # the history, each item with its visibility
            recent = _render("{% recently_viewed k=6 %}", visitor="visitor-2")
    finally:
        request_finished.send(sender=None)
    assert len(_card_ids(related)) == len(_card_ids(bought)) == len(_card_ids(recent)) == 6


def test_cards_rendered_one_by_one_equal_the_whole_template():
    engine = engines["django"].engine
    tpl = engine.get_template(tags.TEMPLATE)
    split = tags._split(engine, tpl.origin.name, tpl.source)
    assert split is not None, "the shipped carousel template should render card by card"
    rng = random.Random(3)
    names = ["mug", "o'neil's 3rd <b>lamp</b> & \"set\"", "émile 12v", "", "x" * 60]
    entries = []
    for i in range(14):
        item = SimpleNamespace(pk=9000 + i)
        rec = serving.Recommendation(
            item=item, score=rng.random(), strategy=rng.choice(["similar", "history"]),
            placement="related", version_id=rng.choice([None, 4]),
            reason=rng.choice(["", "Similar", "Because you viewed <i>x</i> & 'y'"]),
        )
        payload = {"id": item.pk, "name": rng.choice(names), "url": f"/products/{item.pk}/?a=1&b"}
        payload["price"] = rng.choice(["", "2.50", None, "1,000.00"])
        payload["image"] = rng.choice(["", "/media/a b.png?x=<y>"])
        entries.append({"rec": rec, "item": item, "payload": payload})
    for language in ("en", "de"):  # the template translates: cards are kept per language
        for title, version in [("You may also like", 3), ("Title <&> 'q'", None)]:
            values = {"title": title, "placement": "related", "version_id": version,
                      "entries": entries}
            with translation.override(language):
                whole = tpl.render(Context(values))
                assert split.render(Context(values), values) == whole
                assert split.render(Context(values), values) == whole  # from the card cache
            assert ("seitwärts" in whole) == (language == "de")


def test_templates_that_load_only_i18n_are_still_split_and_translate_their_cards():
    engine = engines["django"].engine
    source = (
        "{% load i18n %}{% if entries %}<ol>{% for entry in entries %}"
        "<li>{% translate 'Similar' %} {{ entry.item.pk }}</li>{% endfor %}</ol>{% endif %}"
    )
    split = tags._split(engine, "i18n-card", source)
    assert split is not None
    values = {"title": "t", "placement": "p", "version_id": None,
              "entries": [{"rec": serving.Recommendation(SimpleNamespace(pk=1), 1.0, "s", "p"),
                           "item": SimpleNamespace(pk=1), "payload": {}}]}
    with translation.override("de"):
        assert "<li>Ähnlich 1</li>" in split.render(Context(values), values)
    assert "<li>Similar 1</li>" in split.render(Context(values), values)


def test_templates_that_may_depend_on_more_are_rendered_whole():
    engine = engines["django"].engine
    plain = "{% if entries %}<ol>{% for entry in entries %}<li>{{ entry.item.pk }}</li>{% endfor %}</ol>{% endif %}"  # noqa: E501
    assert tags._split(engine, "t1", plain) is not None
    for source in [
        plain.replace("{{ entry.item.pk }}", "{{ forloop.counter }}"),
        plain.replace("<li>", "<li>{% csrf_token %}"),
        plain.replace("<ol>", "<ol>{{ entries|length }}"),
        plain.replace("<li>", "<li>{% now 'Y' %}"),
        "{% load recommendations %}" + plain,
        "{% load i18n recommendations %}" + plain,
        plain.replace("<li>", "<li>{% for x in entry.tags %}{{ x }}{% endfor %}"),
    ]:
        assert tags._split(engine, source, source) is None, source


def test_compiled_visibility_matches_the_orm(shop):
    items, _ = shop
    Product.objects.filter(pk__in=[items[1].pk, items[4].pk]).update(stock=0)
    Product.objects.filter(pk=items[2].pk).update(is_active=False)
    pks = [p.pk for p in items]

    class Static(DefaultAdapter):
        static_visibility = True

    for adapter in (ShopAdapter(), Static(), get_adapter()):
        for ids in ([], pks[:1], pks[:5], pks, pks[:3] + pks[:3], [*pks, 10**9], pks[:2]):
            expected = set(
                Product.objects.filter(pk__in=ids, is_active=True, stock__gt=0)
                .values_list("pk", flat=True)
            )
            assert adapter.visible_ids(ids) == expected
    assert ShopAdapter.static_visibility  # the shop's adapter opts in


def test_a_missing_item_is_404(client, shop):
    response = client.get("/api/recommendations/items/999999/related/", **BROWSER)
    assert response.status_code == 404
