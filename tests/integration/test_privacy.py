"""GDPR: erasure, export, deletion of an account, opt-out on every path, no users in models."""

import json

import pytest
from django.core.management import call_command
from django.test import override_settings

from recommendations import tracking
from recommendations.learning import versions
from recommendations.models import Interaction
from recommendations.serving import pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
UA = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/130.0"}


def test_forget_a_user_removes_their_history_and_their_anonymous_history(capsys):
    item = factories.product()
    alice, bob = factories.user(), factories.user()
    tracking.record("view", item, visitor_id="alice-phone")
    tracking.merge_visitor_into_user("alice-phone", alice)
    tracking.record("view", item, visitor_id="alice-phone")  # browsing again, signed out
    tracking.record("purchase", item, user=alice)
    tracking.record("purchase", item, user=bob)
    call_command("recommendations_forget", "--user", str(alice.pk))
    out = capsys.readouterr().out
    assert "3  recommendations.Interaction" in out.replace(",", "")
    assert list(Interaction.objects.values_list("user_id", flat=True)) == [bob.pk]


def test_forget_a_visitor():
    item = factories.product()
    tracking.record("view", item, visitor_id="anon-1")
    tracking.record("view", item, visitor_id="anon-2")
    call_command("recommendations_forget", "--visitor", "anon-1")
    assert list(Interaction.objects.values_list("visitor_id", flat=True)) == ["anon-2"]


def test_deleting_an_account_deletes_its_events():
    item = factories.product()
    carol = factories.user()
    tracking.record("view", item, visitor_id="carol-laptop")
    tracking.merge_visitor_into_user("carol-laptop", carol)
    tracking.record("view", item, visitor_id="carol-laptop")
    carol.delete()
    assert not Interaction.objects.exists()


def test_export_writes_the_shoppers_data(tmp_path):
    item = factories.product()
    dave = factories.user()
    tracking.record("purchase", item, user=dave, value="3.50", source="home:for_you:v1")
    out = tmp_path / "dave.json"
    call_command("recommendations_export", "--user", str(dave.pk), "--output", str(out))
    data = json.loads(out.read_text())
    (row,) = data["recommendations.Interaction"]
    assert row["event"] == "purchase" and row["value"] == "3.50" and row["item_id"] == item.pk


def test_opted_out_visitors_get_nothing_personal_anywhere(client):
    with override_settings(
        RECOMMENDATIONS={"TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]}}
    ):
        items = factories.clustered_log()
        factories.trained_version()
        pool.active_model.clear()
        before = Interaction.objects.count()
        client.get(f"/products/{items[1].pk}/", **UA, HTTP_SEC_GPC="1")
        assert Interaction.objects.count() == before
        page = client.get("/", **UA, HTTP_SEC_GPC="1").content.decode()
        assert "Because you viewed" not in page
        body = client.get("/api/recommendations/for-me/", **UA, HTTP_SEC_GPC="1").json()
        assert body["results"] and all(r["strategy"] != "model" for r in body["results"])


def test_the_trained_model_holds_no_per_user_rows():
    with override_settings(
        RECOMMENDATIONS={"TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]}}
    ):
        factories.clustered_log(n_users=160)
        version = factories.trained_version(
            algorithm="vae",
            hyperparameters={"epochs": 2, "hidden": 32, "latent": 8, "batch_size": 64},
        )
    trained = versions.load_version(version, served=False).model._arrays()
    served = versions.load_version(version).model.arrays  # what web processes map
    for arrays in (trained, served):
        assert arrays
        assert all(160 not in a.shape and version.n_users not in a.shape
                   for a in arrays.values())
