from django.apps import AppConfig


class OscarRecommendationsConfig(AppConfig):
    """Connects Oscar's own signals to the app's tracking and catalogue caches."""

    name = "recommendations.contrib.oscar"
    label = "recommendations_oscar"
    verbose_name = "Recommendations for django-oscar"

    def ready(self) -> None:
        from . import receivers  # noqa: F401
