"""URLs the app contributes to the shop (``path("", include("recommendations.urls"))``)."""

urlpatterns: list = []
