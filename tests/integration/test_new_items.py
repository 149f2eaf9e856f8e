"""A product added after training reaches "for you" by its content, without a retrain."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from recommendations.learning.new_items import place_new_items
from recommendations.learning.refresh import refresh
from recommendations.learning.versions import load_version
from recommendations.models import Interaction, NewItemColumn
from recommendations.serving import lists, new_items, pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = ["ceramic teapot", "garden spade", "wool scarf", "candle holder"]
#: Shoppers' lists hide what they have seen, so the list is about what is left to find.
SETTINGS = {**factories.TRAINED_SETTINGS, "EXCLUDE_BOUGHT": {"for_you": "seen"}}


def _buy(visitor: str, item, when) -> list[Interaction]:
    return [
        Interaction(visitor_id=visitor, item=item, event="purchase",
                    client_event_id=f"server:{uuid.uuid4().hex}", created_at=when),
        Interaction(visitor_id=visitor, item=item, event="view",
                    created_at=when - timedelta(minutes=5)),
    ]


def _catalogue_and_log(n_users: int = 160, per_kind: int = 10, seed: int = 0) -> list[list]:
    """Four kinds of product, each its own words, category and price; each shopper buys 6-8
    items of one kind, in baskets 40 days apart (as factories.clustered_log)."""
    rng = random.Random(seed)
    shelves = []
    for k, kind in enumerate(KINDS):
        shelf = factories.category(kind.title())
        shelves.append([
            factories.product(category=shelf, name=f"{kind} {style}",
                              price=Decimal(str(3 + 10 * k)))
            for style in ("blue", "red", "green", "white", "black", "large", "small",
                          "classic", "modern", "vintage")[:per_kind]
        ])
    last = timezone.now() - timedelta(days=17)
    rows = []
    for u in range(n_users):
        bought = rng.sample(shelves[u % len(KINDS)], rng.randint(6, 8))
        for b, item in enumerate(bought):
            rows += _buy(f"visitor-{u}", item, last + timedelta(hours=u) - timedelta(
                days=40 * ((len(bought) - 1) // 3 - b // 3)))
    Interaction.objects.bulk_create(rows)
    return shelves


@pytest.fixture
def shop():
    with override_settings(RECOMMENDATIONS=SETTINGS):
        shelves = _catalogue_and_log()
        version = factories.trained_version()
        pool.active_model.clear()
        yield shelves, version


def _shopper(visitor: str, items) -> None:
    now = timezone.now() - timedelta(hours=1)
    Interaction.objects.bulk_create([r for item in items for r in _buy(visitor, item, now)])


def _for_you(visitor: str, k: int = 4):
    return [(r.item.pk, r.reason) for r in lists.for_visitor(visitor_id=visitor, k=k)]


def test_a_new_product_reaches_the_shoppers_of_its_kind_and_no_others(shop):
    shelves, version = shop
    teapots, spades = shelves[0], shelves[1]
    new = factories.product(name="ceramic teapot speckled", category=teapots[0].category,
                            price=Decimal("3"))
    _shopper("teapot-fan", teapots[:8])
    _shopper("gardener", spades[:6])
    before = [item for item, _ in _for_you("teapot-fan")]
    assert new.pk not in before  # not placed yet: the model does not know it

    assert place_new_items(version) == 1
    assert bytes(NewItemColumn.objects.get(version=version, item=new).decoder) == b""  # EASE
    fan = dict(_for_you("teapot-fan"))
    assert new.pk in fan, fan
    assert str(fan[new.pk]).startswith("New, like ceramic teapot")
    assert new.pk not in dict(_for_you("gardener"))


def test_placements_are_replaced_and_end_once_a_retrain_knows_the_item(shop):
    shelves, version = shop
    teapots = shelves[0]
    new = factories.product(name="ceramic teapot speckled", category=teapots[0].category,
                            price=Decimal("3"))
    hidden = factories.product(name="ceramic teapot chipped", category=teapots[0].category,
                               price=Decimal("3"), stock=0)
    assert place_new_items(version) == 1  # visible items only
    assert not NewItemColumn.objects.filter(item=hidden).exists()
    new.is_active = False
    new.save()
    assert place_new_items(version) == 0  # hidden since: its placement leaves

    new.is_active = True
    new.save()
    assert place_new_items(version) == 1
    # shoppers buy it, and the next training learns it
    Interaction.objects.bulk_create([
        r for u in range(0, 40, 4)
        for r in _buy(f"visitor-{u}", new, timezone.now() - timedelta(days=20))])
    retrained = factories.trained_version()
    assert new.pk in load_version(retrained).item_ids.tolist()  # the model knows it now
    assert not NewItemColumn.objects.filter(version=retrained, item=new).exists()
    assert place_new_items(retrained) == 0
    pool.active_model.clear()
    _shopper("teapot-fan", teapots[:8])
    fan = dict(_for_you("teapot-fan"))
    assert new.pk in fan and not str(fan[new.pk]).startswith("New, like")


def test_buy_again_never_lists_a_new_item(shop):
    shelves, version = shop
    factories.product(name="ceramic teapot speckled", category=shelves[0][0].category)
    place_new_items(version)
    _shopper("teapot-fan", shelves[0][:3])
    listed = {r.item.pk for r in lists.buy_again(visitor_id="teapot-fan", k=10)}
    assert listed <= {p.pk for p in shelves[0][:3]}


def test_training_places_the_visible_items_it_did_not_learn():
    with override_settings(RECOMMENDATIONS=SETTINGS):
        shelves = _catalogue_and_log()
        unsold = factories.product(name="wool scarf chunky", category=shelves[2][0].category)
        version = factories.trained_version()  # similarity, then placement, then activation
        assert list(NewItemColumn.objects.filter(version=version)
                    .values_list("item_id", flat=True)) == [unsold.pk]


def test_a_refresh_places_a_product_added_since_the_training(shop):
    shelves, version = shop
    teapots = shelves[0]
    new = factories.product(name="ceramic teapot speckled", category=teapots[0].category,
                            price=Decimal("3"))
    report = refresh(version)
    assert report.new_items_placed == 1
    assert NewItemColumn.objects.filter(version=version, item=new).exists()
    _shopper("teapot-fan", teapots[:8])
    assert new.pk in dict(_for_you("teapot-fan"))


@pytest.mark.parametrize("algorithm", ["next_basket", "vae"])
def test_a_vae_version_places_decoder_rows_and_reaches_the_shoppers_of_its_kind(algorithm):
    """The default model (and the hybrid VAE) scores a new item with its predicted decoder
    row as well as its column: the teapot fan's list has it, the gardener's does not."""
    with override_settings(RECOMMENDATIONS=SETTINGS):
        shelves = _catalogue_and_log()
        version = factories.trained_version(algorithm, {
            "epochs": 30, "hidden": 32, "latent": 8, "batch_size": 64, "seed": 3})
        pool.active_model.clear()
        new = factories.product(name="ceramic teapot speckled",
                                category=shelves[0][0].category, price=Decimal("3"))
        assert place_new_items(version) == 1
        row = NewItemColumn.objects.get(version=version, item=new)
        width = load_version(version).model.item_vectors().shape[1]
        assert len(bytes(row.decoder)) == 4 * (width + 1)  # its decoder row and bias, float32
        served = new_items.placed(load_version(version))
        assert served.decoder.shape == (1, width + 1)  # what "for you" scores it with
        _shopper("teapot-fan", shelves[0][:8])
        _shopper("gardener", shelves[1][:6])
        assert new.pk in dict(_for_you("teapot-fan"))
        assert new.pk not in dict(_for_you("gardener"))
