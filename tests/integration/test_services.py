"""The read side: fold-in, fallbacks, stock, exclusions, caching, version switches."""

import threading

import pytest
from django.test import override_settings

from recommendations import serving, tracking
from recommendations.learning import versions
from recommendations.models import Interaction
from recommendations.serving import pool
from tests import factories
from tests.factories import TRAINED_SETTINGS

pytestmark = pytest.mark.django_db(transaction=True)




def cluster(item) -> int:
    return int(item.name.split()[1])


def view(item, visitor="new-visitor"):
    tracking.record("view", item, visitor_id=visitor)


def test_a_new_visitors_third_click_changes_the_list(shop):
    items, version = shop
    before = [r.item.pk for r in serving.for_visitor(visitor_id="new-visitor", k=6)]
    assert len(before) == 6  # no history yet: the fallbacks fill it
    cluster_two = [p for p in items if cluster(p) == 2]
    for item in cluster_two[:3]:
        view(item)
    after = serving.for_visitor(visitor_id="new-visitor", k=6)
    assert [r.item.pk for r in after] != before
    assert after.version_id == version.pk
    assert all(cluster(r.item) == 2 for r in after.items[:4])
    assert after.items[0].strategy == "model" and after.items[0].source == f"for_you:v{version.pk}"
    assert after.items[0].reason.startswith("Because you viewed CLUSTER 2")  # as named
    assert not {r.item.pk for r in after} & {p.pk for p in cluster_two[:3]}


def test_lists_hold_only_visible_items_without_duplicates_and_never_the_current_one(shop):
    items, _ = shop
    first = items[0]
    related = serving.related_to(first, k=5)
    assert len(related) == 5 and first.pk not in {r.item.pk for r in related}
    sold_out = related.items[0].item
    sold_out.stock = 0
    sold_out.save()
    hidden = items[4]
    hidden.is_active = False
    hidden.save()
    for result in (
        serving.related_to(first, k=8),
        serving.bought_together(first, k=8),
        serving.for_visitor(visitor_id="visitor-0", k=8),
        serving.popular(k=8),
    ):
        pks = [r.item.pk for r in result]
        assert len(pks) == len(set(pks)) == 8
        assert sold_out.pk not in pks and hidden.pk not in pks


def test_for_you_keeps_re_buys_unless_the_placement_hides_them(shop):
    items, _ = shop
    bought = items[6]
    tracking.record("purchase", bought, visitor_id="other")
    # k covers the whole catalogue, so only an exclusion can keep an item out.
    assert bought.pk in {r.item.pk for r in serving.for_visitor(visitor_id="other", k=40)}
    hide = {**TRAINED_SETTINGS, "EXCLUDE_BOUGHT": {"for_you": "purchased", "home": "none"}}
    with override_settings(RECOMMENDATIONS=hide):
        from django.core.cache import cache

        cache.clear()
        shown = {r.item.pk for r in serving.for_visitor(visitor_id="other", k=40)}
        assert bought.pk not in shown
        # A placement named in the setting follows its own policy, others their list's.
        assert bought.pk not in {
            r.item.pk for r in serving.for_visitor(visitor_id="other", k=40, placement="side")
        }
        home = {r.item.pk for r in serving.for_visitor(visitor_id="other", k=40, placement="home")}
        assert bought.pk in home


def test_buy_again_lists_only_what_the_shopper_bought(shop):
    items, _ = shop
    assert not serving.buy_again(visitor_id="nobody-yet")  # nothing bought: no fallback
    for item in (items[1], items[5], items[1]):
        tracking.record("purchase", item, visitor_id="regular")
    tracking.record("view", items[9], visitor_id="regular")
    again = serving.buy_again(visitor_id="regular", k=10)
    assert {r.item.pk for r in again} == {items[1].pk, items[5].pk}
    assert again.version_id is not None and again.items[0].strategy == "model"


def test_acting_invalidates_the_cached_list(shop, django_assert_num_queries):
    items, _ = shop
    view(items[1])
    serving.for_visitor(visitor_id="new-visitor", k=5)
    with django_assert_num_queries(1) as ctx:  # history cached; stock is always read fresh
        serving.for_visitor(visitor_id="new-visitor", k=5)
    assert "recommendations_interaction" not in ctx.captured_queries[0]["sql"]
    view(items[5])
    first = serving.for_visitor(visitor_id="new-visitor", k=5)
    assert any("Because you viewed" in r.reason for r in first)


def test_never_empty_without_a_model_or_sales(shop):
    items, _ = shop
    versions.ModelVersion.objects.update(is_active=False)
    from django.core.cache import cache

    cache.clear()
    pool.active_model.clear()
    result = serving.for_visitor(visitor_id="visitor-3", k=6)
    assert len(result) == 6 and result.version_id is None
    assert {r.strategy for r in result} <= {"category_popular", "popular"}
    Interaction.objects.all().delete()
    cache.clear()
    assert len(serving.related_to(items[0], k=6)) == 6
    assert {r.strategy for r in serving.popular(k=3)} == {"catalogue"}


def test_category_fallback_comes_before_global_popular(shop):
    _ = shop
    shelf = factories.category("Other shelf")
    loner = factories.product(category=shelf, name="LONELY NEW ITEM")
    partner = factories.product(category=shelf, name="LONELY PARTNER")
    tracking.record("purchase", partner, visitor_id="someone")
    from django.core.cache import cache

    cache.clear()
    result = serving.related_to(loner, k=5)
    assert result.items[0].item == partner and result.items[0].strategy == "category_popular"


def test_activating_another_version_switches_the_lists(shop):
    items, first = shop
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    assert serving.related_to(items[0]).version_id == second.pk
    versions.activate(first)
    assert serving.related_to(items[0]).version_id == first.pk
    assert serving.for_visitor(visitor_id="visitor-1").version_id == first.pk


def test_the_active_model_loads_once_per_version_under_threads(shop, monkeypatch):
    loads = []
    real = pool.load_version

    def counting(version):
        loads.append(version.pk)
        return real(version)

    monkeypatch.setattr(pool, "load_version", counting)
    pool.active_model.clear()
    errors = []

    def worker():
        try:
            assert pool.active_model.get() is not None
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(loads) == 1


def test_recently_viewed_is_the_visitors_own_history(shop):
    items, _ = shop
    for item in (items[3], items[7], items[3]):
        view(item, visitor="history-visitor")
    result = serving.recently_viewed(visitor_id="history-visitor", k=5)
    assert [r.item.pk for r in result] == [items[3].pk, items[7].pk]
    assert len(serving.recently_viewed(visitor_id="nobody")) == 0


def test_trending_prefers_growing_items(shop):
    items, _ = shop
    for n in range(5):
        tracking.record("view", items[11], visitor_id=f"fan-{n}")
    from django.core.cache import cache

    cache.clear()
    assert serving.trending(k=3).items[0].item == items[11]
