"""recommendations_refresh: fresh bought-together and new items' lists without retraining."""

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import override_settings

from recommendations import cache_keys, serving, tracking
from recommendations.learning.refresh import refresh
from recommendations.learning.schedules import beat_schedule
from recommendations.models import ModelVersion, RelatedItem
from tests import factories
from tests.factories import TRAINED_SETTINGS

pytestmark = pytest.mark.django_db(transaction=True)

# One order makes a pair (the default MIN_SUPPORT of 2 waits for a second order).
SETTINGS = {**TRAINED_SETTINGS, "BOUGHT_TOGETHER": {"MIN_SUPPORT": 1}}


def _together(version, item):
    return list(
        RelatedItem.objects.filter(
            version=version, item=item, kind=RelatedItem.Kind.BOUGHT_TOGETHER
        ).values_list("related_id", flat=True)
    )


def _order(pk, *items):
    for line, item in enumerate(items):
        tracking.record(
            "purchase", item, visitor_id=f"buyer-{pk}", client_event_id=f"order:{pk}:{line}"
        )


def test_a_pair_bought_now_is_listed_after_one_refresh(shop):
    items, version = shop
    with override_settings(RECOMMENDATIONS=SETTINGS):
        shelf = items[0].category
        arrival = factories.product(category=shelf, name="CLUSTER 1 ITEM NEW")
        old = items[1]
        assert not _together(version, arrival)
        assert not RelatedItem.objects.filter(version=version, item=arrival).exists()
        served = serving.bought_together(arrival, k=5)
        assert old.pk not in [r.item.pk for r in served][:1]
        cache.set(cache_keys.popular(30), [(old.pk, 1, None)], 600)

        _order(9001, arrival, old)
        report = refresh()

        assert report.version_id == version.pk and report.new_order_lines == 2
        assert report.items_touched == 2 and report.bought_together_rows >= 2
        assert _together(version, arrival) == [old.pk]
        # the new item also got similar items, by its content
        assert report.new_items == 1
        similar = RelatedItem.objects.filter(
            version=version, item=arrival, kind=RelatedItem.Kind.SIMILAR
        )
        assert similar.exists()
        # what serving shows changed at once, and the popular cache was dropped
        assert serving.bought_together(arrival, k=5).items[0].item.pk == old.pk
        assert cache.get(cache_keys.popular(30)) != [(old.pk, 1, None)]
        # no retraining: same active version, nothing else rewritten
        assert ModelVersion.objects.count() == 1
        assert ModelVersion.objects.get(is_active=True).pk == version.pk

        # a second run with nothing new touches nothing
        again = refresh()
        assert again.new_order_lines == 0 and again.items_touched == 0
        assert again.new_items == 0


def test_the_refresh_lists_equal_a_full_recomputation(shop):
    from recommendations.learning.related import compute_related

    items, version = shop
    with override_settings(RECOMMENDATIONS=SETTINGS):
        _order(9002, items[0], items[5], items[6])
        _order(9003, items[5], items[6])
        refresh()
        fields = ("item_id", "related_id", "rank")
        refreshed = {
            item.pk: list(
                RelatedItem.objects.filter(version=version, item=item, kind="bought_together")
                .order_by("rank")
                .values_list(*fields)
            )
            for item in (items[0], items[5], items[6])
        }
        compute_related(version)
        for item in (items[0], items[5], items[6]):
            full = list(
                RelatedItem.objects.filter(version=version, item=item, kind="bought_together")
                .order_by("rank")
                .values_list(*fields)
            )
            assert refreshed[item.pk] == full and full


def test_command_and_beat_entry(shop):
    from io import StringIO

    out = StringIO()
    with override_settings(RECOMMENDATIONS=SETTINGS):
        call_command("recommendations_refresh", stdout=out)
    assert "Refreshed (v" in out.getvalue()
    entry = beat_schedule()["recommendations-refresh"]
    assert entry["task"] == "recommendations.tasks.refresh" and entry["schedule"] == 900.0
    assert beat_schedule(refresh=60.0)["recommendations-refresh"]["schedule"] == 60.0
    from recommendations.learning.tasks import refresh as task

    assert task.delay().get()["version_id"] is not None
