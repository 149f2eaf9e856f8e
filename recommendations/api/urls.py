from django.urls import path, re_path, register_converter

from . import feedback, views


class SignedIntConverter:
    """Any integer, negative ones too: the view answers an id that cannot exist with a JSON
    404, not the shop's HTML page (``<int:...>`` would not match ``-1``)."""

    regex = "-?[0-9]{1,20}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(SignedIntConverter, "recommendations_id")

urlpatterns = [
    path("for-me/", views.ForMeView.as_view(), name="for-me"),
    path("buy-again/", views.BuyAgainView.as_view(), name="buy-again"),
    path(
        "users/<recommendations_id:user_id>/",
        views.UserRecommendationsView.as_view(),
        name="user",
    ),
    path("items/<recommendations_id:pk>/related/", views.RelatedView.as_view(), name="related"),
    path(
        "items/<recommendations_id:pk>/bought-together/",
        views.BoughtTogetherView.as_view(),
        name="bought-together",
    ),
    path("popular/", views.PopularView.as_view(), name="popular"),
    path("categories/", views.CategoriesView.as_view(), name="categories"),
    path(
        "customers/<recommendations_id:user_id>/insights/",
        views.CustomerInsightsView.as_view(),
        name="customer-insights",
    ),
    path("events/", views.EventsView.as_view(), name="events"),
    path("visitors/", views.VisitorsView.as_view(), name="visitors"),
    path("consent/", views.ConsentView.as_view(), name="consent-api"),
    path("feedback/", feedback.FeedbackView.as_view(), name="feedback"),
    # Anything else under the API's prefix is a JSON 404, as apps expect (a path that lacks
    # only its final slash still gets CommonMiddleware's redirect first).
    re_path(r"^.*/\Z", views.not_found, name="not-found"),
]
