"""RECOMMENDATIONS["DIVERSITY"]: the per-placement re-ranking changes what is served."""

import pytest
from django.core.cache import cache
from django.core.checks import run_checks
from django.test import override_settings

from recommendations import serving, tracking
from recommendations.serving import catalogue
from tests import factories
from tests.factories import TRAINED_SETTINGS

pytestmark = pytest.mark.django_db(transaction=True)


def cluster(item) -> int:
    return int(item.name.split()[1])


def _for_you(**diversity):
    settings = {**TRAINED_SETTINGS, "DIVERSITY": diversity}
    with override_settings(RECOMMENDATIONS=settings):
        cache.clear()
        return serving.for_visitor(visitor_id="new-visitor", k=8)


def test_mmr_on_for_you_mixes_the_clusters(shop):
    items, _ = shop
    for item in [p for p in items if cluster(p) == 2][:3]:
        tracking.record("view", item, visitor_id="new-visitor")
    plain = _for_you()
    assert [cluster(r.item) for r in plain.items[:4]] == [2, 2, 2, 2]
    same = _for_you(for_you={"METHOD": "mmr", "LAMBDA": 1.0})
    assert [r.item.pk for r in same] == [r.item.pk for r in plain]
    diverse = _for_you(for_you={"METHOD": "mmr", "LAMBDA": 0.3})
    assert diverse.items[0].item.pk == plain.items[0].item.pk  # the best stays first
    assert len({cluster(r.item) for r in diverse.items[:4]}) >= 3
    assert len(diverse) == 8 and len({r.item.pk for r in diverse}) == 8
    # another placement is untouched by the for_you setting
    with override_settings(
        RECOMMENDATIONS={**TRAINED_SETTINGS, "DIVERSITY": {"for_you": {"METHOD": "mmr"}}}
    ):
        cache.clear()
        side = serving.for_visitor(visitor_id="new-visitor", k=8, placement="side")
    assert [r.item.pk for r in side] == [r.item.pk for r in plain]


def test_category_cap_on_popular(shop):
    items, _ = shop
    shelves = [factories.category(f"Shelf {c}") for c in range(4)]
    for item in items:
        item.category = shelves[cluster(item)]
        item.save()
    # cluster 0 sells best by far
    for n, item in enumerate([p for p in items if cluster(p) == 0][:6]):
        for _ in range(20 + n):
            tracking.record("purchase", item, visitor_id=f"fan-{n}")
    catalogue.item_cache.clear()

    def popular(**diversity):
        with override_settings(RECOMMENDATIONS={**TRAINED_SETTINGS, "DIVERSITY": diversity}):
            cache.clear()
            return [cluster(r.item) for r in serving.popular(k=6)]

    assert popular()[:4] == [0, 0, 0, 0]
    capped = popular(popular={"METHOD": "category_cap", "CAP": 1})
    assert len(capped) == 6
    assert sorted(capped[:4]) == [0, 1, 2, 3]


def test_a_bad_diversity_setting_is_a_check_error():
    bad = {"DIVERSITY": {"for_you": {"METHOD": "shuffle", "LAMBDA": 2, "TYPO": 1},
                         "similar": {"METHOD": "popularity", "WEIGHT": -1}}}
    with override_settings(RECOMMENDATIONS=bad):
        errors = [e for e in run_checks() if e.id == "recommendations.E020"]
    assert len(errors) == 4
    assert any("'WEIGHT'] must be a number >= 0" in e.msg for e in errors)
    good = {"DIVERSITY": {"for_you": {"METHOD": "mmr", "LAMBDA": 0.9}}}
    with override_settings(RECOMMENDATIONS=good):
        assert not [e for e in run_checks() if e.id.startswith("recommendations.E")]


def _view_cluster(items, c=2):
    for item in [p for p in items if cluster(p) == c][:3]:
        tracking.record("view", item, visitor_id="new-visitor")


def test_popularity_penalty_moves_the_best_seller_down(shop):
    """A served EASE version has no trend: percentiles come from the popular list."""
    items, _ = shop
    _view_cluster(items)
    plain = _for_you()
    star = plain.items[0].item
    for n in range(30):  # the shop's best seller by far, since the training
        tracking.record("purchase", star, visitor_id=f"buyer-{n}")
    catalogue.item_cache.clear()
    same = _for_you(for_you={"METHOD": "popularity", "WEIGHT": 0})
    assert [r.item.pk for r in same] == [r.item.pk for r in plain]
    spread = _for_you(for_you={"METHOD": "popularity", "WEIGHT": 2.0})
    assert star.pk not in [r.item.pk for r in spread]
    assert len(spread) == 8 and len({r.item.pk for r in spread}) == 8


def test_popularity_penalty_reads_the_default_models_trend():
    from recommendations.serving import pool
    from recommendations.serving.pool import active_model

    with override_settings(RECOMMENDATIONS=TRAINED_SETTINGS):
        items = factories.clustered_log()
        factories.trained_version("next_basket", {
            "epochs": 10, "hidden": 32, "latent": 8, "batch_size": 64, "seed": 3})
        pool.active_model.clear()
        _view_cluster(items)
        plain = _for_you()
        loaded = active_model.get()
        trend = loaded.model.arrays["trend"]
        index = active_model.index()
        top = max(plain.items, key=lambda r: trend[index[r.item.pk]]).item
        spread = _for_you(for_you={"METHOD": "popularity", "WEIGHT": 2.0})
        shown = [r.item.pk for r in spread]
        assert top.pk not in shown[:4]
        assert shown != [r.item.pk for r in plain]
