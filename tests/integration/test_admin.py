import pytest
from django.urls import reverse

from recommendations import tracking
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_event(django_capture_on_commit_callbacks):
    item = factories.product()
    with django_capture_on_commit_callbacks(execute=True):
        tracking.record("view", item, visitor_id="abc")


def test_interaction_admin_is_read_only_for_staff(admin_client, logged_event):
    url = reverse("admin:recommendations_interaction_changelist")
    response = admin_client.get(url, {"event__exact": "view", "q": "abc"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert admin_client.get(reverse("admin:recommendations_interaction_add")).status_code == 403


def test_interaction_admin_is_closed_to_other_users(client, logged_event):
    client.force_login(factories.user())
    response = client.get(reverse("admin:recommendations_interaction_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response.url
