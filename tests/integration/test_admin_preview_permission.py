"""The rules preview shows a shopper's personal list only to staff who may read shoppers'
history (``view_interaction``), as ``users/<id>/`` and the interaction log require."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from recommendations import tracking
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
PREVIEW = "admin:recommendations_merchandisingrule_preview"


@pytest.fixture
def rules_only_staff(client):
    staff = factories.user(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_merchandisingrule"))
    client.force_login(staff)
    return staff


@pytest.fixture
def shopper():
    items = [factories.product() for _ in range(3)]
    mia = factories.user()
    for item in items:
        tracking.record("purchase", item, user=mia)
    return mia, items


@pytest.mark.parametrize(
    "query",
    ["list=for_you&user={user}", "list=for_you&visitor=mia-phone", "list=popular&user={user}"],
)
def test_rules_only_staff_cannot_preview_a_shoppers_list(client, rules_only_staff, shopper, query):
    mia, _ = shopper
    url = reverse(PREVIEW) + "?" + query.format(user=mia.pk)
    assert client.get(url).status_code == 403


def test_rules_only_staff_still_preview_lists_that_are_not_personal(
    client, rules_only_staff, shopper
):
    _, items = shopper
    for query in ("list=popular", f"list=related&item={items[0].pk}", "list=trending", ""):
        response = client.get(reverse(PREVIEW) + "?" + query)
        assert response.status_code == 200, query


def test_staff_who_may_read_the_history_preview_a_shoppers_list(client, rules_only_staff, shopper):
    mia, _ = shopper
    rules_only_staff.user_permissions.add(Permission.objects.get(codename="view_interaction"))
    response = client.get(reverse(PREVIEW) + f"?list=for_you&user={mia.pk}")
    assert response.status_code == 200
    assert response.context["after"] is not None
