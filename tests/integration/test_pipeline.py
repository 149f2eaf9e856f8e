"""Training, versioning, gating and related items, end to end on the database (eager Celery)."""

import json

import numpy as np
import pytest
import torch
from django.core.management import call_command
from django.test import override_settings

from recommendations.conf import app_settings
from recommendations.learning import versions
from recommendations.learning.dataset import training_log
from recommendations.learning.locks import Lease, LeaseLost, LockBusy
from recommendations.learning.tasks import TRAIN_LOCK, queue_training, train
from recommendations.learning.training import NotEnoughData, temporal_split
from recommendations.ml.artifacts import ArtifactError
from recommendations.models import ModelVersion, RelatedItem, TaskLock
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

FAST_VAE = {"epochs": 50, "hidden": 64, "latent": 16, "batch_size": 64}
FAST = {
    "TRAINING": {
        "HYPERPARAMETERS": FAST_VAE,
        "BASELINES": ["buy_again", "pop", "ease"],
        "HOLDOUT_FRACTION": 0.15,
    },
    "GATE": {"MAX_DROP_FROM_ACTIVE": 0.5},
    "RELATED_ITEMS_K": 5,
}


@pytest.fixture
def log():
    with override_settings(RECOMMENDATIONS=FAST):
        yield factories.clustered_log()


def test_training_records_an_active_version_with_metrics_and_related_items(log):
    version = queue_training()
    version.refresh_from_db()
    assert version.status == "succeeded", version.error
    assert version.is_active and version.gate_passed
    assert version.n_items == len(log) and version.n_events > 0
    assert version.data_since < version.data_until
    candidate, baselines = version.metrics["candidate"], version.metrics["baselines"]
    assert version.algorithm == "next_basket"
    assert set(baselines) == {"buy_again", "pop", "ease"}
    assert version.metrics["protocol"]["name"] == "temporal"
    assert version.metrics["protocol"]["test_users"] >= 5
    best = max(entry["ndcg@20"] for entry in baselines.values())
    assert candidate["ndcg@20"] > best and candidate["explore_ndcg@20"] > 0
    assert "beats the best baseline" in version.gate_report
    assert version.event_weights == app_settings.EVENT_WEIGHTS
    assert version.half_life_days == app_settings.TRAINING["HALF_LIFE_DAYS"]
    assert len(version.training_curve) >= 1
    assert version.device == ("cuda" if torch.cuda.is_available() else "cpu")  # run on an H200 too
    loaded = versions.load_version(version)
    assert sorted(loaded.item_ids.tolist()) == sorted(p.pk for p in log)

    similar = RelatedItem.objects.filter(version=version, kind="similar")
    together = RelatedItem.objects.filter(version=version, kind="bought_together")
    assert similar.count() == len(log) * 5
    assert together.exists()
    # Items of one cluster are bought together, so they must be each other's neighbours.
    first = log[0]
    cluster_of = {p.pk: int(p.name.split()[1]) for p in log}
    neighbours = similar.filter(item=first).order_by("rank").values_list("related_id", flat=True)
    assert all(cluster_of[pk] == cluster_of[first.pk] for pk in neighbours[:3])
    assert all(
        cluster_of[pk] == cluster_of[first.pk]
        for pk in together.filter(item=first).values_list("related_id", flat=True)
    )
    assert not TaskLock.objects.exclude(holder="").exists()


def test_a_second_version_is_tested_against_the_active_one_and_can_be_rolled_back(log):
    first = queue_training()
    second = queue_training()
    second.refresh_from_db()
    assert second.metrics["active"]["version"] == first.pk
    assert second.metrics["active"]["ndcg@20"] > 0
    assert f"active v{first.pk}" in second.gate_report
    assert second.is_active
    first.refresh_from_db()
    assert not first.is_active
    assert versions.rollback().pk == first.pk
    assert ModelVersion.objects.get(is_active=True).pk == first.pk


def test_a_model_that_fails_the_gate_is_kept_but_not_served_unless_forced(log):
    with override_settings(RECOMMENDATIONS={**FAST, "GATE": {"MIN_LIFT_OVER_BASELINES": 100.0}}):
        refused = queue_training()
        forced = queue_training(force_activate=True)
    refused.refresh_from_db()
    forced.refresh_from_db()
    assert refused.status == "succeeded" and refused.gate_passed is False
    assert "Gate failed" in refused.gate_report and not refused.is_active
    assert forced.gate_passed is False and forced.is_active


def test_an_exception_mid_training_leaves_the_active_version_serving(log, monkeypatch):
    good = queue_training()
    calls = {"n": 0}
    real_renew = Lease.renew

    def renew_then_fail(self):
        calls["n"] += 1
        if calls["n"] == 3:  # the third epoch
            raise RuntimeError("injected failure in epoch 3")
        return real_renew(self)

    monkeypatch.setattr(Lease, "renew", renew_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        queue_training()
    failed = ModelVersion.objects.latest()
    assert failed.status == "failed" and "injected failure in epoch 3" in failed.error
    assert failed.finished_at is not None and not failed.is_active
    good.refresh_from_db()
    assert good.is_active
    assert not TaskLock.objects.exclude(holder="").exists()  # the lock was released


def test_a_training_that_lost_its_lease_stops_and_leaves_the_active_version(log, monkeypatch):
    good = queue_training()
    calls = {"n": 0}
    real_renew = Lease.renew

    def lose_the_lease_on_the_third_renewal(self):
        calls["n"] += 1
        if calls["n"] == 3:  # a long pause: the lease expired and another run took it
            TaskLock.objects.filter(name=self.name).update(holder="another-worker:99")
        return real_renew(self)

    monkeypatch.setattr(Lease, "renew", lose_the_lease_on_the_third_renewal)
    with pytest.raises(LeaseLost):
        queue_training()
    lost = ModelVersion.objects.latest()
    assert lost.status == "failed" and "lost the" in lost.error and not lost.is_active
    assert calls["n"] == 3  # it stopped at once: no further epoch renewed anything
    good.refresh_from_db()
    assert good.is_active


def test_a_held_lock_blocks_a_second_training_and_an_expired_one_does_not(log):
    holder = Lease(TRAIN_LOCK, ttl_seconds=600, holder="another-worker")
    assert holder.acquire()
    version = ModelVersion.objects.create()
    with pytest.raises(LockBusy):
        train.apply(args=(version.pk,), throw=True)
    version.refresh_from_db()
    assert version.status == "queued"
    crashed = ModelVersion.objects.create(status="running")
    TaskLock.objects.filter(name=TRAIN_LOCK).update(expires_at="2000-01-01T00:00Z")
    train.apply(args=(version.pk,), throw=True)
    version.refresh_from_db()
    crashed.refresh_from_db()
    assert version.status == "succeeded"
    assert crashed.status == "failed" and "lock expired" in crashed.error


def test_a_training_waiting_for_the_lock_outwaits_a_training_then_fails_loudly(log):
    """On a worker (not eager), a busy lock means retry: far more often than the task's 5
    autoretries, and when even those run out the version says why instead of staying queued."""
    from celery.exceptions import MaxRetriesExceededError

    from recommendations.learning.tasks import LOCK_WAIT_RETRIES

    assert LOCK_WAIT_RETRIES * app_settings.TRAINING["RETRY_COUNTDOWN"] >= 6 * 3600
    assert Lease(TRAIN_LOCK, ttl_seconds=600, holder="another-worker").acquire()
    version = ModelVersion.objects.create()
    train.push_request(called_directly=False, is_eager=False, retries=LOCK_WAIT_RETRIES)
    try:
        with pytest.raises(MaxRetriesExceededError):
            train.run(version.pk)
    finally:
        train.pop_request()
    version.refresh_from_db()
    assert version.status == "failed" and "held the lock" in version.error


def test_new_items_get_content_neighbours(log):
    shelf = log[0].category
    newcomer = factories.product(name="CLUSTER 0 ITEM NEW ARRIVAL", category=shelf)
    version = queue_training()
    rows = RelatedItem.objects.filter(version=version, item=newcomer, kind="similar")
    assert rows.count() == 5
    assert rows.order_by("rank").first().score > 0


def test_a_tampered_artifact_is_refused(log, settings):
    version = queue_training()
    from django.core.files.storage import default_storage

    version.refresh_from_db()
    name, _ = versions.artifact_names(version)
    with default_storage.open(name, "rb") as fh:
        data = bytearray(fh.read())
    data[len(data) // 2] ^= 0xFF
    default_storage.delete(name)
    default_storage.save(name, __import__("io").BytesIO(bytes(data)))
    with pytest.raises(ArtifactError):
        versions.load_version(version)


def test_not_enough_data_fails_clearly():
    factories.product()
    with pytest.raises(NotEnoughData):
        queue_training()
    version = ModelVersion.objects.latest()
    assert version.status == "failed" and "no events" in version.error


def test_commands(log, capsys):
    call_command("recommendations_train")
    out = capsys.readouterr().out
    assert "Gate passed" in out and "active" in out
    call_command("recommendations_train", "--if-none")
    assert "nothing to train" in capsys.readouterr().out
    call_command("recommendations_similarity")
    assert "bought-together" in capsys.readouterr().out
    call_command("recommendations_evaluate", "--models", "buy_again,pop,ease")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(r["model"], r["task"]) for r in rows} == {
        (m, t) for m in ("buy_again", "pop", "ease") for t in ("all", "explore")
    }
    assert all(r["protocol"] == "temporal" and r["ndcg@20"] >= 0 for r in rows)
    call_command("recommendations_evaluate", "--protocol", "random", "--models", "pop,ease")
    out = capsys.readouterr().out
    assert "ease" in out and "pop" in out


def test_event_weights_change_what_a_trained_model_scores(log):
    """EVENT_WEIGHTS reach the model: the same log, views weighed 1 or not at all, gives
    versions that score the same shopper differently (and each records its weights)."""
    from django.utils import timezone

    from recommendations.models import Interaction

    for u in range(40):  # shoppers who looked at another cluster's items without buying
        for item in log[(u % 4) + 1 :: 4][:3]:
            Interaction.objects.create(visitor_id=f"visitor-{u}", item=item, event="view",
                                       created_at=timezone.now() - timezone.timedelta(days=20))
    scores = []
    for view_weight in (1.0, 0.0):
        weights = {**app_settings.EVENT_WEIGHTS, "view": view_weight}
        with override_settings(RECOMMENDATIONS={**FAST, "EVENT_WEIGHTS": weights}):
            version = factories.trained_version()
        assert version.event_weights["view"] == view_weight
        loaded = versions.load_version(version)
        row = np.zeros((1, loaded.model.n_items), np.float32)
        row[0, :5] = [5.0, 1.0, 1.0, 0.0, 5.0]
        scores.append(loaded.model.score(row))
    assert not np.allclose(scores[0], scores[1])


def test_held_out_shoppers_stay_held_out_as_the_log_grows(log):
    """The gate tests the active version on shoppers no version trained on: held-out
    shoppers are chosen by a stable hash, so today's are among tomorrow's."""
    before = temporal_split(training_log())
    held_before = set(before.test.user_ids) | set(before.validation.user_ids)
    factories.clustered_log(n_users=40, seed=1)  # the log grows
    after = temporal_split(training_log())
    assert not held_before & set(after.train_user_ids)
    assert not set(after.test.user_ids) & set(before.train_user_ids)
