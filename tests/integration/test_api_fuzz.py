"""Schemathesis against the API: no 5xx and responses that match the schema.

Every operation of /api/schema/ is called through the whole WSGI stack (middleware,
authentication, throttling, database) with generated valid and invalid inputs.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from recommendations import services
from recommendations.models import Interaction
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def shop():
    with override_settings(
        RECOMMENDATIONS={
            "TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]},
            "EVENTS_RATE": "10000/min",
        }
    ):
        if not Interaction.objects.exists():
            factories.clustered_log(n_users=80)
            factories.trained_version()
            services.active_model.clear()
        yield


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_never_fails_and_matches_its_schema(case):
    before = Interaction.objects.count()
    response = case.call(headers={"User-Agent": "Mozilla/5.0 Firefox/130.0"})
    case.validate_response(
        response,
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
    if response.status_code >= 400:
        assert Interaction.objects.count() == before, "a rejected request changed the log"
