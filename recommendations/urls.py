"""URLs the app contributes to the shop: ``path("", include("recommendations.urls"))``."""

from django.urls import include, path

from .tracking import views

app_name = "recommendations"

urlpatterns = [
    path("recommendations/click/", views.click, name="click"),
    path("api/recommendations/", include("recommendations.api.urls")),
]
