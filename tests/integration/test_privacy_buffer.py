"""Nothing escapes erasure: events still waiting in the Redis buffer are erased, exported
and merged like the ones already in the database."""

import uuid
from types import SimpleNamespace

import pytest
import redis
from django.test import override_settings

from recommendations import tracking
from recommendations.models import Interaction
from recommendations.tracking import buffer, privacy
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
#: Database 9 is these tests' own; only the keys they made are deleted.
REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture
def buffered():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"needs Redis at {REDIS_URL} (.ci/run starts one)")
    key = f"test:privacy-events:{uuid.uuid4().hex}"
    cfg = {"BUFFER": {"ENABLED": True, "REDIS_URL": REDIS_URL, "KEY": key}}
    with override_settings(RECOMMENDATIONS=cfg):
        yield key
    client = redis.Redis.from_url(REDIS_URL)
    for k in client.scan_iter(match=f"{key}*"):
        client.delete(k)


def test_forget_erases_events_still_in_the_buffer(buffered):
    item = factories.product()
    erin, frank = factories.user(), factories.user()
    tracking.record("view", item, user=erin)
    tracking.record("view", item, visitor_id="erin-phone")
    tracking.merge_visitor_into_user("erin-phone", erin)
    tracking.record("view", item, user=frank)
    assert buffer.pending_count() + Interaction.objects.count() >= 3
    removed = privacy.forget(user_id=erin.pk)
    assert removed["recommendations.Interaction"] == 2
    buffer.flush()
    assert list(Interaction.objects.values_list("user_id", flat=True)) == [frank.pk]


def test_forget_a_visitor_erases_their_buffered_events(buffered):
    item = factories.product()
    tracking.record("view", item, visitor_id="anon-1")
    tracking.record("view", item, visitor_id="anon-2")
    privacy.forget(visitor_id="anon-1")
    buffer.flush()
    assert list(Interaction.objects.values_list("visitor_id", flat=True)) == ["anon-2"]


def test_export_includes_events_still_in_the_buffer(buffered):
    item = factories.product()
    gina = factories.user()
    tracking.record("purchase", item, user=gina, value="4.20")
    assert buffer.pending_count() == 1
    rows = privacy.export(user_id=gina.pk)["recommendations.Interaction"]
    assert [(r["event"], r["value"], r["item_id"]) for r in rows] == [("purchase", "4.20", item.pk)]


def test_deleting_an_account_erases_its_buffered_events(buffered):
    item = factories.product()
    hugo, ida = factories.user(), factories.user()
    tracking.record("view", item, user=hugo)
    tracking.record("view", item, user=ida)
    hugo.delete()
    buffer.flush()  # must not fail on a row whose user is gone, nor bring it back
    assert list(Interaction.objects.values_list("user_id", flat=True)) == [ida.pk]


def test_a_buffered_event_of_a_deleted_account_is_dropped_at_flush(buffered):
    """The event reached the buffer after the account's erasure: the flush drops it."""
    item = factories.product()
    jon, kim = factories.user(), factories.user()
    jon_pk = jon.pk
    jon.delete()
    gone = SimpleNamespace(pk=jon_pk)
    assert buffer.append([tracking.recording.validate_event("view", item, user=gone)])
    tracking.record("view", item, user=kim)
    assert buffer.flush() == 1
    assert not Interaction.objects.filter(user_id=jon_pk).exists()
    assert Interaction.objects.filter(user=kim).count() == 1


def test_log_in_merge_includes_buffered_anonymous_events(buffered):
    item = factories.product()
    lea = factories.user()
    tracking.record("view", item, visitor_id="lea-laptop")
    tracking.record("add_to_cart", item, visitor_id="lea-laptop")
    tracking.merge_visitor_into_user("lea-laptop", lea)
    buffer.flush()
    assert Interaction.objects.filter(visitor_id="lea-laptop").count() == 2
    assert not Interaction.objects.filter(user__isnull=True).exists()
