from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Receivers and system checks register themselves on import; nothing else here.
        from . import checks, experiments, impressions, receivers, rules  # noqa: F401
