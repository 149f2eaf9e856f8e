from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Receivers, system checks and Celery tasks register themselves on import; nothing
        # else here. The tasks live in learning/, where Celery's autodiscovery (which looks
        # for ``<app>.tasks``) would not find them.
        from . import checks  # noqa: F401
        from .learning import tasks  # noqa: F401
        from .serving import experiments, impressions, rules  # noqa: F401
        from .tracking import receivers  # noqa: F401
