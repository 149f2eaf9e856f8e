"""Settings of the test Oscar shop: Oscar's documented defaults (``oscar.defaults``,
``oscar.INSTALLED_APPS``) plus the lines docs/oscar.md adds for the app. Everything it
writes goes to a temporary folder (the database is in memory)."""

import os
import tempfile

from oscar import INSTALLED_APPS as OSCAR_APPS
from oscar.defaults import *  # noqa: F403  (Oscar's documented way to start a project)

SECRET_KEY = "tests-oscar-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
ROOT_URLCONF = "tests.oscar.urls"
SITE_ID = 1
USE_TZ = True
TIME_ZONE = "Europe/Amsterdam"
LANGUAGE_CODE = "en-gb"

INSTALLED_APPS = [
    *OSCAR_APPS,
    "sorl.thumbnail",
    # the app, as docs/oscar.md installs it:
    "rest_framework",
    "drf_spectacular",
    "recommendations",
    "recommendations.contrib.oscar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "recommendations.tracking.middleware.VisitorMiddleware",
]

AUTHENTICATION_BACKENDS = (
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [os.path.join(os.path.dirname(__file__), "templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    }
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# conftest.py points MEDIA_ROOT at a temporary folder of its own and removes it.
MEDIA_ROOT = os.path.join(tempfile.gettempdir(), "recommendations-oscar-shop")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"

# Oscar: a euro shop that sells to guests too.
OSCAR_DEFAULT_CURRENCY = "EUR"
OSCAR_ALLOW_ANON_CHECKOUT = True
OSCAR_SHOP_NAME = "Mugs & more"

# The app (docs/oscar.md).
RECOMMENDATIONS_ITEM_MODEL = "catalogue.Product"
RECOMMENDATIONS = {
    "ADAPTER": "recommendations.contrib.oscar.adapter.OscarAdapter",
}

# No Celery settings and no Celery app: without a broker the app runs its tasks in process.
