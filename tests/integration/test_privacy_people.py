"""Privacy never crosses people: two shoppers on one browser stay two shoppers.

Alice browses, logs in, logs out; Bob logs in on the same browser. Bob's export must not
hold Alice's views, erasing Bob must leave Alice's history, and each log-in and log-out
gives the browser a new visitor id.
"""

import json
from types import SimpleNamespace

import pytest
from django.core.management import call_command

from recommendations import tracking
from recommendations.conf import app_settings
from recommendations.models import Interaction
from recommendations.tracking import privacy
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
UA = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/130.0"}
PASSWORD = "a-long-pass-phrase-9"


def _log_in(client, user) -> None:
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302


def _log_out(client) -> None:
    assert client.post("/accounts/logout/").status_code in (200, 302)


def _visitor_cookie(client) -> str:
    cookie = client.cookies.get(app_settings.VISITOR_COOKIE_NAME)
    return cookie.value if cookie is not None and cookie.value else ""


@pytest.fixture
def shared_browser(client):
    """Alice's and Bob's sessions on one browser: who they are and what each viewed."""
    client.defaults.update(UA)
    alice = factories.user("alice", password=PASSWORD)
    bob = factories.user("bob", password=PASSWORD)
    alice_items = [factories.product(), factories.product()]
    bob_item = factories.product()
    client.get(f"/products/{alice_items[0].pk}/")  # anonymous, merged into Alice on log-in
    _log_in(client, alice)
    client.get(f"/products/{alice_items[1].pk}/")
    _log_out(client)
    _log_in(client, bob)
    client.get(f"/products/{bob_item.pk}/")
    return SimpleNamespace(
        alice=alice, bob=bob, alice_items={i.pk for i in alice_items}, bob_item=bob_item.pk
    )


def test_bobs_export_holds_none_of_alices_views(shared_browser, tmp_path):
    bob = shared_browser.bob
    out = tmp_path / "bob.json"
    call_command("recommendations_export", "--user", str(bob.pk), "--output", str(out))
    rows = json.loads(out.read_text())["recommendations.Interaction"]
    assert {row["item_id"] for row in rows} == {shared_browser.bob_item}
    assert {row["user_id"] for row in rows} == {bob.pk}


def test_forgetting_bob_leaves_alices_history(shared_browser):
    alice, bob, alice_items = shared_browser.alice, shared_browser.bob, shared_browser.alice_items
    alices = Interaction.objects.filter(user=alice)
    assert set(alices.values_list("item_id", flat=True)) == alice_items
    call_command("recommendations_forget", "--user", str(bob.pk))
    assert set(Interaction.objects.values_list("item_id", flat=True)) == alice_items
    assert not Interaction.objects.filter(user=bob).exists()


def test_deleting_bobs_account_leaves_alices_history(shared_browser):
    shared_browser.bob.delete()
    assert set(Interaction.objects.values_list("item_id", flat=True)) == shared_browser.alice_items


def test_log_in_and_log_out_each_issue_a_new_visitor_id(client):
    client.defaults.update(UA)
    item = factories.product()
    carol = factories.user("carol", password=PASSWORD)
    client.get(f"/products/{item.pk}/")
    anonymous = _visitor_cookie(client)
    _log_in(client, carol)
    signed_in = _visitor_cookie(client)
    _log_out(client)
    after = _visitor_cookie(client)
    assert anonymous and signed_in and after
    assert len({anonymous, signed_in, after}) == 3
    # The anonymous history still became Carol's on log-in.
    assert Interaction.objects.get(item=item).user == carol


def test_anonymous_rows_of_a_visitor_id_two_users_shared_belong_to_neither():
    """Rows recorded before ids were rotated: a visitor id seen with two accounts."""
    item = factories.product()
    alice, bob = factories.user(), factories.user()
    tracking.record("view", item, user=alice, visitor_id="shared-browser")
    tracking.record("view", item, user=bob, visitor_id="shared-browser")
    tracking.record("view", item, visitor_id="shared-browser")  # whose? nobody can say
    tracking.record("view", item, visitor_id="bobs-phone")
    tracking.merge_visitor_into_user("bobs-phone", bob)
    tracking.record("view", item, visitor_id="bobs-phone")  # signed out, own phone
    export = privacy.export(user_id=bob.pk)
    rows = export["recommendations.Interaction"]
    assert sorted(r["visitor_id"] for r in rows) == ["bobs-phone", "bobs-phone", "shared-browser"]
    assert all(r["user_id"] in (bob.pk, None) for r in rows)
    privacy.forget(user_id=bob.pk)
    assert Interaction.objects.filter(user=alice).count() == 1
    assert Interaction.objects.filter(user__isnull=True, visitor_id="shared-browser").count() == 1


def test_forgetting_a_visitor_leaves_the_account_rows_recorded_under_that_id():
    item = factories.product()
    dana = factories.user()
    tracking.record("view", item, visitor_id="dana-laptop")
    tracking.record("view", item, user=dana, visitor_id="dana-laptop")
    privacy.forget(visitor_id="dana-laptop")
    assert list(Interaction.objects.values_list("user_id", flat=True)) == [dana.pk]
