"""The demo shop is safe to deploy: DEBUG off unless asked for, no start without a secret
key, ``check --deploy`` clean in the production environment docs/operations.md lists, and
the visitor cookie's Secure flag follows the proxy setting."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from recommendations.conf import app_settings

ROOT = Path(__file__).resolve().parents[2]
#: The production configuration of docs/operations.md ("Deploying the demo shop").
PRODUCTION = {
    "DJANGO_SECRET_KEY": "prod-like-" + "Zq8#vR2$mT5!wK9@" * 4,
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://shop.example.com",
    "DJANGO_HTTPS": "1",
    "DJANGO_HSTS_PRELOAD": "1",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py`` in a fresh process on the shop's own settings and only ``env``'s
    deployment variables (none inherited from the suite's)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    base["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    base["DJANGO_MEDIA_ROOT"] = os.environ["DJANGO_MEDIA_ROOT"]  # the suite's temporary one
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_is_clean_in_the_documented_production_environment():
    done = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    documented = (ROOT / "docs" / "operations.md").read_text()
    assert all(name in documented for name in PRODUCTION)


def test_without_the_production_environment_check_deploy_warns():
    insecure = {"DJANGO_SECRET_KEY": PRODUCTION["DJANGO_SECRET_KEY"]}
    done = manage("check", "--deploy", "--fail-level", "WARNING", **insecure)
    assert done.returncode != 0 and "security.W004" in done.stderr + done.stdout


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    done = manage("check")
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "DJANGO_SECRET_KEY" in done.stderr
    assert manage("check", DJANGO_DEBUG="1").returncode == 0  # the local demo: `make run`


def test_debug_is_off_unless_asked_for():
    code = "from django.conf import settings; print(settings.DEBUG)"
    off = manage("shell", "-c", code, DJANGO_SECRET_KEY=PRODUCTION["DJANGO_SECRET_KEY"])
    on = manage("shell", "-c", code, DJANGO_DEBUG="1")
    last = [done.stdout.strip().splitlines()[-1:] for done in (off, on)]
    assert last == [["False"], ["True"]], off.stderr + on.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    "proxy_setting, forwarded, secure",
    [
        (None, "https", False),  # no proxy configured: a client cannot claim https
        (("HTTP_X_FORWARDED_PROTO", "https"), "https", True),
        (("HTTP_X_FORWARDED_PROTO", "https"), "http", False),
        (("HTTP_X_FORWARDED_PROTO", "https"), None, False),
    ],
)
def test_the_visitor_cookie_is_secure_when_the_proxy_says_https(
    client, proxy_setting, forwarded, secure
):
    headers = {"HTTP_X_FORWARDED_PROTO": forwarded} if forwarded else {}
    with override_settings(SECURE_PROXY_SSL_HEADER=proxy_setting):
        response = client.get("/cart/", **headers)
    cookie = response.cookies[app_settings.VISITOR_COOKIE_NAME]
    assert bool(cookie["secure"]) is secure
