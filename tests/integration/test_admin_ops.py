"""Operations in the admin: model versions (train, activate, roll back, recompute), the
product panel with hand-picked related items, and who may do what."""

import re

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse

from recommendations import serving
from recommendations.models import Experiment, ManualRelatedItem, ModelVersion, RelatedItem
from recommendations.serving import pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = {
    "TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]},
    "RELATED_ITEMS_K": 5,
}
TINY_VAE = {
    **SETTINGS,
    "TRAINING": {
        **SETTINGS["TRAINING"],
        "ALGORITHM": "vae",
        "HYPERPARAMETERS": {"epochs": 4, "hidden": 32, "latent": 8, "batch_size": 64},
    },
}
CHANGELIST = "admin:recommendations_modelversion_changelist"


@pytest.fixture
def shop():
    """Two trained versions whose related lists differ; the second one is active."""
    with override_settings(RECOMMENDATIONS=SETTINGS):
        items = factories.clustered_log()
        first = factories.trained_version(hyperparameters={"l2": 10.0})
        second = factories.trained_version(hyperparameters={"l2": 500.0})
        pool.active_model.clear()
        yield items, first, second


def action(client, name, *versions, follow=True):
    return client.post(
        reverse(CHANGELIST),
        {"action": name, "_selected_action": [v.pk for v in versions]},
        follow=follow,
    )


def related_version(client, item) -> int:
    response = client.get(f"/api/recommendations/items/{item.pk}/related/")
    assert response.status_code == 200
    return response.json()["version"]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_list_shows_runs_with_their_metrics_beside_the_baselines(admin_client, shop):
    _, first, second = shop
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"v{second.pk}" in html and f"v{first.pk}" in html
    for header in ("NDCG@20", "NDCG@20, new items", "Duration", "Data", "Device", "Status"):
        assert header in html
    ndcg = second.metric("candidate", "ndcg@20")
    assert f"{ndcg:.3f}" in html
    assert f"pop {second.metric('pop', 'ndcg@20'):.3f}" in html
    assert f"{second.n_events:,} events" in html
    assert "Train now" in html and f"Roll back to v{first.pk}" in html


def test_the_detail_page_is_a_read_only_record_with_server_drawn_charts(admin_client, shop):
    _, _, second = shop
    url = reverse("admin:recommendations_modelversion_change", args=[second.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="rec-chart"') == 1 and "against the baselines" in html
    assert "held-out shoppers bought in the next 30 days" in html  # how it was tested
    assert "Gate " in html and second.gate_report.split(":")[0] in html
    assert "fitted in one step: no curve" in html  # EASE has no epochs
    assert "<script" not in html.split('id="content-main"')[1].split("</svg>")[0]
    assert 'name="_save"' not in html  # nothing to edit
    assert f"{RelatedItem.objects.filter(version=second, kind='similar').count()} similar" in html
    assert admin_client.post(url, {}).status_code == 403


def test_train_now_queues_a_run_that_appears_with_metrics_and_a_curve(admin_client, shop):
    before = set(ModelVersion.objects.values_list("pk", flat=True))
    with override_settings(RECOMMENDATIONS=TINY_VAE):
        response = admin_client.post(
            reverse("admin:recommendations_modelversion_train"), follow=True
        )
    assert response.status_code == 200
    (new,) = ModelVersion.objects.exclude(pk__in=before)
    assert new.algorithm == "vae" and new.status == "succeeded", new.error
    assert new.metrics["candidate"]["ndcg@20"] > 0 and "pop" in new.metrics["baselines"]
    assert any(f"Queued the training of v{new.pk}" in m for m in messages_of(response))
    assert LogEntry.objects.filter(object_id=str(new.pk), action_flag=ADDITION).exists()
    page = admin_client.get(reverse("admin:recommendations_modelversion_change", args=[new.pk]))
    html = page.content.decode()
    assert html.count('<svg class="rec-chart"') == 3  # metrics, loss, validation NDCG
    assert "Training loss per epoch" in html and "<polyline" in html
    assert len(new.training_curve) == 4 and {"epoch", "loss"} <= set(new.training_curve[0])


def test_train_again_retrains_the_selected_settings(admin_client, shop):
    _, first, _ = shop
    before = ModelVersion.objects.count()
    with override_settings(RECOMMENDATIONS=SETTINGS):
        response = action(admin_client, "train_again", first)
    new = ModelVersion.objects.latest()
    assert ModelVersion.objects.count() == before + 1
    assert new.algorithm == first.algorithm and new.hyperparameters == first.hyperparameters
    assert new.status == "succeeded" and new.metrics["candidate"]
    assert any(f"v{new.pk}" in m for m in messages_of(response))


def test_activate_and_roll_back_change_what_the_api_serves(admin_client, client, shop):
    items, first, second = shop
    assert related_version(client, items[0]) == second.pk

    response = action(admin_client, "activate", first)
    assert f"v{first.pk} is active now (was v{second.pk})." in messages_of(response)
    assert related_version(client, items[0]) == first.pk
    assert LogEntry.objects.filter(
        object_id=str(first.pk), action_flag=CHANGE, change_message__contains="Activated"
    ).exists()

    # Rolling back needs the active version selected; otherwise nothing happens.
    response = action(admin_client, "rollback", second)
    assert "Select the active version" in messages_of(response)[0]
    assert related_version(client, items[0]) == first.pk
    response = action(admin_client, "rollback", first)
    assert f"Rolled back from v{first.pk} to v{second.pk}" in messages_of(response)[0]
    assert related_version(client, items[0]) == second.pk

    # ... and the changelist's button does the same.
    response = admin_client.post(
        reverse("admin:recommendations_modelversion_rollback"), follow=True
    )
    assert related_version(client, items[0]) == first.pk
    assert LogEntry.objects.filter(change_message__contains="roll back").count() >= 2


def test_activate_wants_exactly_one_version(admin_client, shop):
    _, first, second = shop
    response = action(admin_client, "activate", first, second)
    assert messages_of(response) == ["Select exactly one version to activate."]
    assert ModelVersion.objects.get(is_active=True) == second


def test_recompute_similarities_rewrites_the_lists_without_activating(admin_client, shop):
    _, first, second = shop
    RelatedItem.objects.filter(version=first).delete()
    failed = ModelVersion.objects.create(status="failed")
    response = action(admin_client, "recompute_similarities", first, failed)
    assert RelatedItem.objects.filter(version=first, kind="similar").exists()
    assert ModelVersion.objects.get(is_active=True) == second
    assert messages_of(response) == [
        "Queued the similarity scoring of 1 version.",
        "Skipped 1 version that has no trained model.",
    ]


def test_the_active_version_cannot_be_deleted(admin_client, shop):
    _, first, second = shop
    delete = "admin:recommendations_modelversion_delete"
    assert admin_client.get(reverse(delete, args=[second.pk])).status_code == 403
    assert admin_client.get(reverse(delete, args=[first.pk])).status_code == 200


# --- the product panel -----------------------------------------------------------------


def test_the_product_page_shows_the_models_lists_and_hand_picked_items_win(
    admin_client, client, shop
):
    items, _, second = shop
    product = items[0]
    url = reverse("admin:shop_product_change", args=[product.pk])
    html = admin_client.get(url).content.decode()
    assert "What the shop recommends with this item" in html
    neighbour = RelatedItem.objects.filter(version=second, item=product, kind="similar").first()
    assert f"(model v{second.pk})" in html
    assert neighbour.related.name in html
    prefix = re.search(r'name="([\w-]+)-TOTAL_FORMS"', html).group(1)
    assert prefix == "recommendations_manual_related"

    # Hand-pick two items from another cluster through the inline.
    others = [p for p in items if int(p.name.split()[1]) != int(product.name.split()[1])][:2]
    form = {
        "sku": product.sku,
        "name": product.name,
        "description": "",
        "price": "2.50",
        "stock": "10",
        "is_active": "on",
        "category": product.category_id,
        f"{prefix}-TOTAL_FORMS": "2",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
        f"{prefix}-0-rank": "1",
        f"{prefix}-0-related": str(others[1].pk),
        f"{prefix}-1-rank": "2",
        f"{prefix}-1-related": str(others[0].pk),
    }
    itself = {**form, f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-0-related": str(product.pk)}
    response = admin_client.post(url, itself)
    assert (
        response.status_code == 200 and "cannot be related to itself" in response.content.decode()
    )
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ManualRelatedItem.objects.filter(item=product).count() == 2

    served = serving.related_to(product, k=5)
    assert [r.item.pk for r in served.items[:2]] == [others[1].pk, others[0].pk]
    assert served.items[0].strategy == "manual" and served.items[0].source == "related:manual"
    answer = client.get(f"/api/recommendations/items/{product.pk}/related/").json()
    assert [entry["item"]["id"] for entry in answer["results"][:2]] == [others[1].pk, others[0].pk]
    # Deleting the override gives the model its list back at once (the cache is dropped).
    ManualRelatedItem.objects.filter(item=product).delete()
    assert serving.related_to(product, k=5).items[0].strategy == "similar"


# --- permissions -----------------------------------------------------------------------


def _admin_urls(shop) -> list[str]:
    items, first, _ = shop
    experiment = Experiment.objects.create(name="exp", placement="related")
    return [
        reverse(CHANGELIST),
        reverse("admin:recommendations_modelversion_change", args=[first.pk]),
        reverse("admin:recommendations_modelversion_train"),
        reverse("admin:recommendations_modelversion_rollback"),
        reverse("admin:recommendations_merchandisingrule_changelist"),
        reverse("admin:recommendations_merchandisingrule_add"),
        reverse("admin:recommendations_merchandisingrule_preview")
        + f"?list=related&item={items[0].pk}",
        reverse("admin:recommendations_manualrelateditem_changelist"),
        reverse("admin:recommendations_experiment_changelist"),
        reverse("admin:recommendations_experiment_change", args=[experiment.pk]),
        reverse("admin:recommendations_impression_changelist"),
        reverse("admin:recommendations_onlinemetrics_changelist"),
        reverse("admin:shop_product_change", args=[items[0].pk]),
    ]


def test_a_non_staff_user_is_sent_to_the_login_page_everywhere(client, shop):
    client.force_login(factories.user())
    active = ModelVersion.objects.get(is_active=True)
    for url in _admin_urls(shop):
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302 and "/admin/login/" in response.url, url
    for name in ("train_again", "activate", "rollback", "recompute_similarities"):
        response = action(client, name, active, follow=False)
        assert response.status_code == 302 and "/admin/login/" in response.url
    assert ModelVersion.objects.get(is_active=True) == active
    assert not LogEntry.objects.exists()


def test_staff_without_permissions_get_403_and_cannot_operate(client, shop):
    _, first, second = shop
    staff = factories.user(is_staff=True)
    client.force_login(staff)
    for url in _admin_urls(shop):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("admin:recommendations_modelversion_train")).status_code == 403
    assert client.post(reverse("admin:recommendations_modelversion_rollback")).status_code == 403
    assert action(client, "activate", first, follow=False).status_code == 403

    # Allowed to look but not to operate: the actions are not offered and are refused.
    staff.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200 and "Train now" not in response.content.decode()
    assert response.context["action_form"] is None  # every action needs more than a view
    response = action(client, "activate", first)
    assert ModelVersion.objects.get(is_active=True) == second
    assert client.post(reverse("admin:recommendations_modelversion_train")).status_code == 403

    staff.user_permissions.add(Permission.objects.get(codename="change_modelversion"))
    response = action(client, "activate", first)
    assert ModelVersion.objects.get(is_active=True) == first
