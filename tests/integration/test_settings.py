"""One settings object: every key declared, a typo is a system-check error."""

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from recommendations.adapters import DefaultAdapter, get_adapter
from recommendations.conf import DEFAULTS, app_settings, import_from_setting


def _errors(**recommendations) -> list[str]:
    with override_settings(RECOMMENDATIONS=recommendations):
        return [e.id for e in run_checks() if e.id and e.id.startswith("recommendations.")]


def test_the_shops_settings_pass_the_checks():
    assert "recommendations.E004" not in _errors()


@pytest.mark.parametrize(
    "settings",
    [
        {"EVENT_WIEGHTS": {"view": 1.0}},  # a typo of a top-level key
        {"TRAINING": {"HALF_LIFE": 30}},  # a typo inside a nested dict
        {"GATE": {"MIN_LIFT_OVER_POPULARITY": 0.05}},  # a key this version removed
    ],
)
def test_an_unknown_key_is_a_check_error_not_ignored(settings):
    assert "recommendations.E004" in _errors(**settings)


def test_open_dicts_take_the_shops_own_keys():
    assert "recommendations.E004" not in _errors(
        EVENT_WEIGHTS={**DEFAULTS["EVENT_WEIGHTS"], "wishlist": 2.0},
        EXCLUDE_BOUGHT={"home_for_you": "purchased"},
    )


def test_every_key_the_app_reads_is_declared():
    with pytest.raises(AttributeError, match="Invalid RECOMMENDATIONS setting"):
        app_settings.NOT_A_SETTING  # noqa: B018


def test_dotted_paths_are_resolved_in_one_place():
    assert import_from_setting("ITEM_SERIALIZER") is None
    adapter_class = import_from_setting("ADAPTER")  # the demo shop names its own
    assert issubclass(adapter_class, DefaultAdapter) and type(get_adapter()) is adapter_class
    assert get_adapter() is get_adapter()  # one instance per path
    with override_settings(RECOMMENDATIONS={"ADAPTER": "no.such.Adapter"}):
        assert "recommendations.E003" in [e.id for e in run_checks()]
