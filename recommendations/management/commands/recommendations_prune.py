"""``python manage.py recommendations_prune [--days N]``: retention pruning of the log."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from recommendations.conf import app_settings
from recommendations.learning.tasks import prune_interactions


class Command(BaseCommand):
    help = "Delete interactions older than RECOMMENDATIONS['RETENTION_DAYS'] (or --days)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args: Any, days: int | None, **options: Any) -> None:
        if days is not None and days < 0:
            raise CommandError("--days must be zero or more.")
        effective = app_settings.RETENTION_DAYS if days is None else days
        if effective is None:
            self.stdout.write("RETENTION_DAYS is None: events are kept forever.")
            return
        deleted = prune_interactions.apply(kwargs={"retention_days": effective}).get()
        self.stdout.write(
            self.style.SUCCESS(f"Deleted {deleted:,} events older than {effective} days.")
        )
