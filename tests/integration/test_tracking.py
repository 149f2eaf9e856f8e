from decimal import Decimal

import pytest
from django.db import transaction
from django.test import RequestFactory, override_settings

from recommendations.models import Interaction
from recommendations.tracking import recording
from tests import factories

pytestmark = pytest.mark.django_db


def _request(user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", **meta):
    request = RequestFactory().get("/", HTTP_USER_AGENT=user_agent, **meta)
    request.session = {}
    request.recommendations_visitor_id = "visitor-1"
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    return request


def test_a_page_view_costs_one_insert(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    item = factories.product()
    request = _request()
    with django_assert_num_queries(1) as ctx, django_capture_on_commit_callbacks(execute=True):
        assert recording.record("view", item, request=request) is True
    assert ctx.captured_queries[0]["sql"].lstrip().upper().startswith("INSERT")
    row = Interaction.objects.get()
    assert (row.event, row.item_id, row.visitor_id, row.user_id) == (
        "view",
        item.pk,
        "visitor-1",
        None,
    )


def test_retried_client_event_id_is_stored_once(django_capture_on_commit_callbacks):
    item = factories.product()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            recording.record("add_to_cart", item, visitor_id="v", client_event_id="evt-1")
    assert Interaction.objects.filter(client_event_id="evt-1").count() == 1


def test_nothing_is_written_when_the_transaction_rolls_back():
    item = factories.product()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        recording.record("purchase", item, visitor_id="v")
        raise Boom
    assert not Interaction.objects.exists()


@pytest.mark.parametrize(
    "user_agent",
    ["Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5", "python-requests/2"],
)
def test_bots_are_dropped(user_agent, django_capture_on_commit_callbacks):
    item = factories.product()
    with django_capture_on_commit_callbacks(execute=True):
        assert recording.record("view", item, request=_request(user_agent)) is False
    assert not Interaction.objects.exists()


def test_visitor_opt_out_and_opt_in(django_capture_on_commit_callbacks):
    item = factories.product()
    request = _request()
    recording.opt_out(request)
    with django_capture_on_commit_callbacks(execute=True):
        assert recording.record("view", item, request=request) is False
    recording.opt_in(request)
    with django_capture_on_commit_callbacks(execute=True):
        assert recording.record("view", item, request=request) is True
    assert Interaction.objects.count() == 1


def test_global_privacy_control_is_an_opt_out():
    item = factories.product()
    assert recording.record("view", item, request=_request(HTTP_SEC_GPC="1")) is False


@override_settings(RECOMMENDATIONS={"TRACKING_ENABLED": False})
def test_tracking_can_be_switched_off(django_capture_on_commit_callbacks):
    item = factories.product()
    with django_capture_on_commit_callbacks(execute=True):
        assert recording.record("view", item, request=_request()) is False
    assert not Interaction.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "like"}, "Unknown event"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "2"}, "quantity"),
        ({"visitor_id": ""}, "signed-in user or an anonymous visitor_id"),
        ({"value": "abc"}, "value must be a number"),
        ({"value": "NaN"}, "finite"),
        ({"client_event_id": "x" * (recording.MAX_EVENT_ID_LENGTH + 1)}, "client_event_id"),
    ],
)
def test_invalid_events_are_refused_and_nothing_is_written(
    kwargs, message, django_capture_on_commit_callbacks
):
    item = factories.product()
    args = {"event": "view", "visitor_id": "v", **kwargs}
    event = args.pop("event")
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(recording.TrackingError, match=message),
    ):
        recording.record(event, item, **args)
    assert not Interaction.objects.exists()


def test_record_many_reports_rejected_rows_and_writes_the_rest(django_capture_on_commit_callbacks):
    item = factories.product()
    rows = [
        {"event": "view", "item": item, "visitor_id": "v"},
        {"event": "teleport", "item": item, "visitor_id": "v"},
        {
            "event": "purchase",
            "item": item,
            "visitor_id": "v",
            "quantity": 2,
            "value": Decimal("5.00"),
        },
    ]
    with django_capture_on_commit_callbacks(execute=True):
        result = recording.record_many(rows)
    assert result.written == 2
    assert [position for position, _ in result.rejected] == [1]
    assert sorted(Interaction.objects.values_list("event", flat=True)) == ["purchase", "view"]
    assert Interaction.objects.get(event="purchase").value == Decimal("5.00")


def test_merging_a_visitor_into_a_user_moves_only_anonymous_events(
    django_capture_on_commit_callbacks,
):
    item = factories.product()
    alice, bob = factories.user(), factories.user()
    with django_capture_on_commit_callbacks(execute=True):
        recording.record("view", item, visitor_id="shared-device")
        recording.record("view", item, visitor_id="shared-device", user=bob)
    assert recording.merge_visitor_into_user("shared-device", alice) == 1
    assert Interaction.objects.filter(user=alice).count() == 1
    assert Interaction.objects.filter(user=bob).count() == 1
