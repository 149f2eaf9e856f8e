from django.urls import path

from . import feedback, views

urlpatterns = [
    path("for-me/", views.ForMeView.as_view(), name="for-me"),
    path("buy-again/", views.BuyAgainView.as_view(), name="buy-again"),
    path("users/<int:user_id>/", views.UserRecommendationsView.as_view(), name="user"),
    path("items/<int:pk>/related/", views.RelatedView.as_view(), name="related"),
    path(
        "items/<int:pk>/bought-together/",
        views.BoughtTogetherView.as_view(),
        name="bought-together",
    ),
    path("popular/", views.PopularView.as_view(), name="popular"),
    path(
        "customers/<int:user_id>/insights/",
        views.CustomerInsightsView.as_view(),
        name="customer-insights",
    ),
    path("events/", views.EventsView.as_view(), name="events"),
    path("visitors/", views.VisitorsView.as_view(), name="visitors"),
    path("consent/", views.ConsentView.as_view(), name="consent-api"),
    path("feedback/", feedback.FeedbackView.as_view(), name="feedback"),
]
