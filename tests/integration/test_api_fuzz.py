"""Schemathesis against the live API: no 5xx and responses that match the schema.

The schema is read from ``/api/schema/`` on pytest-django's live server, and every
operation is called over real HTTP with generated valid and invalid inputs. A rejected
request must change nothing.
"""

import os

import pytest
import schemathesis
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from recommendations.models import Interaction
from recommendations.serving import pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
# Examples per operation; RECOMMENDATIONS_FUZZ_EXAMPLES=500 fuzzes deeper (seeds are random).
EXAMPLES = int(os.environ.get("RECOMMENDATIONS_FUZZ_EXAMPLES", "30"))
UA = {"User-Agent": "Mozilla/5.0 Firefox/130.0"}


def test_the_live_api_never_fails_and_matches_its_schema(live_server):
    with override_settings(
        RECOMMENDATIONS={
            "TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]},
            "EVENTS_RATE": "10000/min",
            "VISITORS_RATE": "10000/min",
        }
    ):
        factories.clustered_log(n_users=80)
        factories.trained_version()
        pool.active_model.clear()
        schema = schemathesis.openapi.from_url(live_server.url + "/api/schema/")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 6
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case):
                before = Interaction.objects.count()
                response = case.call(base_url=live_server.url, headers=UA)
                case.validate_response(
                    response,
                    checks=[
                        not_a_server_error,
                        response_schema_conformance,
                        content_type_conformance,
                    ],
                )
                if response.status_code >= 400:
                    assert Interaction.objects.count() == before, "a rejected request wrote"

            check()
