"""URLs the app contributes to the shop: ``path("", include("recommendations.urls"))``."""

from django.urls import include, path

from .tracking import consent_views, views

app_name = "recommendations"

urlpatterns = [
    path("recommendations/click/", views.click, name="click"),
    path("recommendations/consent/", consent_views.give, name="consent"),
    path("recommendations/opt-out/", consent_views.withdraw, name="opt-out"),
    path("api/recommendations/", include("recommendations.api.urls")),
]
