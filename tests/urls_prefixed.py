"""The demo shop's URLs with the app mounted under ``shop-recs/`` instead of the root: a
shop that puts the app's URLs elsewhere (tests of reversed URLs use it)."""

from django.urls import include, path

from shop import urls as shop_urls

PREFIX = "shop-recs/"

urlpatterns = [
    *(p for p in shop_urls.urlpatterns if getattr(p, "app_name", None) != "recommendations"),
    path(PREFIX, include("recommendations.urls")),
]
