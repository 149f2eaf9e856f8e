"""Exploration in the served lists: off by default (lists as before), a share of positions
for rarely shown items when on, and a share an A/B variant can carry."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from recommendations import serving
from recommendations.models import Experiment, ExperimentVariant, Impression, Interaction
from recommendations.serving import experiments, exploration
from recommendations.serving.catalogue import item_cache
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def _settings(**exploration_cfg):
    return {**factories.TRAINED_SETTINGS, "EXPLORATION": exploration_cfg}


@pytest.fixture
def exposed(shop):
    """The first 30 of the 40 items shown 120 times (over MAX_IMPRESSIONS); the last 10
    rarely: the exploration candidates."""
    items, _version = shop
    often = [p.pk for p in items[:30]]
    Impression.objects.bulk_create(
        Impression(placement="popular", item_ids=often, visitor_id=f"v{i}") for i in range(120)
    )
    Impression.objects.bulk_create(
        Impression(placement="popular", item_ids=[items[35].pk], visitor_id=f"w{i}")
        for i in range(5)
    )
    item_cache.clear()
    return items, {p.pk for p in items[30:]}


def _lists(items):
    return {
        "for_you": serving.for_visitor(None, "visitor-3", 8),
        "related": serving.related_to(items[0], 8),
        "popular": serving.popular(k=8),
    }


def _entries(result):
    return [(rec.item.pk, rec.strategy, rec.reason) for rec in result]


def test_share_zero_serves_exactly_todays_lists(exposed):
    items, _ = exposed
    before = {name: _entries(r) for name, r in _lists(items).items()}
    with override_settings(RECOMMENDATIONS=_settings(SHARE=0.0, PLACEMENTS={"popular": 0})):
        assert {name: _entries(r) for name, r in _lists(items).items()} == before
    assert not any(s == "explore" for entries in before.values() for _, s, _ in entries)
    with override_settings(RECOMMENDATIONS=_settings(SHARE=0.25)):  # the test can fail
        assert {name: _entries(r) for name, r in _lists(items).items()} != before


@override_settings(RECOMMENDATIONS=_settings(SHARE=0.25))
def test_a_quarter_of_eight_positions_go_to_rarely_shown_items(exposed):
    items, rare = exposed
    for _ in range(5):  # a fresh draw each time
        for name, result in _lists(items).items():
            strategies = [rec.strategy for rec in result]
            assert len(result) == 8, name
            assert [i for i, s in enumerate(strategies) if s == "explore"] == [2, 5], name
            explored = [rec for rec in result if rec.strategy == "explore"]
            assert {rec.item.pk for rec in explored} <= rare, name
            assert all(rec.reason == exploration.EXPLORE.label for rec in explored)
            assert all(rec.source == f"{name}:explore" for rec in explored)
            assert len({rec.item.pk for rec in result}) == 8  # no item twice
            if name == "related":
                assert items[0].pk not in {rec.item.pk for rec in result}


@override_settings(RECOMMENDATIONS=_settings(SHARE=0.0, PLACEMENTS={"popular": 0.5}))
def test_a_placement_overrides_the_share_and_lists_of_ones_own_never_explore(exposed):
    items, _ = exposed
    assert sum(r.strategy == "explore" for r in serving.popular(k=8)) == 4
    assert not any(r.strategy == "explore" for r in serving.for_visitor(None, "visitor-3", 8))
    with override_settings(RECOMMENDATIONS=_settings(SHARE=1.0)):
        for result in (
            serving.buy_again(None, "visitor-3", 8),
            serving.recently_viewed(None, "visitor-3", 8),
            serving.popular(category=items[0].category_id, k=8),
        ):
            assert result and not any(r.strategy == "explore" for r in result)


def test_counts_take_each_carousel_once_and_the_logged_clicks(exposed):
    items, _ = exposed
    Impression.objects.create(placement="related", item_ids=[items[31].pk] * 3, visitor_id="x")
    Interaction.objects.bulk_create(
        Interaction(visitor_id="x", item=items[31], event="click") for _ in range(2)
    )
    pool = exploration.count_exposure()
    counts = dict(
        zip(pool.item_ids.tolist(), zip(pool.impressions, pool.clicks, strict=True), strict=True)
    )
    assert set(counts) == {p.pk for p in items[30:]}  # 120 impressions: not a candidate
    assert counts[items[31].pk] == (1, 2) and counts[items[35].pk] == (5, 0)


@override_settings(RECOMMENDATIONS=_settings(SHARE=0.0))
def test_an_experiment_variant_carries_an_exploration_share(exposed):
    experiment = Experiment.objects.create(name="explore popular", placement="popular")
    ExperimentVariant.objects.create(experiment=experiment, name="control", weight=50)
    ExperimentVariant.objects.create(
        experiment=experiment, name="explore", weight=50, exploration_share=0.25
    )
    running = experiments.experiment_for("popular")
    arms: dict[str, str] = {}
    for n in range(40):
        visitor = f"phone-ab-{n:04d}"
        arms.setdefault(experiments.assign(running, visitor).name, visitor)
    for arm, visitor in arms.items():
        client = APIClient(HTTP_X_VISITOR_ID=factories.visitor_token(visitor), **factories.BROWSER)
        results = client.get("/api/recommendations/popular/?k=8").json()["results"]
        explored = [r for r in results if r["strategy"] == "explore"]
        assert len(explored) == (2 if arm == "explore" else 0), arm
